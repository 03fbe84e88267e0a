"""Candidate retrieval of ``mine``: exact top-k with ties, BM25 over bm25s, positive scores, the shard cache."""

import numpy as np
import pytest
import torch

from splade_lightning.mining.retrievers import (
    BM25Retriever,
    SparseModelRetriever,
    corpus_fingerprint,
    encode_corpus,
    row_dots,
    top_k_positive,
)

INF = np.inf


def test_top_k_positive_order_ties_and_padding():
    scores = np.array([0.0, 3.0, 1.0, 3.0, 2.0, 0.0, 3.0])
    values, rows = top_k_positive(scores, 2)  # three rows tie at 3: the lowest rows win
    assert rows.tolist() == [1, 3] and values.tolist() == [3.0, 3.0]
    values, rows = top_k_positive(scores, 7)  # only scores > 0 are candidates; the rest is padding
    assert rows.tolist() == [1, 3, 6, 4, 2, -1, -1]
    assert values.tolist() == [3.0, 3.0, 3.0, 2.0, 1.0, -INF, -INF]
    assert top_k_positive(np.zeros(3), 2)[1].tolist() == [-1, -1]


def test_top_k_positive_matches_a_full_sort():
    rng = np.random.default_rng(0)
    scores = np.round(rng.normal(size=500), 1)  # many ties
    values, rows = top_k_positive(scores, 40)
    expected = sorted((-s, i) for i, s in enumerate(scores) if s > 0)[:40]
    assert rows.tolist() == [i for _, i in expected]


TEXTS = ["the cat sat on the mat", "dogs bark at the postman", "a cat and a dog", "python programming language",
         "the mat was red", "a large python snake"]


def test_bm25_retriever_scores_and_candidates():
    bm25 = BM25Retriever(TEXTS, stopwords="en", progress=False)
    full = bm25.scores("cat on a mat")
    assert full.shape == (6,) and full[0] > full[2] > 0 and full[4] > 0
    assert full[1] == 0 and full[3] == 0  # no shared term
    found = bm25.search(["cat on a mat", "zebra"], [np.array([4]), np.array([0])], k=4)
    assert found.rows[0].tolist()[:3] == [i for _, i in sorted((-s, i) for i, s in enumerate(full) if s > 0)]
    assert found.rows[0, 3] == -1 and found.scores[0, 3] == -INF
    assert found.positive_scores[0].tolist() == [full[4]]
    assert found.rows[1].tolist() == [-1] * 4 and found.positive_scores[1].tolist() == [0.0]  # unknown term


def test_bm25_search_todo_subset():
    bm25 = BM25Retriever(TEXTS, progress=False)
    texts, positives = ["cat mat", "python snake"], [np.array([0]), np.array([5])]
    full = bm25.search(texts, positives, k=3)
    part = bm25.search(texts, positives, k=3, todo=[1])
    assert part.rows.tolist() == full.rows[1:].tolist()
    assert part.positive_scores[0].tolist() == full.positive_scores[1].tolist()


def test_bm25_stopwords_option():
    with_stop = BM25Retriever(["the the the", "cat"], stopwords="en", progress=False)
    without = BM25Retriever(["the the the", "cat"], stopwords="none", progress=False)
    assert with_stop.scores("the").tolist() == [0.0, 0.0]
    assert without.scores("the")[0] > 0


def test_row_dots_matches_dense():
    rng = np.random.default_rng(1)
    q = torch.tensor(rng.random((3, 10)) * (rng.random((3, 10)) > 0.5), dtype=torch.float32)
    d = torch.tensor(rng.random((5, 10)) * (rng.random((5, 10)) > 0.5), dtype=torch.float32)
    d_csr = d.to_sparse_csr()
    parts = (d_csr.crow_indices().numpy(), d_csr.col_indices().numpy(), d_csr.values().numpy())
    out = row_dots(q.to_sparse_csr(), parts, [np.array([0, 4]), np.array([2]), np.array([], dtype=np.int64)])
    full = (q @ d.T).numpy()
    np.testing.assert_allclose(out[0], full[0, [0, 4]], rtol=1e-6)
    np.testing.assert_allclose(out[1], full[1, [2]], rtol=1e-6)
    assert out[2].shape == (0,)


class CountingModel:
    """A stand-in sparse model: text -> a fixed sparse vector; counts the documents it encodes."""

    vocab_size = 8
    max_doc_length = 16

    def __init__(self):
        self.encoded = 0

    def _vector(self, text: str) -> torch.Tensor:
        vec = torch.zeros(self.vocab_size)
        for word in text.split():
            vec[sum(map(ord, word)) % self.vocab_size] += 1.0
        return vec

    def encode_document(self, texts, batch_size=32):
        self.encoded += len(texts)
        return torch.stack([self._vector(t) for t in texts]).to_sparse()

    encode_query = encode_document


def test_encode_corpus_reuses_finished_shards(tmp_path):
    model = CountingModel()
    cache = tmp_path / "out.jsonl.cache" / "corpus"
    first = encode_corpus(model, TEXTS, cache, "fp1", shard_size=4, batch_size=2, progress=False)
    assert model.encoded == 6 and sorted(p.name for p in cache.glob("shard_*.pt")) == ["shard_00000.pt",
                                                                                      "shard_00001.pt"]
    (cache / "shard_00001.pt").unlink()  # an interrupted run: only the last shard is missing
    (cache / "shard_00000.pt").with_name(".shard_00001.pt.123.tmp").write_bytes(b"partial")  # a dead temp file
    again = encode_corpus(model, TEXTS, cache, "fp1", shard_size=4, batch_size=2, progress=False)
    assert model.encoded == 6 + 2 and not list(cache.glob(".shard_*"))
    assert torch.equal(first.to_dense(), again.to_dense())
    (cache / "shard_00000.pt").write_bytes(b"garbage")  # a damaged shard is re-encoded, never trusted
    encode_corpus(model, TEXTS, cache, "fp1", shard_size=4, batch_size=2, progress=False)
    assert model.encoded == 8 + 4


def test_encode_corpus_discards_other_fingerprints(tmp_path, capsys):
    model = CountingModel()
    cache = tmp_path / "c"
    encode_corpus(model, TEXTS, cache, "fp1", shard_size=4, batch_size=2, progress=False)
    encode_corpus(model, TEXTS, cache, "fp2", shard_size=4, batch_size=2, progress=False)
    assert model.encoded == 12 and "re-encoding" in capsys.readouterr().out
    encode_corpus(model, TEXTS, cache, "fp2", shard_size=3, batch_size=2, progress=False)  # other shard size
    assert model.encoded == 18


def test_corpus_fingerprint_changes_with_texts_and_model():
    base = corpus_fingerprint(["m", 1], 256, ["a", "b"])
    assert base == corpus_fingerprint(["m", 1], 256, ["a", "b"])
    assert base != corpus_fingerprint(["m", 1], 256, ["a", "c"])
    assert base != corpus_fingerprint(["m", 1], 256, ["ab"])  # texts are separated
    assert base != corpus_fingerprint(["m", 2], 256, ["a", "b"])
    assert base != corpus_fingerprint(["m", 1], 128, ["a", "b"])


def test_sparse_model_retriever_search(tmp_path):
    model = CountingModel()
    retriever = SparseModelRetriever(model, TEXTS, tmp_path / "c", "fp", shard_size=4, batch_size=2, name="toy",
                                     progress=False)
    queries = ["cat mat", "python snake zebra"]
    found = retriever.search(queries, [np.array([0]), np.array([5, 3])], k=8)
    dense_q = torch.stack([model._vector(t) for t in queries])
    dense_d = torch.stack([model._vector(t) for t in TEXTS])
    full = (dense_q @ dense_d.T).numpy()
    for q in range(2):
        expected = sorted((-s, i) for i, s in enumerate(full[q]) if s > 0)
        assert found.rows[q].tolist() == [i for _, i in expected] + [-1] * (8 - len(expected))
    np.testing.assert_allclose(found.positive_scores[1], full[1, [5, 3]])
    part = retriever.search(queries, [np.array([0]), np.array([5, 3])], k=8, todo=[1])
    assert part.rows.tolist() == found.rows[1:].tolist()
    assert part.scores.tolist() == found.scores[1:].tolist()


@pytest.mark.parametrize("stopwords", ["en", "none"])
def test_bm25_empty_documents(stopwords):
    bm25 = BM25Retriever(["", "cat"], stopwords=stopwords, progress=False)
    assert bm25.search(["cat"], [np.array([1])], k=2).rows.tolist() == [[1, -1]]
