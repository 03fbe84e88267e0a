"""Suite files (:mod:`splade_lightning.formats.suite`): parsing, path resolution, every problem named with its
file:line, expansion in ``val_sets``, and the preset suite shipped in data/suites/."""

from pathlib import Path

import pytest

from splade_lightning.data.arguments import as_beir_sets, check_eval_paths
from splade_lightning.errors import ConfigError
from splade_lightning.formats.beir import load_beir_set
from splade_lightning.formats.suite import SUITES_DIR, SuiteRef, preset_suites, read_suite, suite_file

REPO = Path(__file__).resolve().parents[3]


def _suite(tmp_path, text, name="s.yaml"):
    path = tmp_path / "suites" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_entries_resolve_against_the_suite_directory(tmp_path, toy_beir):
    path = _suite(tmp_path, "name: mine\nsets:\n  - {path: ../toy_beir, split: test, min_relevance: 2}\n"
                            "  - path: ../toy_beir\n    name: other\n    max_queries: 2\n  - {path: hf://BeIR/scifact}\n")
    suite = read_suite(str(path))
    assert suite.name == "mine" and suite.file == str(path)
    first, second, hub = suite.sets
    assert Path(first.path).resolve() == toy_beir.resolve() and first.min_relevance == 2 and first.suite == "mine"
    assert (first.line, first.index, second.line, second.index, hub.line) == (3, 0, 4, 1, 7)
    assert second.display_name == "other" and second.max_queries == 2 and second.split == "test"
    assert hub.path == "hf://BeIR/scifact" and hub.display_name == "scifact"
    data = load_beir_set(first)
    assert data.suite == "mine" and data.min_relevance == 2 and data.name == "toy_beir"


def test_name_defaults_to_the_file_stem(tmp_path, toy_beir):
    assert read_suite(str(_suite(tmp_path, "sets: [{path: ../toy_beir}]\n", "ood.yaml"))).name == "ood"


def test_every_problem_is_named_with_file_and_line(tmp_path):
    path = _suite(tmp_path, "name: s\ncolour: red\nsets:\n  - {path: a, splt: dev}\n  - {path: b, min_relevance: 0}\n"
                            "  - just-a-string\n  - {split: dev}\n  - {path: c, max_queries: -1}\n  - {path: d}\n"
                            "  - {path: e/d}\n")
    with pytest.raises(ConfigError) as info:
        read_suite(str(path))
    message = str(info.value)
    for expected in (f"{path}: unknown key 'colour'", f"{path}:4: sets[0]: unknown key 'splt'",
                     f"{path}:5: sets[1].min_relevance: expected an int >= 1, got 0",
                     f"{path}:6: sets[2]: expected a mapping", f"{path}:7: sets[3].path: expected a BEIR directory",
                     f"{path}:8: sets[4].max_queries: expected an int >= 1 or null", "two sets are named 'd'"):
        assert expected in message, expected


@pytest.mark.parametrize("text, expected", [
    ("sets: []\n", "sets: expected a non-empty list"), ("- a\n- b\n", "expected a mapping with keys"),
    ("name: a/b\nsets: [{path: x}]\n", "name: expected a name"), ("sets: [{path: x\n", "not valid YAML"),
])
def test_bad_files(tmp_path, text, expected):
    with pytest.raises(ConfigError, match=expected):
        read_suite(str(_suite(tmp_path, text)))


def test_missing_file_and_unknown_preset(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        suite_file(str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match=r"not a preset suite.*'bundled'"):
        suite_file("no-such-preset")


def test_val_sets_expand_suites_and_name_their_missing_files(tmp_path, toy_beir):
    path = _suite(tmp_path, "name: s\nsets:\n  - {path: ../toy_beir, name: a}\n  - {path: ../missing, name: b}\n")
    problems: list[str] = []
    sets = as_beir_sets([{"path": str(toy_beir), "name": "plain"}, SuiteRef(str(path)), {"suite": str(path)}],
                        "val_sets", problems)
    assert [s.display_name for s in sets] == ["plain", "a", "b", "a", "b"]
    assert problems == ["--data.init_args.val_sets: set names must be unique, got duplicates ['a', 'b'] (names default "
                        "to the directory's basename; give each set a distinct `name`)"]
    missing = check_eval_paths([("val_sets", sets[:3])])
    assert len(missing) == 1 and missing[0].startswith(f"{path}:4: sets[1] (in --data.init_args.val_sets):")
    problems = []
    as_beir_sets([{"path": str(toy_beir)}, {"suite": str(tmp_path / "gone.yaml")}], "val_sets", problems)
    assert problems[0].startswith("--data.init_args.val_sets[1]: suite file") and "does not exist" in problems[0]


def test_the_preset_suite_covers_every_bundled_evaluation_set():
    assert SUITES_DIR == REPO / "data" / "suites" and "bundled" in preset_suites()
    suite = read_suite("bundled")
    assert suite.name == "bundled"
    assert check_eval_paths([("suite", suite.sets)], prefix="") == []
    found = {(Path(s.path).resolve().name, s.split, s.min_relevance) for s in suite.sets}
    assert {("hotpotqa-500", "dev", 1), ("msmarco-trecdl-5k", "test", 2)} <= found
    # every bundled directory with held-out qrels is in the suite (qrels/train.tsv alone is training data)
    evaluable = {p.parent.parent.name for p in (REPO / "data").glob("*/qrels/*.tsv") if p.stem != "train"}
    missing = evaluable - {name for name, _, _ in found}
    assert not missing, f"add {sorted(missing)} to data/suites/bundled.yaml: the preset covers every bundled set"


@pytest.mark.parametrize("preset", preset_suites())
def test_every_preset_suite_parses_and_points_at_existing_sets(preset):
    suite = read_suite(preset)
    assert suite.sets and check_eval_paths([("suite", suite.sets)], prefix="") == []
