"""Resumable outputs refuse stale state: ``index`` and ``mine`` re-run after one document's text was edited (same
path, same count, same size), after other weights were saved at the model's path, with another setting, and with the
recorded fingerprint gone, each refuse (exit 2, nothing written) and rebuild with ``--overwrite`` into exactly what a
fresh build gives; ``score`` always rebuilds, only with ``--overwrite``."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_jsonl

import splade_lightning
from splade_lightning.formats.index_store import load_index
from splade_lightning.formats.manifest import MANIFEST
from splade_lightning.tools.main import main

DOCS = [("d1", "the cat sat on the mat"), ("d2", "dogs bark at the postman"), ("d3", "python is a language"),
        ("d4", "the mat was red"), ("d5", "a python is a snake"), ("d6", "lightning strikes twice")]


def cli(*args) -> tuple[int, str]:
    return main([str(a) for a in args]), ""


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))}


@pytest.fixture()
def world(tmp_path, tiny_bert_dir) -> Path:
    beir = tmp_path / "beir"
    write_jsonl(beir / "corpus.jsonl", [{"_id": i, "title": "", "text": t} for i, t in DOCS])
    write_jsonl(beir / "queries.jsonl", [{"_id": "q1", "text": "cat on a mat"}, {"_id": "q2", "text": "python"},
                                         {"_id": "q3", "text": "barking dogs"}])
    (beir / "qrels").mkdir()
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\nq3\td2\t1\n")
    model = splade_lightning.load(tiny_bert_dir)
    model.max_query_length, model.max_doc_length = 16, 32
    model.save(tmp_path / "model")
    write_jsonl(tmp_path / "hn.jsonl", [{"qid": "q1", "pos": ["d1"], "neg": ["d4", "d2"]},
                                        {"qid": "q2", "pos": ["d3"], "neg": ["d5"]}])
    return tmp_path


def edit_one_document(world: Path) -> None:
    """Same path, same record count, same byte size: only one document's text differs."""
    path = world / "beir" / "corpus.jsonl"
    before = path.stat().st_size
    path.write_text(path.read_text().replace("dogs bark at the postman", "hogs bark at the postman"))
    assert path.stat().st_size == before


def swap_weights(world: Path) -> None:
    """Other weights saved at the model's path (same files, same sizes)."""
    model = splade_lightning.load(world / "model")
    with torch.no_grad():
        model.encoder.mlm.get_output_embeddings().bias.add_(0.25)
    shutil.rmtree(world / "model")
    model.save(world / "model")


def drop_fingerprint(directory: Path) -> None:
    manifest = json.loads((directory / MANIFEST).read_text())
    manifest["fingerprint"] = None
    (directory / MANIFEST).write_text(json.dumps(manifest))


# --- index ------------------------------------------------------------------------------------------------------

def index_args(world: Path, output: Path, *extra) -> list:
    return ["index", "--model", world / "model", "--corpus", world / "beir", "--output", output, "--shard_size", "4",
            "--no_progress", *extra]


def same_index(a: Path, b: Path) -> None:
    x, y = load_index(a), load_index(b)
    assert x.ids == y.ids and x.vocab_size == y.vocab_size
    for name in ("indptr", "indices", "values"):
        np.testing.assert_array_equal(getattr(x, name), getattr(y, name))


@pytest.mark.parametrize(("change", "extra", "message"), [
    (edit_one_document, (), "the input data (its ids or texts) changed"),
    (swap_weights, (), "the model (weights, settings or tokenizer) changed"),
    (None, ("--top_k_prune", "3"), "top_k_prune: None -> 3"),
    ("fingerprint", (), "no readable fingerprint is recorded"),
])
def test_index_refuses_stale_state_and_rebuilds_like_fresh(world, capsys, change, extra, message):
    index = world / "index"
    assert cli(*index_args(world, index))[0] == 0
    if callable(change):
        change(world)
    elif change == "fingerprint":
        drop_fingerprint(index)
    before = tree(world)
    assert cli(*index_args(world, index, *extra))[0] == 2
    err = capsys.readouterr().err
    assert message in err and "--overwrite" in err and "reused" in err, err
    assert tree(world) == before
    assert cli(*index_args(world, index, *extra, "--overwrite"))[0] == 0
    assert cli(*index_args(world, world / "fresh", *extra))[0] == 0
    same_index(index, world / "fresh")


def test_index_without_its_manifest_is_foreign(world, capsys):
    index = world / "index"
    assert cli(*index_args(world, index))[0] == 0
    (index / MANIFEST).unlink()
    before = tree(world)
    for extra in ((), ("--overwrite",)):
        assert cli(*index_args(world, index, *extra))[0] == 2
        assert "not written by splade_lightning" in capsys.readouterr().err
    assert tree(world) == before


def test_search_checks_the_model_against_the_index(world, capsys):
    index = world / "index"
    assert cli(*index_args(world, index))[0] == 0
    assert cli("search", "--index", index, "--queries", world / "beir", "--output", world / "a.trec",
               "--no_progress")[0] == 0  # --model defaults to the index's
    other = splade_lightning.load(world / "model")
    with torch.no_grad():
        other.encoder.mlm.get_output_embeddings().bias.add_(0.25)
    other.save(world / "other")  # same vocabulary size, other weights
    assert cli("search", "--index", index, "--queries", world / "beir", "--model", world / "other", "--output",
               world / "b.trec", "--no_progress")[0] == 2
    err = capsys.readouterr().err
    assert "is not the model --index" in err and not (world / "b.trec").exists()
    assert cli("search", "--index", index, "--queries", world / "beir", "--model", world / "model", "--output",
               world / "c.trec", "--no_progress")[0] == 0
    assert (world / "a.trec").read_text() == (world / "c.trec").read_text()


# --- mine -------------------------------------------------------------------------------------------------------

def mine_args(world: Path, output: Path, *extra) -> list:
    return ["mine", "--data", world / "beir", "--split", "test", "--output", output, "--retriever", world / "model",
            "--num_negatives", "2", "--output_scores", "--device", "cpu", "--no_progress", *extra]


@pytest.mark.parametrize(("change", "extra", "message"), [
    (edit_one_document, (), "the input data (its ids or texts) changed"),
    (swap_weights, (), "the model (weights, settings or tokenizer) changed"),
    (None, ("--num_negatives", "1"), "num_negatives: 2 -> 1"),
    ("fingerprint", (), "no readable fingerprint is recorded"),
    ("manifest", (), "not written by splade_lightning"),
])
def test_mine_refuses_stale_state_and_rebuilds_like_fresh(world, capsys, change, extra, message):
    out = world / "hn_out.jsonl"
    assert cli(*mine_args(world, out))[0] == 0
    out.write_bytes(out.read_bytes()[:-5])  # an interrupted run: would be resumed
    if callable(change):
        change(world)
    elif change == "fingerprint":
        drop_fingerprint(Path(f"{out}.cache"))
    elif change == "manifest":
        (Path(f"{out}.cache") / MANIFEST).unlink()
    before = tree(world)
    assert cli(*mine_args(world, out, *extra))[0] == 2  # a later --num_negatives replaces the earlier one
    err = capsys.readouterr().err
    assert message in err and "--overwrite" in err and "othing was" in err, err
    assert tree(world) == before
    if change == "manifest":  # the cache directory is no longer recognisably ours: move it away to rebuild
        shutil.rmtree(f"{out}.cache")
    assert cli(*mine_args(world, out, *extra, "--overwrite"))[0] == 0
    assert cli(*mine_args(world, world / "fresh.jsonl", *extra))[0] == 0
    assert out.read_bytes() == (world / "fresh.jsonl").read_bytes()


# --- score ------------------------------------------------------------------------------------------------------

def score_args(world: Path, output: Path, *extra) -> list:
    return ["score", "--input", world / "hn.jsonl", "--queries", world / "beir", "--corpus", world / "beir",
            "--teacher", f"sparse:{world / 'model'}", "--output", output, "--device", "cpu", "--no_progress", *extra]


@pytest.mark.parametrize("change", [edit_one_document, swap_weights, None])
def test_score_rebuilds_only_with_overwrite(world, capsys, change):
    out = world / "scores.jsonl"
    assert cli(*score_args(world, out))[0] == 0
    if change is not None:
        change(world)
    before = tree(world)
    assert cli(*score_args(world, out))[0] == 2
    assert "--overwrite" in capsys.readouterr().err and tree(world) == before
    assert cli(*score_args(world, out, "--overwrite"))[0] == 0
    assert cli(*score_args(world, world / "fresh.jsonl"))[0] == 0
    assert out.read_bytes() == (world / "fresh.jsonl").read_bytes()
