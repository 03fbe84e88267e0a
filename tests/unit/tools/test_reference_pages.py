"""The manual cannot drift from the command line: each tool's reference page in ``docs/tools/`` carries the options
table generated from the tool's signature, and every ``splade-lightning TOOL ...`` command shown anywhere in the
README or ``docs/`` parses with that tool's current parser (a renamed or removed flag fails here)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from splade_lightning.tools.main import LIGHTNING, TOOLS, tool_parser
from splade_lightning.tools.parser import expand_switches, join_lists, list_options, switches
from splade_lightning.tools.reference import BEGIN, END, options_table, page_path, update_page

REPO = Path(__file__).resolve().parents[3]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_reference_page_has_the_current_options_table(name):
    text = page_path(name).read_text(encoding="utf-8")
    assert update_page(name, text) == text, (
        f"{page_path(name)} is out of date: run `python -m splade_lightning.tools.reference`")


def test_every_subcommand_has_a_reference_page_linked_from_the_docs_map():
    index = (REPO / "docs" / "README.md").read_text(encoding="utf-8")
    for name in [*TOOLS, "fit"]:
        assert page_path(name).is_file()
        assert f"tools/{name}.md" in index
    fit = page_path("fit").read_text(encoding="utf-8")
    for flag in ("--eval_before_fit", "--export_dir", "--overwrite", "--final_weights", "--ckpt_path",
                 "--print_config", "--model.help", *(f"splade-lightning {name}" for name in LIGHTNING)):
        assert flag in fit


def test_options_table_reflects_the_signature():
    table = options_table("search")
    assert "| `--index` | str | required |" in table
    assert "| `--method` | exact / seismic | `exact` |" in table
    assert "`--overwrite` / `--no_overwrite`" in table
    with pytest.raises(ValueError, match="options:begin"):
        update_page("search", "no table here")
    assert update_page("search", f"a\n{BEGIN}\nold\n{END}\nb") == f"a\n{BEGIN}\n{table}\n{END}\nb"


def _commands(text: str) -> list[str]:
    """The ``splade-lightning TOOL ...`` command lines of a Markdown text (continuations joined)."""
    text = re.sub(r"\s*\\\n\s*", " ", text)
    found = []
    for line in text.splitlines():
        match = re.search(r"(?:^|\$ |`)(splade-lightning (\w+)\b[^`#\n]*)", line)
        if match and match.group(2) in TOOLS:
            found.append(match.group(1).strip())
    return found


def _parses(command: str) -> None:
    command = re.sub(r"\[[^\]]*\]", "", command)  # optional parts shown as [--flag value]
    command = re.sub(r"\{([^,}]*)[^}]*\}", r"\1", command)  # choices shown as {a,b,c}: try the first
    argv = shlex.split(command)[1:]
    name, args = argv[0], [a for a in argv[1:] if a not in ("...", "…")]
    if not args or any(a in ("--help", "-h", "--print_config") or a.startswith("<") for a in args):
        return  # a name in prose (`splade-lightning mine`), a help request, or a process substitution
    parser = tool_parser(name)
    flags = {s for action in parser._actions for s in action.option_strings}
    unknown = [a.split("=")[0] for a in args if a.startswith("--") and a.split("=")[0] not in flags
               and not (a.startswith("--no_") and a[5:] in switches(parser))]
    assert not unknown, f"{command!r}: unknown flags {unknown}"
    if "..." in argv or "…" in argv:
        return  # an elided command: its flags are known, its required ones may be missing
    parser.parse_args(join_lists(expand_switches(args, switches(parser)), list_options(parser)))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_command_in_the_docs_parses(page):
    for command in _commands(page.read_text(encoding="utf-8")):
        _parses(command)


def test_command_check_catches_a_stale_flag():
    assert _commands("```\n$ splade-lightning idf --corpus c \\\n    --out x.json\n```") == [
        "splade-lightning idf --corpus c --out x.json"]
    with pytest.raises(AssertionError, match="--out"):
        _parses("splade-lightning idf --corpus c --out x.json")
    _parses("splade-lightning idf --corpus c --output x.json --no_progress")


def _github_anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading's rendered text: lower case, punctuation but ``-`` and ``_`` dropped,
    spaces to hyphens (emphasis marks go, underscores inside code spans stay)."""
    parts = re.split(r"(`[^`]*`)", heading.strip().lower())
    text = "".join(part[1:-1] if part.startswith("`") else re.sub(r"[*_]", "", part) for part in parts)
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {_github_anchor(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, flags=re.M)}


MARKDOWN = [*PAGES, *sorted(p for folder in ("configs", "experiments", "data", "benchmarks", "notebooks")
                            for p in (REPO / folder).rglob("*.md"))]


@pytest.mark.parametrize("page", MARKDOWN, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page):
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path_part, _, anchor = target.partition("#")
        path = (page.parent / path_part).resolve() if path_part else page
        if not path.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(f"{target} (no heading #{anchor} in {path.name})")
    assert not broken, f"{page.relative_to(REPO)}: " + "; ".join(broken)


def test_github_anchors():
    assert _github_anchor("Measured: OpenSearch idf init vs corpus idf init vs frozen table") == \
        "measured-opensearch-idf-init-vs-corpus-idf-init-vs-frozen-table"
    assert _github_anchor("Use and export the model") == "use-and-export-the-model"
    assert _github_anchor("`splade-lightning fit`, `validate`, `test`") == "splade-lightning-fit-validate-test"
    assert _github_anchor("`onnx_encode.py`: document encoding") == "onnx_encodepy-document-encoding"
    assert _github_anchor("A *bold* _word_") == "a-bold-word"
