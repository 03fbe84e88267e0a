"""The options tables of the reference pages in ``docs/tools/``, generated from each tool's typed signature.

Each page holds its table between ``<!-- options:begin -->`` and ``<!-- options:end -->``; the rest of the page
(examples and sample output pasted from real runs) is written by hand. ``python -m splade_lightning.tools.reference``
rewrites the tables in place; ``tests/unit/tools/test_reference_pages.py`` fails when a page is out of date, so a new
or renamed flag cannot go undocumented.
"""

from __future__ import annotations

import inspect
import sys
import types
import typing
from pathlib import Path

from splade_lightning.tools.main import TOOLS, tool_function
from splade_lightning.tools.parser import parameter_help, plain

__all__ = ["BEGIN", "END", "options_table", "page_path", "update_page"]

BEGIN, END = "<!-- options:begin -->", "<!-- options:end -->"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "tools"


def page_path(name: str) -> Path:
    """The reference page of tool ``name``."""
    return DOCS / f"{name}.md"


def _type_name(annotation) -> str:
    """``str``, ``int | None``, ``list[str]``, ``'exact' or 'seismic'`` ..."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is type(None):
        return "None"
    if origin is typing.Literal:
        return " / ".join(map(str, args))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in args)}]"
    return getattr(annotation, "__name__", str(annotation))


def _type_text(annotation) -> str:
    return _type_name(annotation).replace("|", "\\|")


def _default_text(param: inspect.Parameter) -> str:
    if param.default is inspect.Parameter.empty:
        return "required"
    if isinstance(param.default, tuple | list):
        return " ".join(map(str, param.default)) if param.default else "(none)"
    return f"`{param.default}`"


def options_table(name: str) -> str:
    """The Markdown options table of tool ``name``: flag, type, default, meaning (from the docstring)."""
    function, _ = tool_function(name)
    helps = {key: plain(text) for key, text in parameter_help(function).items()}
    hints = typing.get_type_hints(function)
    rows = ["| flag | type | default | meaning |", "|---|---|---|---|"]
    for param_name, param in inspect.signature(function).parameters.items():
        flag = f"`--{param_name}`"
        if hints[param_name] is bool:
            flag += f" / `--no_{param_name}`"
        meaning = helps.get(param_name, "").replace("|", "\\|")
        rows.append(f"| {flag} | {_type_text(hints[param_name])} | {_default_text(param)} | {meaning} |")
    rows.append("| `--config FILE` | path | | these options as YAML (repeatable; later files and flags win) |")
    rows.append("| `--print_config` | | | print the resolved options as YAML and exit |")
    return "\n".join(rows)


def update_page(name: str, text: str) -> str:
    """``text`` (a page) with its options table replaced by the current one."""
    head, sep, rest = text.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise ValueError(f"{page_path(name)}: no {BEGIN} ... {END} block")
    return f"{head}{BEGIN}\n{options_table(name)}\n{END}{tail}"


def main() -> int:
    """Rewrite the options table of every tool page; prints the pages that changed."""
    for name in TOOLS:
        path = page_path(name)
        old = path.read_text(encoding="utf-8")
        new = update_page(name, old)
        if new != old:
            path.write_text(new, encoding="utf-8")
            print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
