"""The output policy's building blocks on hand-made directories: input overlap, directory states, manifests,
removal of own files only, and fingerprint differences."""

import json

import pytest

from splade_lightning.errors import ConfigError
from splade_lightning.formats.fingerprints import describe_changes, path_fingerprint, texts_fingerprint
from splade_lightning.formats.manifest import MANIFEST, foreign_files, read_manifest, write_manifest
from splade_lightning.formats.outputs import Input, check_not_input, dir_output, dir_output_state, remove_owned


@pytest.fixture()
def beir(tmp_path):
    root = tmp_path / "beir"
    (root / "qrels").mkdir(parents=True)
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        (root / name).write_text("x\n")
    return root


def test_input_overlap(beir, tmp_path):
    inputs = [Input(beir, "--data", reads=("corpus.jsonl", "queries.jsonl", "qrels"))]
    for output, phrase in [(beir, "is --data"), (tmp_path, "contains --data"), (beir / "corpus.jsonl", "reads"),
                           (beir / "qrels" / "new.tsv", "reads")]:
        with pytest.raises(ConfigError, match=phrase):
            check_not_input(output, "--output", inputs)
    check_not_input(beir / "idf.json", "--output", inputs)  # a new file beside the data
    check_not_input(tmp_path / "elsewhere", "--output", inputs)
    check_not_input(beir, "--output", [Input(tmp_path / "absent", "--model"), Input(None, "--x")])
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="inside --model"):
        check_not_input(model / "config.json", "--output", [Input(model, "--model")])
    check_not_input(model / "new_dir", "--output", [Input(model, "--model")])


def test_directory_states_and_manifest(tmp_path):
    out = tmp_path / "out"
    assert dir_output_state(out, "--output") == ("new", None)
    out.mkdir()
    assert dir_output_state(out, "--output") == ("empty", None)
    (out / "a.txt").write_text("a")
    with pytest.raises(ConfigError, match="not written by splade_lightning.*a.txt"):
        dir_output_state(out, "--output")
    write_manifest(out, "test", fingerprint={"k": 1})
    state, manifest = dir_output_state(out, "--output")
    assert state == "ours" and manifest["fingerprint"] == {"k": 1} and set(manifest["files"]) == {"a.txt"}
    (out / "b.txt").write_text("b")
    (out / ".a.txt.x1y2.tmp").write_text("left by an interrupted atomic write")
    assert foreign_files(out, manifest) == ["b.txt"]
    (out / "a.txt").write_text("changed")
    assert foreign_files(out, manifest) == ["a.txt (edited since it was written)", "b.txt"]
    with pytest.warns(UserWarning, match="b.txt"):
        remove_owned(out, manifest)
    assert sorted(p.name for p in out.iterdir()) == ["a.txt", "b.txt"]  # edited and foreign files stay
    (out / "f").write_text("")
    with pytest.raises(ConfigError, match="is a file"):
        dir_output_state(out / "f", "--output")


def test_dir_output_replaces_only_its_own_and_cleans_up_on_failure(tmp_path):
    out = tmp_path / "out"
    with dir_output(out, "--output", "test", overwrite=False) as tmp:
        (tmp / "sub").mkdir()
        (tmp / "sub" / "x.txt").write_text("1")
    assert read_manifest(out)["files"] == {"sub/x.txt": {"size": 1, "sha256": json.loads(
        (out / MANIFEST).read_text())["files"]["sub/x.txt"]["sha256"]}}
    with pytest.raises(ConfigError, match="--overwrite"):
        with dir_output(out, "--output", "test", overwrite=False):
            pass
    with pytest.raises(RuntimeError):
        with dir_output(out, "--output", "test", overwrite=True) as tmp:
            (tmp / "y.txt").write_text("2")
            raise RuntimeError("boom")
    assert (out / "sub" / "x.txt").read_text() == "1"
    with dir_output(out, "--output", "test", overwrite=True) as tmp:
        (tmp / "y.txt").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "y.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary or old directory left


def test_fingerprints(tmp_path):
    assert texts_fingerprint(["a", "b"]) != texts_fingerprint(["ab"]) != texts_fingerprint(["a"], ["b"])
    old = {"model": "1", "data": "2", "top_k": None}
    assert describe_changes(old, old) == []
    assert describe_changes(old, {"model": "9", "data": "2", "top_k": 5}) == [
        "the model (weights, settings or tokenizer) changed", "top_k: None -> 5"]
    assert describe_changes(None, old) == ["no readable fingerprint is recorded"]
    (tmp_path / "f").write_text("abc")
    first = path_fingerprint(tmp_path / "f")
    (tmp_path / "f").write_text("abd")  # same size, same name
    assert path_fingerprint(tmp_path / "f") != first
