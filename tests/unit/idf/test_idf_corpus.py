"""Corpus IDF: streamed reading of BEIR / JSONL corpora, document frequencies, smoothed IDF checked by hand."""

import math

import numpy as np
import pytest
from conftest import write_jsonl

from splade_lightning.errors import DataError, DataErrors
from splade_lightning.idf import corpus_idf, count_corpus_lines, document_frequencies, iter_corpus, smoothed_idf

# N = 4 documents; "the" in d1+d2, "cat" in d1+d3, "dog" in d2+d4 (twice in d4), "a" in d3+d4 (twice in d4),
# "zebra" and "piano" only in titles, "violin" nowhere. d3's blank title is dropped.
ROWS = [
    {"_id": "d1", "title": "Zebra", "text": "the cat sat on the mat"},
    {"_id": "d2", "title": "", "text": "the dog ran"},
    {"_id": "d3", "title": "   ", "text": "a red cat"},
    {"_id": "d4", "title": "Piano", "text": "a dog and a dog"},
]
IDF_IN_2_OF_4 = math.log(5 / 3) + 1
IDF_IN_1_OF_4 = math.log(5 / 2) + 1
IDF_ABSENT = math.log(5) + 1


@pytest.fixture(scope="module")
def tok(tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir)


def test_iter_corpus_title_rule(tmp_path):
    texts = list(iter_corpus(write_jsonl(tmp_path / "c.jsonl", ROWS)))
    assert texts == ["Zebra the cat sat on the mat", "the dog ran", "a red cat", "Piano a dog and a dog"]


@pytest.mark.parametrize("form", ["jsonl", "beir"])
def test_corpus_idf_by_hand(tmp_path, tok, form):
    if form == "jsonl":
        path = write_jsonl(tmp_path / "corpus_file.jsonl", ROWS)
    else:
        write_jsonl(tmp_path / "beir" / "corpus.jsonl", ROWS)
        path = tmp_path / "beir"
    table, df, n_docs = corpus_idf(path, tok, batch_size=3, progress=False)  # 3 + 1: spans two batches
    assert n_docs == 4
    assert df.dtype == np.int64 and df.shape == (len(tok),)
    ids = tok.convert_tokens_to_ids
    expected_df = {"the": 2, "cat": 2, "dog": 2, "a": 2, "zebra": 1, "piano": 1, "ran": 1, "violin": 0, "[CLS]": 0}
    assert {t: int(df[ids(t)]) for t in expected_df} == expected_df
    assert int(df.sum()) == 6 + 3 + 3 + 4  # distinct tokens per document, summed
    for t in ("the", "cat", "dog", "a"):
        assert table[t] == pytest.approx(IDF_IN_2_OF_4, abs=1e-12)
    assert table["zebra"] == pytest.approx(IDF_IN_1_OF_4, abs=1e-12)
    assert table["piano"] == pytest.approx(IDF_IN_1_OF_4, abs=1e-12)
    assert table["violin"] == pytest.approx(IDF_ABSENT, abs=1e-12)
    assert table["[CLS]"] == pytest.approx(IDF_ABSENT, abs=1e-12)
    assert len(table) == len(tok) and list(table)[:2] == ["[PAD]", "[unused0]"]


def test_smoothed_idf_formula():
    out = smoothed_idf(np.array([0, 1, 3, 9]), 9)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, [math.log(10) + 1, math.log(5) + 1, math.log(2.5) + 1, 1.0], rtol=0, atol=1e-12)


def test_document_frequencies_no_truncation_and_batches(tok):
    long_doc = "the " * 600 + "zebra"  # far beyond the model's 512 positions: the last token still counts
    df, n = document_frequencies(["zebra zebra", long_doc, "", "cat"], tok, batch_size=2, progress=False)
    assert n == 4
    assert df[tok.convert_tokens_to_ids("zebra")] == 2
    assert df[tok.convert_tokens_to_ids("the")] == 1
    assert df[tok.convert_tokens_to_ids("cat")] == 1
    assert df.sum() == 4


def test_document_frequencies_streams(tok):
    consumed = []

    def gen():
        for i in range(5):
            consumed.append(i)
            yield "cat"

    df, n = document_frequencies(gen(), tok, batch_size=2, progress=False)
    assert (n, int(df[tok.convert_tokens_to_ids("cat")])) == (5, 5) and consumed == [0, 1, 2, 3, 4]


def test_count_corpus_lines_skips_blank(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"_id": "1", "text": "a"}\n\n   \n{"_id": "2", "text": "b"}\n')
    assert count_corpus_lines(path) == 2
    assert list(iter_corpus(path)) == ["a", "b"]


@pytest.mark.parametrize("content, line, field, words", [
    ('{"_id": "1", "text": "ok"}\n{"text": \n', 2, None, "malformed JSON"),
    ('\n["a list"]\n', 2, None, "expected a JSON object, got list"),
    ('{"_id": "d1", "body": "x"}\n', 1, "text", "missing field"),
    ('{"_id": "d1", "text": 3}\n', 1, "text", "expected a string, got int 3"),
    ('{"_id": "d1", "text": "x", "title": ["t"]}\n', 1, "title", "expected a string, got list"),
    ('{"_id": "d1", "text": "x"}\n{"_id": "d1", "text": "y"}\n', 2, "_id", "duplicate id"),
])
def test_iter_corpus_bad_lines(tmp_path, content, line, field, words):
    """The same record rules as every BEIR reader (:mod:`splade_lightning.formats.beir`), every problem collected."""
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(DataErrors) as info:
        list(iter_corpus(path))
    [err] = info.value.errors
    assert (err.path, err.line, err.field) == (str(path), line, field)
    assert words in str(err)


def test_iter_corpus_missing_paths(tmp_path):
    with pytest.raises(DataError, match="corpus not found"):
        list(iter_corpus(tmp_path / "nope.jsonl"))
    (tmp_path / "beir").mkdir()
    with pytest.raises(DataError, match="no corpus.jsonl") as info:
        list(iter_corpus(tmp_path / "beir"))
    assert info.value.path == str(tmp_path / "beir")


def test_corpus_idf_empty_corpus(tmp_path, tok):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")
    with pytest.raises(DataError, match="no documents"):
        corpus_idf(path, tok, progress=False)
