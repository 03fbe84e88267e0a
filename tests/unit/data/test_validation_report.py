"""Up-front data validation: every bad record of tests/fixtures/bad_data (training files and evaluation sets alike) is
reported in one exception with its file:line; ``on_bad_record="skip"`` drops and counts them instead."""

import csv
import shutil
from pathlib import Path

import pytest

from splade_lightning.data import IdGroups, RetrievalDataModule, ScoredGroups, TextTriplets
from splade_lightning.errors import DataError, DataErrors
from splade_lightning.problems import SkippedRecords, error_kind

BAD = Path(__file__).resolve().parents[2] / "fixtures" / "bad_data"

#: (file, line) -> a phrase of the message, for every bad record of the fixture (see its README.md)
TRAIN = {("train.jsonl", 2): "malformed JSON", ("train.jsonl", 3): "expected a JSON object",
         ("train.jsonl", 4): "field 'pos': missing column", ("train.jsonl", 5): "field 'query': expected a string",
         ("train.jsonl", 6): "empty query", ("train.jsonl", 7): "not valid UTF-8",
         ("train.jsonl", 8): "duplicate record: same query, positives and negatives as",
         ("train.jsonl", 9): "empty list", ("train.jsonl", 10): "expected a string or a list of strings"}
BEIR = {("corpus.jsonl", 3): "duplicate id 'd1' (first seen on line 1)", ("corpus.jsonl", 4): "field 'text'",
        ("corpus.jsonl", 5): "malformed JSON", ("queries.jsonl", 2): "empty query text",
        ("queries.jsonl", 4): "expected a JSON object", ("test.tsv", 3): "expected an integer grade, got 'one'",
        ("test.tsv", 4): "corpus id 'd9' is not in corpus.jsonl", ("test.tsv", 5): "duplicate judgment",
        ("test.tsv", 7): "expected 3 tab-separated fields",
        ("test.tsv", 8): "query id 'q2' has no valid record in queries.jsonl (its record there was rejected)",
        ("test.tsv", 9): "query id 'q7' is not in"}
SCORED = {("scored.jsonl", 2): "non-finite score(s) at list position(s) [0]",
          ("scored.jsonl", 3): "field 'pos_scores': non-finite", ("scored.jsonl", 4): "1 scores for 2 text(s)",
          ("scored.jsonl", 5): "field 'neg_scores': missing field", ("scored.jsonl", 6): "expected a list of numbers",
          ("scored.jsonl", 7): "field 'pos_scores': non-finite"}
IDS = {("hard_negatives.jsonl", 2): "doc id 'd404' is not in", ("hard_negatives.jsonl", 3): "query id 'q404'",
       ("hard_negatives.jsonl", 4): "field 'pos': empty list", ("teacher_scores.jsonl", 2): "non-finite score nan",
       ("teacher_scores.jsonl", 3): "2 scores for 3 doc_ids",
       ("teacher_scores.jsonl", 5): "duplicate query id 'q1' (also on line 1)"}
EVAL_SET = [{"path": str(BAD / "beir"), "split": "test", "name": "bad"}]


def located(errors: list[DataError]) -> dict[tuple[str, int], list[str]]:
    out: dict[tuple[str, int], list[str]] = {}
    for e in errors:
        out.setdefault((Path(e.path).name, e.line), []).append(str(e))
    return out


def assert_reported(info, expected: dict[tuple[str, int], str]) -> None:
    """Exactly the expected file:line pairs, each message containing its phrase and the full file:line."""
    found = located(info.value.errors)
    assert set(found) == set(expected)
    for (name, line), phrase in expected.items():
        messages = found[(name, line)]
        assert any(phrase in m and f"{name}:{line}" in m for m in messages), (name, line, messages)


def test_one_exception_lists_every_training_and_evaluation_problem(tokenizer_dir):
    data = RetrievalDataModule(TextTriplets([str(BAD / "train.jsonl")], negative_columns=["neg"]), val_sets=EVAL_SET,
                               tokenizer=tokenizer_dir, batch_size=2)
    with pytest.raises(DataErrors) as info:
        data.setup("fit")
    assert_reported(info, {**TRAIN, **BEIR})
    assert str(info.value).startswith(f"{len(TRAIN) + len(BEIR)} problem(s) found in the input data")


def test_scored_text_and_evaluation_problems_are_reported_together(tokenizer_dir):
    data = RetrievalDataModule(ScoredGroups([str(BAD / "scored.jsonl")]), val_sets=EVAL_SET, tokenizer=tokenizer_dir,
                               batch_size=2)
    with pytest.raises(DataErrors) as info:
        data.setup("fit")
    assert_reported(info, {**SCORED, **BEIR})


def test_id_file_problems_are_reported_together(tokenizer_dir, tmp_path):
    ids = BAD / "id"
    train = IdGroups(str(ids / "corpus.jsonl"), str(ids / "queries.jsonl"),
                     hard_negatives=[str(ids / "hard_negatives.jsonl")],
                     teacher_scores=[str(ids / "teacher_scores.jsonl")], cache_dir=str(tmp_path))
    data = RetrievalDataModule(train, val_sets=EVAL_SET, tokenizer=tokenizer_dir, batch_size=2)
    with pytest.raises(DataErrors) as info:
        data.setup("fit")
    assert_reported(info, {**IDS, **BEIR})
    assert not [p for p in tmp_path.rglob("*") if "hard_negatives" in p.name]  # a file with problems is not cached


def test_skip_drops_and_counts_bad_records(tokenizer_dir):
    data = RetrievalDataModule(TextTriplets([str(BAD / "train.jsonl")], negative_columns=["neg"]), val_sets=EVAL_SET,
                               tokenizer=tokenizer_dir, batch_size=2, on_bad_record="skip")
    with pytest.warns(UserWarning, match=r"on_bad_record='skip': skipped 20 bad record\(s\)") as warned:
        data.setup("fit")
    skipped = data.skipped_records
    assert skipped.total == len(TRAIN) + len(BEIR) == 20
    assert {Path(p).name: n for p, n in skipped.per_file().items()} == {
        "train.jsonl": 9, "corpus.jsonl": 3, "queries.jsonl": 2, "test.tsv": 6}
    kinds = {kind for _, kind in skipped.kinds}
    assert kinds == {"malformed JSON", "not an object", "missing field", "wrong type", "empty text or list",
                     "invalid UTF-8", "duplicate", "non-integer grade", "dangling id", "wrong field count"}
    assert "train.jsonl:2" in str(warned[0].message)  # the first examples, with file:line
    assert [r.line for r in data.train_dataset.records] == [1, 11, 12, 13, 14, 15, 16]
    bad = data.eval_data("validate", 0)
    assert bad.qrels == {"q1": {"d1": 1}, "q3": {"d5": 1}}  # the first of two judgments is kept
    assert set(bad.queries) == {"q1", "q3"} and set(bad.corpus) == {"d1", "d2", "d5", "d6"}


def test_skip_for_scored_and_id_files(tokenizer_dir, tmp_path):
    scored = RetrievalDataModule(ScoredGroups([str(BAD / "scored.jsonl")]), tokenizer=tokenizer_dir, batch_size=2,
                                 on_bad_record="skip")
    with pytest.warns(UserWarning, match="skipped 6 bad record"):
        scored.setup("fit")
    assert scored.skipped_records.total == 6 and len(scored.train_dataset) == 5
    ids = BAD / "id"
    train = IdGroups(str(ids / "corpus.jsonl"), str(ids / "queries.jsonl"),
                     hard_negatives=[str(ids / "hard_negatives.jsonl")], cache_dir=str(tmp_path))
    by_id = RetrievalDataModule(train, tokenizer=tokenizer_dir, batch_size=2, on_bad_record="skip")
    with pytest.warns(UserWarning, match="skipped 3 bad record"):
        by_id.setup("fit")
    assert by_id.skipped_records.total == 3 and len(by_id.train_dataset) == 4
    assert sorted(by_id.train_dataset[i].query for i in range(4)) == [f"query number {i}" for i in range(1, 5)]


def test_skip_still_raises_file_problems_with_everything_else(tokenizer_dir, tmp_path):
    header = tmp_path / "header.tsv"
    header.write_text("query\tpos\tpos\nq\tp\tp\n")
    data = RetrievalDataModule(TextTriplets([str(BAD / "train.jsonl"), str(header)], negative_columns=["neg"]),
                               tokenizer=tokenizer_dir, batch_size=2, on_bad_record="skip")
    with pytest.raises(DataErrors) as info:
        data.setup("fit")
    found = located(info.value.errors)
    assert ("header.tsv", 1) in found and "header line must name each column once" in found[("header.tsv", 1)][0]
    assert set(TRAIN) <= set(found)  # the record problems are listed too, not skipped silently


def test_skip_count_is_logged_at_fit_start(tiny_bert_dir, tmp_path):
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import CSVLogger

    from splade_lightning.models import SpladeEncoder
    from splade_lightning.systems import SpladeModule

    data = RetrievalDataModule(TextTriplets([str(BAD / "train.jsonl")], negative_columns=["neg"]),
                               tokenizer=tiny_bert_dir, batch_size=2, max_query_length=8, max_doc_length=8,
                               on_bad_record="skip")
    trainer = pl.Trainer(accelerator="cpu", max_steps=1, logger=CSVLogger(tmp_path), enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    with pytest.warns(UserWarning, match="skipped 9 bad record"):
        trainer.fit(SpladeModule(SpladeEncoder(tiny_bert_dir)), datamodule=data)
    rows = list(csv.DictReader(next(tmp_path.rglob("metrics.csv")).open()))
    assert [float(r["data/skipped_records"]) for r in rows if r.get("data/skipped_records")] == [9.0]


def test_invalid_utf8_in_qrels_is_reported(tmp_path):
    from splade_lightning.data import load_beir

    root = tmp_path / "set"
    shutil.copytree(BAD / "beir", root)
    (root / "qrels" / "test.tsv").write_bytes(b"q1\td1\t1\nq3\td5\xff\t1\n")
    with pytest.raises(DataErrors) as info:
        load_beir(root)
    assert any(e.line == 2 and "not valid UTF-8" in str(e) and e.path.endswith("test.tsv") for e in info.value.errors)


def test_skip_summary_and_kinds():
    skipped = SkippedRecords(shown=1)
    skipped.add([DataError("malformed JSON (x)", "a.jsonl", 2), DataError("empty list", "a.jsonl", 2, "pos"),
                 DataError("corpus id 'x' is not in corpus.jsonl", "q.tsv", 5, "corpus-id")])
    assert skipped.total == 2 and skipped.per_file() == {"a.jsonl": 1, "q.tsv": 1}
    assert skipped.summary() == ("on_bad_record='skip': skipped 2 bad record(s): a.jsonl: 1 record(s) (empty text or "
                                 "list 1, malformed JSON 1); q.tsv: 1 record(s) (dangling id 1). First examples: "
                                 "a.jsonl:2: malformed JSON (x)")
    assert error_kind(DataError("2 scores for 3 doc_ids; expected one score per doc id")) == "wrong list length"
