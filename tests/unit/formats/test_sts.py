"""STS files: loading, validation errors with file:line, on_bad_record, names."""

import json

import pytest

from splade_lightning.errors import DataErrors
from splade_lightning.formats.sts import StsSet, load_sts, load_sts_set, parse_text_id, text_id
from splade_lightning.problems import SkippedRecords


def write(path, lines):
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


GOOD = [{"sentence1": "a cat", "sentence2": "a dog", "score": 1.5},
        {"sentence1": "a man runs", "sentence2": "a man is running", "score": 5},
        {"sentence1": "rain", "sentence2": "sun", "score": 0.0, "extra": "ignored"}]


def test_loads_pairs_and_scores(tmp_path):
    data = load_sts(write(tmp_path / "pairs.jsonl", GOOD))
    assert data.sentences1 == ["a cat", "a man runs", "rain"]
    assert data.sentences2 == ["a dog", "a man is running", "sun"]
    assert data.scores == [1.5, 5.0, 0.0] and data.similarity == "dot"
    assert data.name == f"{tmp_path.name}-pairs"


def test_custom_columns_name_and_similarity(tmp_path):
    rows = [{"a": r["sentence1"], "b": r["sentence2"], "gold": r["score"]} for r in GOOD]
    sts_set = StsSet(str(write(tmp_path / "x.jsonl", rows)), name="mine", sentence1_column="a",
                     sentence2_column="b", score_column="gold", similarity="cosine")
    data = load_sts_set(sts_set)
    assert data.name == "mine" and data.scores == [1.5, 5.0, 0.0] and data.similarity == "cosine"


def test_bad_rows_are_reported_with_file_line_and_field(tmp_path):
    path = write(tmp_path / "bad.jsonl", [
        GOOD[0],
        {"sentence1": "no second", "score": 1},           # 2: missing column
        {"sentence1": "x", "sentence2": "y", "score": "4.5"},  # 3: non-numeric score
        '{"sentence1": "x", "sentence2": "y", "score": NaN}',  # 4: NaN
        {"sentence1": "x", "sentence2": 3, "score": 1},    # 5: not a string
        "[1, 2]",                                          # 6: not an object
        "{broken",                                         # 7: malformed JSON
        {"sentence1": "x", "sentence2": "y", "score": True},  # 8: a bool is not a score
        GOOD[1],
    ])
    with pytest.raises(DataErrors) as info:
        load_sts(path)
    text = str(info.value)
    assert f"{path}:2: field 'sentence2': missing field" in text
    assert f"{path}:3: field 'score': expected a number" in text and "'4.5'" in text
    assert f"{path}:4: field 'score': expected a finite number, got nan" in text
    assert f"{path}:5: field 'sentence2': expected a string, got int" in text
    assert f"{path}:6: expected a JSON object" in text
    assert f"{path}:7: malformed JSON" in text
    assert f"{path}:8: field 'score': expected a number" in text
    assert len(info.value.errors) == 7


def test_skip_drops_bad_rows_and_counts_them(tmp_path):
    path = write(tmp_path / "bad.jsonl", [GOOD[0], {"sentence1": "x", "score": 1}, GOOD[1],
                                          '{"sentence1": "x", "sentence2": "y", "score": Infinity}'])
    skipped = SkippedRecords()
    data = load_sts(path, on_bad_record="skip", skipped=skipped)
    assert data.scores == [1.5, 5.0] and skipped.total == 2


def test_missing_file_and_too_few_pairs_raise_even_with_skip(tmp_path):
    with pytest.raises(DataErrors, match="STS file not found"):
        load_sts(tmp_path / "nope.jsonl", on_bad_record="skip", skipped=SkippedRecords())
    path = write(tmp_path / "one.jsonl", [GOOD[0], {"sentence1": "x"}])
    with pytest.raises(DataErrors, match="1 usable pair"):
        load_sts(path, on_bad_record="skip", skipped=SkippedRecords())


def test_text_ids_round_trip():
    assert text_id(2, 17) == "2:17" and parse_text_id("2:17") == (2, 17)


def test_bundled_stsb_cc_loads():
    from pathlib import Path

    root = Path(__file__).resolve().parents[3] / "data" / "stsb-cc"
    counts = {split: len(load_sts(root / f"{split}.jsonl").scores) for split in ("train", "dev", "test")}
    assert counts == {"train": 2999, "dev": 625, "test": 625}
    assert load_sts(root / "dev.jsonl").name == "stsb-cc-dev"
