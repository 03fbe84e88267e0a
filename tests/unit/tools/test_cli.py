"""The one command line: every subcommand parses through jsonargparse with --config and --print_config (and a printed
config reproduces the run), the flag glossary in docs/cli.md matches every tool's parser, mistyped flags and
subcommands get suggestions, and the program is installed as ``splade-lightning``."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from splade_lightning.tools.main import LIGHTNING, TOOLS, main, tool_parser

REPO = Path(__file__).resolve().parents[3]
QUICKSTART = REPO / "configs" / "splade" / "quickstart.yaml"
#: the smallest valid command line of each tool (the files need not exist: nothing runs)
MINIMAL = {
    "evaluate": ["--model", "splade-tiny", "--data", "data/hotpotqa-500"],
    "index": ["--model", "m", "--corpus", "c", "--output", "o"],
    "search": ["--index", "i", "--queries", "q", "--output", "o.trec"],
    "export": ["--model", "m", "--format", "anserini", "--output", "o", "--corpus", "c"],
    "mine": ["--data", "d", "--output", "o.jsonl"],
    "score": ["--input", "i", "--queries", "q", "--corpus", "c", "--teacher", "sparse:a", "dense:b", "--output", "o"],
    "idf": ["--corpus", "c", "--output", "o.json", "--progress=false"],
    "ablate": ["--base", "b.yaml", "--grid", "g.yaml", "--output", "o", "--cuda_devices", "0", "1"],
    "interpolate": ["--zero_shot", "splade-tiny", "--fine_tuned", "m", "--output", "o", "--data", "d",
                    "--sets", "{path: a, split: dev}", "{path: b, min_relevance: 2}", "--alphas", "0", "0.5", "1"],
}


def test_every_tool_has_a_minimal_command_line():
    assert set(MINIMAL) == set(TOOLS)


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_print_config_round_trips(tool, tmp_path, capsys):
    assert main([tool, *MINIMAL[tool], "--print_config"]) == 0
    printed = capsys.readouterr().out
    config = tmp_path / "config.yaml"
    config.write_text(printed)
    parser = tool_parser(tool)
    direct, from_file = parser.parse_args(MINIMAL[tool]), parser.parse_args(["--config", str(config)])
    assert {k: v for k, v in vars(direct).items() if k != "config"} == \
        {k: v for k, v in vars(from_file).items() if k != "config"}
    assert main([tool, "--config", str(config), "--print_config"]) == 0
    assert capsys.readouterr().out == printed


@pytest.mark.parametrize("subcommand", sorted(LIGHTNING))
def test_lightning_print_config_round_trips(subcommand, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main([subcommand, "--config", str(QUICKSTART), "--print_config"]) == 0
    printed = capsys.readouterr().out
    assert "splade_lightning.systems.SpladeModule" in printed and "doc_reg_weight" in printed
    config = tmp_path / "config.yaml"
    config.write_text(printed)
    assert main([subcommand, "--config", str(config), "--print_config"]) == 0
    assert capsys.readouterr().out == printed


def glossary() -> dict[str, set[str]]:
    """``--flag`` -> the subcommands docs/cli.md lists for it."""
    rows = {}
    text = (REPO / "docs" / "cli.md").read_text()
    table = text[text.index("## Glossary"):text.index("## Renamed flags")]
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`--"):
            continue
        subcommands = set(re.split(r",\s*", cells[2]))
        for flag in re.findall(r"`(--[\w]+)`", cells[0]):
            rows[flag] = subcommands
    return rows


def tool_flags(tool: str) -> set[str]:
    parser = tool_parser(tool)
    return {s for a in parser._actions for s in a.option_strings if s.startswith("--") and s != "--help"}


def test_glossary_lists_every_flag_of_every_tool_exactly():
    documented = glossary()
    every = set(TOOLS) | set(LIGHTNING)
    problems = []
    for tool in TOOLS:
        for flag in sorted(tool_flags(tool)):
            tools = documented.get(flag)
            if tools is None:
                problems.append(f"{tool} {flag}: not in docs/cli.md")
            elif tool not in tools and tools != {"all"}:
                problems.append(f"{tool} {flag}: docs/cli.md lists it for {sorted(tools)} only")
    for flag, tools in documented.items():
        for tool in (every if tools == {"all"} else tools):
            if tool in TOOLS and flag not in tool_flags(tool):
                problems.append(f"docs/cli.md lists {flag} for {tool}, which has no such flag")
    assert not problems, "\n".join(problems)


def _option(tool: str, flag: str):
    return next(a for a in tool_parser(tool)._actions if flag in a.option_strings)


@pytest.mark.parametrize(("flag", "default"), [("--device", "auto"), ("--overwrite", False), ("--progress", True)])
def test_shared_flags_have_one_default(flag, default):
    for tool in TOOLS:
        if flag in tool_flags(tool):
            assert _option(tool, flag).default == default, tool


def test_shared_flags_have_one_type():
    types: dict[str, dict[str, str]] = {}
    for tool in TOOLS:
        for action in tool_parser(tool)._actions:
            for flag in action.option_strings:
                kind = "list" if action.nargs == "+" else ("switch" if action.nargs == "?" else str(action.type))
                types.setdefault(flag, {})[tool] = kind.replace(" | None", "").replace("Optional[", "")
    mixed = {flag: by_tool for flag, by_tool in types.items() if len(set(by_tool.values())) > 1}
    assert not mixed, mixed


def test_mistyped_flag_and_subcommand(capsys):
    assert main(["index", *MINIMAL["index"], "--batchsize", "3"]) == 2
    err = capsys.readouterr().err
    assert "--batchsize: did you mean --batch_size?" in err and "Traceback" not in err
    assert main(["idnex"]) == 2
    assert "did you mean 'index'?" in capsys.readouterr().err
    assert main(["predict"]) == 2


def test_lightning_typo_is_one_paragraph(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["fit", "--config", str(QUICKSTART), "--model.init_args.doc_reg_weigth", "1e-3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    message = [line for line in err if line.startswith("error:")]
    assert message == ["error: --model.init_args.doc_reg_weigth: SpladeModule has no argument 'doc_reg_weigth'; did "
                       "you mean 'doc_reg_weight' or 'query_reg_weight'? (splade-lightning fit --model.help "
                       "SpladeModule lists its arguments)"]
    assert not any(line.startswith("usage:") for line in err)


def test_short_class_names_in_help(capsys):
    assert main(["fit", "--model.help", "SpladeModule"]) == 0
    out = capsys.readouterr().out
    assert "--model.doc_reg_weight" in out and "--model.encoder" in out
    # in a fresh process, where nothing else has imported the (lazily loaded) data module class yet
    done = subprocess.run([sys.executable, "-m", "splade_lightning", "fit", "--data.help", "RetrievalDataModule"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--data.val_sets" in done.stdout and "--data.train" in done.stdout


def test_switches(tmp_path):
    parser = tool_parser("idf")
    from splade_lightning.tools.parser import expand_switches, switches

    for argv, expected in ((["--overwrite"], True), (["--overwrite=false"], False), (["--no_overwrite"], False),
                           (["--overwrite", "true"], True), ([], False)):
        assert parser.parse_args(expand_switches(argv, switches(parser))).overwrite is expected, argv


@pytest.mark.skipif(shutil.which("splade-lightning", path=str(Path(sys.executable).parent)) is None,
                    reason="the package is not installed with its console script")
def test_console_script():
    script = shutil.which("splade-lightning", path=str(Path(sys.executable).parent))
    out = subprocess.run([script, "--help"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("usage: splade-lightning SUBCOMMAND") and all(name in out for name in [*LIGHTNING, *TOOLS])
