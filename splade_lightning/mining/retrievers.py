"""Candidate retrieval for ``mine``: BM25 (``bm25s``) or exact search with a sparse model.

Both retrievers search the de-duplicated corpus texts of :class:`~splade_lightning.mining.data.MiningData` and return,
per query, the top-k rows by score (ties: lower row first) and the scores of the query's positives. Only documents
with a score > 0 (sharing at least one term, or active dimension, with the query) are candidates; the rest of the k
slots are padding (row −1, score −inf), as ST pads short FAISS results.

The model retriever caches the corpus encodings in shards under ``<output>.cache/corpus/``, each written atomically,
so an interrupted run re-encodes only the shards it had not finished.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from splade_lightning.formats.atomic import write_bytes_atomic, write_text_atomic
from splade_lightning.retrieval.exact import exact_search, stack_sparse

#: ``--bm25_stopwords`` values: the stopword lists every bm25s >= 0.2 ships (``none``: keep every token)
BM25_STOPWORDS = ("none", "en", "en_plus", "de", "es", "fr", "it", "nl", "no", "pt", "ru", "sv", "zh")


@dataclass
class Candidates:
    """Retrieved candidates of a batch of Q queries.

    Attributes:
        scores: (Q, K) float64 scores, −inf for padding.
        rows: (Q, K) int64 corpus rows, −1 for padding.
        positive_scores: per query, the scores of its positive rows (in the order given).
    """

    scores: np.ndarray
    rows: np.ndarray
    positive_scores: list[np.ndarray]


def top_k_positive(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best rows with a score > 0, by score descending then row ascending, padded with (−inf, −1).

    Args:
        scores: (N,) scores of every corpus row for one query.
        k: number of candidates.

    Returns:
        ``(scores, rows)``: (k,) float64 and (k,) int64.
    """
    rows = np.flatnonzero(scores > 0)
    values = scores[rows]
    if len(rows) > k:  # keep everything >= the k-th largest value (ties at the cut included), then sort exactly
        kth = np.partition(values, len(values) - k)[len(values) - k]
        keep = values >= kth
        rows, values = rows[keep], values[keep]
    order = np.lexsort((rows, -values))[:k]
    out_scores = np.full(k, -np.inf)
    out_rows = np.full(k, -1, dtype=np.int64)
    out_scores[: len(order)] = values[order]
    out_rows[: len(order)] = rows[order]
    return out_scores, out_rows


class BM25Retriever:
    """BM25 (bm25s, Lucene variant) over the corpus texts, tokenised by bm25s' tokenizer (lower-cased words of 2+
    characters, optional stopword removal).

    Args:
        texts: the corpus texts (row = index).
        stopwords: one of :data:`BM25_STOPWORDS`.
        k1: BM25 k1.
        b: BM25 b.
        progress: show bm25s' progress bars while indexing.
    """

    name = "bm25"

    def __init__(self, texts: Sequence[str], stopwords: str = "en", k1: float = 1.5, b: float = 0.75,
                 progress: bool = True):
        import bm25s

        self._bm25s = bm25s
        self._stopwords = None if stopwords == "none" else stopwords
        tokens = bm25s.tokenize(list(texts), stopwords=self._stopwords, show_progress=progress)
        self._index = bm25s.BM25(k1=k1, b=b)
        self._index.index(tokens, show_progress=progress)
        self._num_docs = len(texts)

    def scores(self, query_text: str) -> np.ndarray:
        """(N,) BM25 scores of every corpus row for one query (all 0 when no query term is in the corpus)."""
        tokens = self._bm25s.tokenize([query_text], stopwords=self._stopwords, return_ids=False,
                                      show_progress=False)[0]
        ids = self._index.get_tokens_ids(tokens)
        if not ids:
            return np.zeros(self._num_docs, dtype=np.float64)
        return self._index.get_scores_from_ids(ids).astype(np.float64)

    def search(self, query_texts: Sequence[str], positive_rows: Sequence[np.ndarray], k: int,
               todo: Sequence[int] | None = None) -> Candidates:
        """Top-k candidates and positive scores of the queries ``todo`` (positions in ``query_texts``, default all);
        ``positive_rows`` is aligned with ``query_texts``."""
        todo = range(len(query_texts)) if todo is None else todo
        scores = np.full((len(todo), k), -np.inf)
        rows = np.full((len(todo), k), -1, dtype=np.int64)
        positive_scores = []
        for j, q in enumerate(todo):
            full = self.scores(query_texts[q])
            scores[j], rows[j] = top_k_positive(full, k)
            positive_scores.append(full[positive_rows[q]])
        return Candidates(scores, rows, positive_scores)


def corpus_fingerprint(model_key: str | list, max_doc_length: int, texts: Sequence[str]) -> str:
    """sha256 of the model identity (its weights fingerprint), the document truncation length and every corpus
    text."""
    digest = hashlib.sha256(json.dumps([model_key, max_doc_length], sort_keys=True).encode("utf-8"))
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def _csr_numpy(reps: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return reps.crow_indices().numpy(), reps.col_indices().numpy(), reps.values().numpy()


def _load_shard(path: Path, rows: int, width: int) -> torch.Tensor | None:
    """A cached shard as a CSR tensor, or None when it is missing, unreadable or of the wrong shape."""
    if not path.is_file():
        return None
    try:
        parts = torch.load(path, weights_only=True)
        shard = torch.sparse_csr_tensor(parts["crow"], parts["col"], parts["val"], tuple(parts["shape"]),
                                        check_invariants=True)
    except Exception:  # a damaged cache file is re-encoded, never trusted
        return None
    return shard if tuple(shard.shape) == (rows, width) else None


def encode_corpus(model, texts: Sequence[str], directory: Path, fingerprint: str, shard_size: int, batch_size: int,
                  progress: bool = True) -> torch.Tensor:
    """Encode the corpus with ``model.encode_document``, caching shards of ``shard_size`` texts in ``directory``.

    Shards whose ``meta.json`` does not match (other model, corpus, length or shard size) are discarded.

    Returns:
        (N, V) float32 CSR tensor on the CPU.
    """
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"fingerprint": fingerprint, "shard_size": shard_size, "num_texts": len(texts)}
    meta_path = directory / "meta.json"
    try:
        old = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else None
    except (OSError, ValueError):
        old = {}
    if old is not None and old != meta:
        for stale in directory.glob("shard_*.pt"):
            stale.unlink()
        print(f"corpus encodings in {directory} belong to another model, corpus or --shard_size; re-encoding",
              flush=True)
    for dead in directory.glob(".shard_*.tmp"):  # temporary files of a run killed while writing a shard
        dead.unlink()
    write_text_atomic(meta_path, json.dumps(meta, indent=1))
    shards = []
    bar = tqdm(total=len(texts), desc="encode corpus", unit="doc", disable=not progress)
    for i in range(math.ceil(len(texts) / shard_size)):
        start, end = i * shard_size, min((i + 1) * shard_size, len(texts))
        path = directory / f"shard_{i:05d}.pt"
        shard = _load_shard(path, end - start, model.vocab_size)
        if shard is None:
            reps = model.encode_document(list(texts[start:end]), batch_size=batch_size)
            shard = stack_sparse([reps.clone()])  # clone: a normal tensor, not an inference-mode one
            parts = {"crow": shard.crow_indices(), "col": shard.col_indices(), "val": shard.values(),
                     "shape": list(shard.shape)}
            write_bytes_atomic(path, lambda handle, parts=parts: torch.save(parts, handle))
        shards.append(shard)
        bar.update(end - start)
    bar.close()
    return stack_sparse(shards)


def row_dots(queries: torch.Tensor, docs: tuple[np.ndarray, np.ndarray, np.ndarray],
             rows: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per query q, the dot products of query row q with the doc rows ``rows[q]``.

    Args:
        queries: (Q, V) CSR query reps.
        docs: (crow, col, val) of the (N, V) CSR doc reps.
        rows: per query, the doc rows to score.
    """
    q_crow, q_col, q_val = _csr_numpy(queries)
    d_crow, d_col, d_val = docs
    dense = np.zeros(queries.shape[1], dtype=np.float64)
    out = []
    for q, doc_rows in enumerate(rows):
        lo, hi = q_crow[q], q_crow[q + 1]
        dense[q_col[lo:hi]] = q_val[lo:hi]
        out.append(np.array([float(d_val[d_crow[r]:d_crow[r + 1]] @ dense[d_col[d_crow[r]:d_crow[r + 1]]])
                             for r in doc_rows], dtype=np.float64))
        dense[q_col[lo:hi]] = 0.0
    return out


class SparseModelRetriever:
    """Exact dot-product retrieval (:func:`~splade_lightning.retrieval.exact.exact_search`) with a sparse model.

    Args:
        model: a loaded :class:`~splade_lightning.api.SparseModel`.
        texts: the corpus texts (row = index).
        cache: directory for the corpus encoding shards.
        fingerprint: :func:`corpus_fingerprint` of model and corpus.
        shard_size: texts per cached shard.
        batch_size: texts per encoder forward pass.
        name: the system name written in the output.
        progress: show the encoding progress bar.
    """

    def __init__(self, model, texts: Sequence[str], cache: Path, fingerprint: str, shard_size: int, batch_size: int,
                 name: str, progress: bool = True):
        self.model = model
        self.name = name
        self.batch_size = batch_size
        self.docs = encode_corpus(model, texts, cache, fingerprint, shard_size, batch_size, progress)
        self._doc_parts = _csr_numpy(self.docs)

    def search(self, query_texts: Sequence[str], positive_rows: Sequence[np.ndarray], k: int,
               todo: Sequence[int] | None = None) -> Candidates:
        """Top-k candidates and positive scores of the queries ``todo`` (positions in ``query_texts``, default all);
        ``positive_rows`` is aligned with ``query_texts``.

        All of ``query_texts`` is encoded and searched together (float sums depend on the batch), so a caller that
        always passes the same chunk gets the same scores, bit for bit, whichever of its queries are still to do.
        """
        todo = list(range(len(query_texts)) if todo is None else todo)
        reps = self.model.encode_query(list(query_texts), batch_size=self.batch_size).clone()  # not inference-mode
        queries = stack_sparse([reps])
        found_scores, found_rows = exact_search(queries, self.docs, k)  # the whole chunk: same sums as a full run
        scores = np.full((len(todo), k), -np.inf)
        rows = np.full((len(todo), k), -1, dtype=np.int64)
        width = found_scores.shape[1]
        scores[:, :width] = found_scores[todo].double().numpy()
        rows[:, :width] = found_rows[todo].numpy()
        missing = scores <= 0
        scores[missing], rows[missing] = -np.inf, -1
        positive_scores = row_dots(queries, self._doc_parts, positive_rows)
        return Candidates(scores, rows, [positive_scores[q] for q in todo])
