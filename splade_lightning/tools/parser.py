"""A jsonargparse parser built from a tool function's typed signature and Google docstring.

Every tool (``evaluate``, ``index``, ``search``, ``export``, ``mine``, ``score``, ``idf``, ``ablate``,
``interpolate``) is a plain function; its parameters are its flags and its ``Args:`` section is their help. The parser
accepts ``--config FILE`` (YAML, any number, later ones win) and ``--print_config``, so
``tool --config <(tool ... --print_config)`` reproduces a run. Conventions, the same in every tool:

- ``bool`` parameters are switches: ``--overwrite`` (or ``--overwrite=true``), ``--no_overwrite`` (or
  ``--overwrite=false``), the same for ``--progress`` / ``--no_progress``.
- ``list[X]`` parameters take one or more values: ``--measures ndcg@10 mrr@10`` (or a YAML list in a config).
- a list of dataclasses (``list[BeirSet]``) takes one YAML mapping per item, ``--sets '{path: data/a, split: dev}'
  '{path: data/b}'`` (or a YAML list of mappings in a config); the tool turns them into the dataclass and checks them.
- every other type is validated by jsonargparse (``int | None``, ``Literal[...]``, ...).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import inspect
import re
import types
import typing
from collections.abc import Callable

import docstring_parser
from jsonargparse import ActionConfigFile, ArgumentParser, DefaultHelpFormatter

__all__ = ["build_parser", "explain", "expand_switches", "flag_names", "join_lists", "list_options", "parameter_help",
           "plain", "suggest_flags", "switches"]


class HelpFormatter(DefaultHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """jsonargparse's help, with the description and the examples kept as written."""


def plain(text: str) -> str:
    """Docstring text for a terminal: Sphinx roles and double backquotes removed (``:func:`~a.b.c``` -> ``c``)."""
    text = re.sub(r":\w+:`~?([\w.]+)`", lambda m: m.group(1).rsplit(".", 1)[-1], text)
    return text.replace("``", "").replace("::", ":")


def _list_item_type(annotation) -> type | None:
    """``X`` for ``list[X]`` or ``list[X] | None``, else None."""
    options = typing.get_args(annotation) if isinstance(annotation, types.UnionType) or \
        typing.get_origin(annotation) is typing.Union else (annotation,)
    for option in options:
        if typing.get_origin(option) is list:
            return typing.get_args(option)[0] if typing.get_args(option) else str
    return None


def _is_bool(annotation) -> bool:
    return annotation is bool or annotation == "bool"


def parameter_help(function: Callable) -> dict[str, str]:
    """Each parameter's help: its ``Args:`` entry in the Google docstring, on one line (as written)."""
    doc = docstring_parser.parse(inspect.getdoc(function) or "")
    return {p.arg_name: " ".join((p.description or "").split()) for p in doc.params}


def build_parser(function: Callable, prog: str, epilog: str | None = None) -> ArgumentParser:
    """The parser of one tool.

    Args:
        function: the tool; its signature must be fully annotated and its docstring must document every parameter.
        prog: the program name shown in usage lines (``splade-lightning evaluate``).
        epilog: text after the options (examples).
    """
    doc = docstring_parser.parse(inspect.getdoc(function) or "")
    helps = parameter_help(function)
    description = "\n\n".join(part for part in (doc.short_description, doc.long_description) if part)
    parser = ArgumentParser(prog=prog, description=plain(description), epilog=plain(epilog or "") or None,
                            exit_on_error=False, default_meta=False, formatter_class=HelpFormatter,
                            allow_abbrev=False)  # one spelling per flag: --out is not --output
    parser.add_argument("--config", action=ActionConfigFile, help="a YAML file of these options (repeatable; "
                        "later files and flags win); --print_config prints one")
    hints = typing.get_type_hints(function)
    for name, param in inspect.signature(function).parameters.items():
        annotation = hints[name]
        required = param.default is inspect.Parameter.empty
        kwargs = {"help": helps.get(name, ""), "required": required}
        if not required:
            kwargs["default"] = param.default
        if _is_bool(annotation):
            kwargs["help"] += f" (--{name} / --no_{name})"
            parser.add_argument(f"--{name}", type=bool, nargs="?", const=True, **kwargs)
        elif (item := _list_item_type(annotation)) is not None:
            if kwargs.get("default") is not None:
                kwargs["default"] = list(kwargs["default"])  # a fresh list: the signature's default stays untouched
            item = dict if dataclasses.is_dataclass(item) else item  # the tool builds (and checks) the dataclasses
            parser.add_argument(f"--{name}", type=item, nargs="+", **kwargs)
        else:
            parser.add_argument(f"--{name}", type=annotation, **kwargs)
    return parser


def flag_names(parser: ArgumentParser) -> list[str]:
    """Every ``--flag`` the parser accepts (``--no_x`` forms included)."""
    return sorted({s for action in parser._actions for s in action.option_strings if s.startswith("--")})


def suggest_flags(message: str, known: list[str]) -> str:
    """``message`` plus a "did you mean" for each unknown ``--flag`` it names that resembles a known one."""
    hints = []
    for unknown in re.findall(r"(--[\w.\-]+)", message):
        if unknown in known:
            continue
        close = difflib.get_close_matches(unknown, known, n=2, cutoff=0.7)
        if close:
            hints.append(f"{unknown}: did you mean {' or '.join(close)}?")
    return message + ("\n" + "\n".join(hints) if hints else "")


def switches(parser: ArgumentParser) -> set[str]:
    """The names of the parser's switches (``bool`` options)."""
    return {action.dest for action in parser._actions if action.nargs == "?" and action.const is True}


def expand_switches(argv: list[str], names: set[str]) -> list[str]:
    """``--no_<name>`` -> ``--<name>=false`` for every switch ``name``."""
    return [f"--{arg[5:]}=false" if arg.startswith("--no_") and arg[5:] in names else arg for arg in argv]


def list_options(parser: ArgumentParser) -> set[str]:
    """The ``--flags`` of the parser's list options."""
    return {s for action in parser._actions if action.nargs == "+" for s in action.option_strings}


def join_lists(argv: list[str], flags: set[str]) -> list[str]:
    """A list option given several times is one list: ``--teacher a --teacher b`` -> ``--teacher a b``."""
    out, seen = [], {}
    i = 0
    while i < len(argv):
        arg, i = argv[i], i + 1
        if arg not in flags:
            out.append(arg)
            continue
        values = []
        while i < len(argv) and not argv[i].startswith("--"):
            values.append(argv[i])
            i += 1
        if arg in seen:
            out[seen[arg]:seen[arg]] = values  # after the values already collected for this flag
            seen = {k: v + len(values) if v > seen[arg] else v for k, v in seen.items()}
            seen[arg] += len(values)
        else:
            out += [arg, *values]
            seen[arg] = len(out)
    return out


_TYPES = {"<class 'int'>": "an integer", "<class 'float'>": "a number", "<class 'str'>": "a string",
          "<class 'bool'>": "true or false"}


def _expected(text: str) -> list[str]:
    kinds = []
    for line in text.splitlines():
        found = re.search(r"Expected an? (.+?)(?:\. Got value.*)?$", line.strip())
        if found is None or "NoneType" in found.group(1):
            continue
        raw = found.group(1).strip().rstrip(".")
        if raw.startswith(("typing.Literal[", "Literal[")):
            kinds.append("one of " + raw[raw.index("[") + 1:-1])
        else:
            kinds.append(_TYPES.get(raw, raw))
    return list(dict.fromkeys(kinds))


def explain(message: str) -> str:
    """jsonargparse's nested "Parser key ... Does not validate against any of the Union subtypes" report as one
    line: ``--key VALUE: expected an integer``; other messages unchanged."""
    key, value = re.search(r'Parser key "([\w.]+)"', message), re.search(r"(?:Got|Given) value: ([^\n]*)", message)
    if key is None or value is None:
        return message
    kinds = _expected(message) or ["another value"]
    if value.group(1).strip().lower() in ("nan", "inf", "-inf", "infinity"):
        kinds = ["a finite number" if kind == "a number" else kind for kind in kinds]
    return f"--{key.group(1)} {value.group(1).strip()}: expected {' or '.join(kinds)}"
