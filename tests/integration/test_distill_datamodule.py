"""The distillation sources (IdGroups, ScoredGroups) through RetrievalDataModule end to end: argument checks,
id-based and text-inline scored data, real shared data."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from conftest import SHARED_DATA, write_jsonl

from splade_lightning.data import BeirSet, IdGroups, RetrievalDataModule, ScoredGroups, TextTriplets
from splade_lightning.errors import ConfigError, DataErrors
from splade_lightning.types import TrainBatch

HOTPOT = SHARED_DATA / "hotpotqa-distractor-500"
KD = SHARED_DATA / "flagembedding-kd-samples" / "kd.jsonl"
needs_shared = pytest.mark.skipif(not (HOTPOT.is_dir() and KD.is_file()), reason="no shared data")


@pytest.fixture()
def id_files(tmp_path) -> dict[str, str]:
    """16 queries; query q: positive d{q}_0, hard negatives d{q}_1..6 from two systems, teacher scores 10 - k."""
    docs = [{"_id": f"d{q}_{k}", "title": f"T{q}", "text": f"passage {q} {k}"} for q in range(16) for k in range(7)]
    hard = [{"qid": f"q{q}", "pos": [f"d{q}_0"], "neg": {"bm25": [f"d{q}_{k}" for k in (1, 2, 3)],
                                                         "ce": [f"d{q}_{k}" for k in (4, 5, 6)]}} for q in range(16)]
    teacher = [{"qid": f"q{q}", "doc_ids": [f"d{q}_{k}" for k in range(7)], "scores": [10.0 - k for k in range(7)]}
               for q in range(16)]
    paths = {"corpus": write_jsonl(tmp_path / "corpus.jsonl", docs),
             "queries": write_jsonl(tmp_path / "queries.jsonl", [{"_id": f"q{q}", "text": f"question {q}"}
                                                                 for q in range(16)]),
             "hard": write_jsonl(tmp_path / "hard.jsonl", hard), "teacher": write_jsonl(tmp_path / "teacher.jsonl",
                                                                                        teacher)}
    return {k: str(v) for k, v in paths.items()}


SOURCE_ARGS = ("negative_systems", "score_range", "negative_sampling", "num_negatives")


def id_module(id_files, tokenizer_dir, tmp_path, **kw) -> RetrievalDataModule:
    source = dict(hard_negatives=[id_files["hard"]], teacher_scores=[id_files["teacher"]], num_negatives=2,
                  cache_dir=str(tmp_path / "cache"))
    source.update({k: kw.pop(k) for k in SOURCE_ARGS if k in kw})
    train = IdGroups(id_files["corpus"], id_files["queries"], **source)
    args = dict(tokenizer=tokenizer_dir, batch_size=4, max_query_length=8, max_doc_length=16)
    return RetrievalDataModule(train, **{**args, **kw})


def test_id_based_train_dataloader_end_to_end(id_files, tokenizer_dir, tmp_path):
    dm = id_module(id_files, tokenizer_dir, tmp_path, negative_systems=["ce"], score_range=[4.0, 6.0],
                   negative_sampling="top", num_workers=2)
    dm.setup("fit")
    loader = dm.train_dataloader()
    batches = list(loader)
    assert len(loader) == len(batches) == 4
    for batch in batches:
        assert isinstance(batch, TrainBatch) and batch.num_negatives == 2
        assert batch.doc_input_ids.shape[0] == 12 and batch.teacher_scores.tolist() == [[10.0, 6.0, 5.0]] * 4
    assert next(iter(dm.train_dataloader())).doc_input_ids.equal(batches[0].doc_input_ids)  # same epoch, same batch


def test_epochs_change_choices_and_workers_agree(id_files, tokenizer_dir, tmp_path):
    def first_batches(workers: int, epoch: int):
        dm = id_module(id_files, tokenizer_dir, tmp_path, num_workers=workers)
        dm.setup("fit")
        dm.train_dataset.set_epoch(epoch)
        return [b.teacher_scores for b in dm.train_dataloader()]

    zero = first_batches(0, 0)
    assert all(a.equal(b) for a, b in zip(zero, first_batches(2, 0)))
    assert not all(a.equal(b) for a, b in zip(zero, first_batches(0, 1)))
    assert all(row[0] == 10.0 and set(row[1:]) <= {9.0, 8.0, 7.0, 6.0, 5.0, 4.0} for b in zero for row in b.tolist())


TRAIN = "--data.init_args.train.init_args"


def test_init_collects_every_problem(tmp_path, id_files, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        train = IdGroups("nope.jsonl", "gone/queries.jsonl", hard_negatives=[id_files["hard"], "gone.jsonl"],
                         negative_systems=[], score_range=[3.0, 1.0], negative_sampling="best", num_negatives=-1,
                         router_mapping={"query": "query"})
        RetrievalDataModule(train, batch_size=0)
    message = str(info.value)
    for expected in ("--data.init_args.batch_size: must be an int > 0", f"{TRAIN}.corpus: nope.jsonl: file not found",
                     f"{TRAIN}.queries: gone/queries.jsonl", f"{TRAIN}.hard_negatives: gone.jsonl",
                     f"{TRAIN}.num_negatives: must be an int >= 0",
                     f"{TRAIN}.negative_systems: must be a non-empty list",
                     f"{TRAIN}.score_range: filters on teacher scores, but {TRAIN}.teacher_scores is not set",
                     f"{TRAIN}.score_range: must be [min, max]",
                     f"{TRAIN}.negative_sampling: must be 'random' or 'top'",
                     f"{TRAIN}.router_mapping: no route for column(s) ['pos']"):
        assert expected in message, expected
    assert message.startswith("invalid RetrievalDataModule arguments")
    with pytest.raises(ConfigError, match=f"{TRAIN}.hard_negatives and/or {TRAIN}.teacher_scores: id-based"):
        RetrievalDataModule(IdGroups(id_files["corpus"], id_files["queries"]))
    with pytest.raises(ConfigError, match=f"negative_systems: selects systems of {TRAIN}.hard_negatives"):
        RetrievalDataModule(IdGroups(id_files["corpus"], id_files["queries"], teacher_scores=[id_files["teacher"]],
                                     negative_systems=["bm25"]))
    with pytest.raises(ConfigError) as info:
        RetrievalDataModule(ScoredGroups(["x.csv", id_files["hard"]], negative_sampling="best", score_range=[2, 1]))
    for expected in (f"{TRAIN}.files: x.csv", f"{TRAIN}.negative_sampling", f"{TRAIN}.score_range: must be"):
        assert expected in str(info.value), expected
    with pytest.raises(ConfigError, match="--data.init_args.train: required to fit"):
        RetrievalDataModule(tokenizer="x").setup("fit")


def test_routes_of_the_sources(id_files):
    mapping = {"query": "document", "pos": "document"}
    assert IdGroups(id_files["corpus"], id_files["queries"], router_mapping=mapping).routes == ("document", "document")
    assert ScoredGroups([id_files["hard"]]).routes == ("query", "document")
    triplets = TextTriplets([id_files["hard"]], "q", "p", ["n"], router_mapping={"q": "query", "p": "query",
                                                                                "n": "query"})
    assert triplets.routes == ("query", "query") and triplets.problems() == []


def test_setup_reports_training_and_eval_problems_together(id_files, tokenizer_dir, tmp_path, toy_beir):
    lines = Path(id_files["teacher"]).read_text().splitlines()
    lines[2] = json.dumps({"qid": "q2", "doc_ids": ["d2_0", "ghost"], "scores": [1.0, float("nan")]})
    Path(id_files["teacher"]).write_text("\n".join(lines) + "\n")
    (toy_beir / "qrels" / "test.tsv").open("a").write("q1\tghost\t1\n")
    dm = id_module(id_files, tokenizer_dir, tmp_path, val_sets=[BeirSet(str(toy_beir))])
    with pytest.raises(DataErrors) as info:
        dm.setup("fit")
    assert [(Path(e.path).name, e.line, e.field) for e in info.value.errors] == [
        ("teacher.jsonl", 3, "doc_ids"), ("teacher.jsonl", 3, "scores"), ("test.tsv", 7, "corpus-id")]


def test_scored_groups_and_jsonargparse(tmp_path, tokenizer_dir):
    from jsonargparse import ArgumentParser

    rows = [{"query": f"q {i}", "pos": [f"p {i}"], "neg": [f"n {i} {k}" for k in range(4)], "pos_scores": [5.0],
             "neg_scores": [4.0, 3.0, 2.0, 1.0]} for i in range(8)]
    path = write_jsonl(tmp_path / "kd.jsonl", rows)
    parser = ArgumentParser()
    parser.add_class_arguments(RetrievalDataModule, "data")
    train = {"class_path": "splade_lightning.data.ScoredGroups", "init_args": {
        "files": [str(path)], "num_negatives": 3, "negative_sampling": "top", "score_range": [1.5, 4]}}
    config = {"data": {"train": train, "tokenizer": tokenizer_dir, "batch_size": 4}}
    dm = parser.instantiate_classes(parser.parse_string(json.dumps(config))).data
    assert isinstance(dm.train, ScoredGroups) and dm.train.score_range == [1.5, 4.0]
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch.teacher_scores.tolist() == [[5.0, 4.0, 3.0, 2.0]] * 4


@needs_shared
def test_real_hotpotqa_hard_negatives(tokenizer_dir, tmp_path, caplog):
    args = dict(corpus=str(HOTPOT / "corpus.jsonl"), queries=str(HOTPOT / "queries.jsonl"),
                hard_negatives=[str(HOTPOT / "hard_negatives.jsonl")], cache_dir=str(tmp_path / "cache"))
    options = dict(tokenizer=tokenizer_dir, batch_size=16, max_doc_length=64)
    with pytest.raises(DataErrors) as info:  # 7 questions have no mined negatives (README)
        RetrievalDataModule(IdGroups(**args, num_negatives=1), **options).setup("fit")
    assert [e.line for e in info.value.errors] == [258, 292, 299, 351, 366, 433, 459]
    assert all(e.field == "neg" and "no negatives left" in str(e) for e in info.value.errors)
    kept = [line for line in (HOTPOT / "hard_negatives.jsonl").read_text().splitlines() if '"neg": {"tfidf_' in line
            and '[]' not in line]
    (tmp_path / "hard.jsonl").write_text("\n".join(kept) + "\n")
    dm = RetrievalDataModule(IdGroups(**{**args, "hard_negatives": [str(tmp_path / "hard.jsonl")]}, num_negatives=4),
                             **options)
    with caplog.at_level(logging.INFO):
        dm.setup("fit")
    assert any(re.search(r"skipped 1 training group\(s\) .*hard.jsonl:", r.getMessage())  # 3 negatives only
               for r in caplog.records if r.levelno == logging.INFO)
    loader = dm.train_dataloader()
    assert len(dm.train_dataset) == 492 and len(loader) == 492 // 16
    batch = next(iter(loader))
    assert batch.doc_input_ids.shape == (80, 64) and batch.teacher_scores is None
    corpus = {json.loads(line)["_id"]: json.loads(line) for line in (HOTPOT / "corpus.jsonl").open()}
    example = dm.train_dataset.example(0, 0)
    positive = corpus[json.loads(kept[0])["pos"][0]], corpus[json.loads(kept[0])["pos"][1]]
    assert example.docs[0] in {f"{d['title']} {d['text']}" for d in positive}


@needs_shared
def test_real_flagembedding_teacher_scores(tokenizer_dir):
    dm = RetrievalDataModule(ScoredGroups([str(KD)], num_negatives=7), tokenizer=tokenizer_dir, batch_size=8,
                             max_doc_length=32)
    dm.setup("fit")
    raw = [json.loads(line) for line in KD.read_text().splitlines()]
    loader = dm.train_dataloader()
    assert len(loader) == 39 // 8
    for indices, batch in zip(loader.batch_sampler, loader):
        assert batch.teacher_scores.shape == (8, 8)
        for row, i in zip(batch.teacher_scores.tolist(), indices):
            assert row[0] == pytest.approx(raw[i]["pos_scores"][0])
            assert all(any(abs(v - s) < 1e-3 for s in raw[i]["neg_scores"]) for v in row[1:])
