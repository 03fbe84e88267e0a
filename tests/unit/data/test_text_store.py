"""TextStore: id resolution, the BEIR title rule, cache reuse / staleness / atomicity / location, and bad input."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA, write_jsonl

from splade_lightning.data.ids import cache, text_store
from splade_lightning.data.ids.cache import cache_root
from splade_lightning.data.ids.strings import hash_ids
from splade_lightning.data.ids.text_store import TextStore
from splade_lightning.errors import DataError, DataErrors

DOCS = [{"_id": "d1", "title": "Cats", "text": "the cat sat"}, {"_id": "d2", "title": "", "text": "dogs bark"},
        {"_id": 7, "text": "integer id"}, {"_id": "d4", "title": None, "text": ""},
        {"_id": "é-ü", "title": "  ", "text": "unicode id"}]


@pytest.fixture()
def corpus(tmp_path) -> Path:
    return write_jsonl(tmp_path / "data" / "corpus.jsonl", DOCS)


def test_lookup_and_title_rule(corpus, tmp_path):
    store = TextStore(corpus, cache_dir=tmp_path / "cache")
    assert len(store) == 5 and store.path == str(corpus)
    assert store["d1"] == "Cats the cat sat" and store["d2"] == "dogs bark"  # title + " " + text when non-empty
    assert store["7"] == "integer id" and store["d4"] == "" and store["é-ü"] == "unicode id"
    assert "d1" in store and "nope" not in store and 7 not in store
    assert store.rows(["d2", "nope", "é-ü", "d1"]).tolist() == [1, -1, 4, 0]
    assert store.texts(["d4", "d1"]) == ["", "Cats the cat sat"]
    assert store.texts_at([2, 0]) == ["integer id", "Cats the cat sat"] and store.ids_at([2]) == ["7"]
    assert store.dataset.num_rows == 5 and store.dataset.column_names == ["_id", "text"]
    with pytest.raises(KeyError, match=f"'nope' is not in {corpus}"):
        store["nope"]
    with pytest.raises(KeyError, match=r"\['x', 'y'\] not in"):
        store.texts(["d1", "x", "y"])


def test_many_ids_vectorised_against_a_dict(tmp_path):
    rows = [{"_id": f"doc-{i * 7919 % 100_003}", "text": f"text {i}"} for i in range(3000)]
    store = TextStore(write_jsonl(tmp_path / "c.jsonl", rows), cache_dir=tmp_path / "cache")
    truth = {r["_id"]: i for i, r in enumerate(rows)}
    wanted = [f"doc-{k}" for k in range(0, 100_003, 17)]
    assert store.rows(wanted).tolist() == [truth.get(k, -1) for k in wanted]


def test_hash_collisions_are_resolved_by_the_id_string(corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(text_store, "hash_ids", lambda ids: np.zeros(len(text_store.as_string_array(ids)), np.uint64))
    store = TextStore(corpus, cache_dir=tmp_path / "cache")  # every id hashes to 0: all collide, none is a duplicate
    assert store.rows(["d4", "d1", "x", "7"]).tolist() == [3, 0, -1, 2] and store["é-ü"] == "unicode id"


def test_hash_is_stable_and_distinguishes_lengths():
    assert hash_ids(["a", "ab", "", "a"]).tolist()[0] == hash_ids(["a"]).tolist()[0]
    assert len(set(hash_ids(["a", "ab", "abc", "b"]).tolist())) == 4
    assert hash_ids(["1"]).tolist() == [0xAF63AC4C86019AFC]  # FNV-1a 64 of b"1": never change (caches store it)


def test_cache_reused_then_rebuilt_when_stale(corpus, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = TextStore(corpus, cache_dir=cache)
    built = []
    real_build = text_store.build_text_cache
    monkeypatch.setattr(text_store, "build_text_cache", lambda *a: (built.append(a), real_build(*a)))
    again = TextStore(corpus, cache_dir=cache)
    assert built == [] and again.cache_path == first.cache_path and again["d1"] == "Cats the cat sat"
    write_jsonl(corpus, DOCS + [{"_id": "d9", "text": "new doc"}])  # size and mtime change
    rebuilt = TextStore(corpus, cache_dir=cache)
    assert len(built) == 1 and rebuilt.cache_path != first.cache_path and rebuilt["d9"] == "new doc"
    assert [p.name for p in cache.iterdir()] == [Path(rebuilt.cache_path).name]  # the stale cache is gone
    os.utime(corpus, ns=(1, 1))  # same size, other mtime: rebuilt too
    assert TextStore(corpus, cache_dir=cache).cache_path != rebuilt.cache_path


def test_interrupted_build_leaves_no_cache(corpus, tmp_path, monkeypatch):
    cache = tmp_path / "cache"

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(text_store.np, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        TextStore(corpus, cache_dir=cache)
    assert list(cache.iterdir()) == []
    monkeypatch.undo()
    assert TextStore(corpus, cache_dir=cache)["d2"] == "dogs bark"


def test_abandoned_temporary_builds_are_removed(corpus, tmp_path):
    cache = tmp_path / "cache"
    first = TextStore(corpus, cache_dir=cache)
    name = Path(first.cache_path).name
    killed = cache / f".{name[:-4]}abcd.xyz.tmp"  # what a build killed by SIGKILL leaves
    killed.mkdir()
    recent = cache / f".{name[:-4]}efgh.xyz.tmp"  # maybe another process building right now: kept
    recent.mkdir()
    os.utime(killed, (1, 1))
    write_jsonl(corpus, DOCS[:2])
    TextStore(corpus, cache_dir=cache)
    assert not killed.exists() and recent.exists()


def test_default_cache_beside_the_file_and_fallback(corpus, tmp_path, monkeypatch):
    store = TextStore(corpus)
    assert Path(store.cache_path).parent == corpus.parent / ".splade_lightning_cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    real_access = os.access
    monkeypatch.setattr(cache.os, "access", lambda p, mode: False if ".splade_lightning_cache" in str(p)
                        else real_access(p, mode))
    assert cache_root(corpus, None) == tmp_path / "xdg" / "splade_lightning"
    assert Path(TextStore(corpus).cache_path).parent == tmp_path / "xdg" / "splade_lightning"


def test_pickles_without_the_data(corpus, tmp_path):
    store = TextStore(corpus, cache_dir=tmp_path / "cache")
    store.rows(["d1"])  # opened
    blob = pickle.dumps(store)
    assert len(blob) < 2000
    assert pickle.loads(blob).texts(["d2"]) == ["dogs bark"]


def errors_of(path: Path, tmp_path: Path, **kw) -> list[DataError]:
    with pytest.raises(DataErrors) as info:
        TextStore(path, cache_dir=tmp_path / "cache", **kw)
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "cache").iterdir())  # nothing half-built left
    return info.value.errors


def test_duplicate_ids_name_both_lines(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [{"_id": "a", "text": "x"}, {"_id": "b", "text": "y"},
                                              {"_id": "a", "text": "z"}, {"_id": 5, "text": "w"},
                                              {"_id": "5", "text": "v"}])
    errors = errors_of(path, tmp_path)
    assert [(e.line, e.field) for e in errors] == [(3, "_id"), (5, "_id")]
    assert "duplicate id 'a' (first seen on line 1)" in str(errors[0]) and f"{path}:3" in str(errors[0])
    assert "duplicate id '5' (first seen on line 4)" in str(errors[1])


def test_bad_lines_are_all_reported(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"_id": "q1", "text": "fine"}\nnot json\n{"text": "no id"}\n[1]\n{"_id": "q5", "text": 3}\n'
                    '{"_id": "", "text": "empty id"}\n{"_id": "q7", "text": "  "}\n')
    errors = errors_of(path, tmp_path, require_text=True)
    assert [(e.line, e.field) for e in errors] == [(2, None), (3, "_id"), (4, None), (5, "text"), (6, "_id"),
                                                   (7, "text")]
    assert "malformed JSON" in str(errors[0]) and "empty query text for id 'q7'" in str(errors[5])
    assert all(e.path == str(path) for e in errors)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(DataError, match="not found"):
        TextStore(tmp_path / "nope.jsonl", cache_dir=tmp_path / "cache")
    (tmp_path / "empty.jsonl").write_text("\n")
    (error,) = errors_of(tmp_path / "empty.jsonl", tmp_path)
    assert "no records" in str(error)


@pytest.mark.skipif(not (SHARED_DATA / "hotpotqa-distractor-500").is_dir(), reason="no shared data")
def test_real_hotpotqa_corpus_matches_the_beir_reader(tmp_path):
    from splade_lightning.formats.beir import read_id_text

    path = SHARED_DATA / "hotpotqa-distractor-500" / "corpus.jsonl"
    store = TextStore(path, cache_dir=tmp_path)
    expected = read_id_text(path, "doc", [])
    assert len(store) == len(expected) == 4858
    ids = list(expected)
    assert store.texts(ids) == list(expected.values())
    assert json.loads((Path(store.cache_path) / "meta.json").read_text())["rows"] == 4858
