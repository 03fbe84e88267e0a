"""Document frequencies and smoothed IDF of a corpus, streamed from a BEIR directory or a JSONL file.

The corpus is never held in memory: documents are read line by line and tokenised in batches.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import chain
from pathlib import Path
from typing import TypeVar

import numpy as np
from tqdm.auto import tqdm

from splade_lightning.errors import ConfigError, DataError
from splade_lightning.formats.beir_files import beir_file, stream_id_texts
from splade_lightning.formats.idf_json import idf_dict

T = TypeVar("T")


def iter_corpus(path: str | Path) -> Iterator[str]:
    """Stream the document texts of a corpus, in file order
    (:func:`~splade_lightning.formats.beir_files.stream_id_texts`: ``title + " " + text`` when the title is non-empty).

    Args:
        path: a BEIR directory (``corpus.jsonl`` is read) or a JSONL file of ``{"_id", "title"?, "text"}`` records.

    Raises:
        DataError, DataErrors: a missing file or bad records, each naming the file and the line.
    """
    for _, text in stream_id_texts(path, "doc"):
        yield text


def count_corpus_lines(path: str | Path) -> int:
    """Number of non-blank lines of a corpus (the progress bar's total); no JSON parsing."""
    with open(beir_file(path, "doc"), "rb") as f:
        return sum(1 for raw in f if raw.strip())


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of ``size`` items (the last may be shorter), streamed (``itertools.batched`` of 3.12)."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def document_frequencies(texts: Iterable[str], tokenizer, batch_size: int = 1024, total: int | None = None,
                         progress: bool = True) -> tuple[np.ndarray, int]:
    """Count, for each token id, the documents that contain it (each distinct token once per document).

    Whole texts are tokenised (no truncation, no special tokens), ``batch_size`` documents at a time.

    Args:
        texts: the documents, streamed (e.g. :func:`iter_corpus`).
        tokenizer: a HF fast tokenizer.
        batch_size: documents per tokenizer call.
        total: number of documents, for the progress bar (optional).
        progress: show a tqdm progress bar over documents.

    Returns:
        ``(df, n_docs)``: ``df`` is ``(len(tokenizer),)`` int64, ``n_docs`` the number of documents read.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    vocab = len(tokenizer)
    df = np.zeros(vocab, dtype=np.int64)
    n_docs = 0
    with tqdm(total=total, unit="doc", desc="document frequencies", disable=not progress) as bar:
        for batch in batches(texts, batch_size):
            ids = tokenizer(batch, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
            lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
            flat = np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
            if flat.size and (flat.max() >= vocab or flat.min() < 0):
                raise ConfigError(f"the tokenizer produced id {int(flat.max())} outside its vocabulary of {vocab}")
            # one key per (document, token) pair; np.unique keeps each distinct token once per document
            keys = np.unique(np.repeat(np.arange(len(ids), dtype=np.int64), lengths) * vocab + flat)
            df += np.bincount(keys % vocab, minlength=vocab)
            n_docs += len(batch)
            bar.update(len(batch))
    return df, n_docs


def smoothed_idf(df: np.ndarray, n_docs: int) -> np.ndarray:
    """Smoothed IDF ``log((N + 1) / (df + 1)) + 1``, float64.

    This is the IDF of scikit-learn's ``TfidfVectorizer(smooth_idf=True)`` (the default): as if one extra document
    contained every token once, so that no division by zero occurs, plus one so that tokens in every document keep a
    positive weight. A token in no document gets ``log(N + 1) + 1``.

    Args:
        df: ``(V,)`` document frequency of each token id.
        n_docs: ``N``, the number of documents.
    """
    df = np.asarray(df, dtype=np.float64)
    return np.log((n_docs + 1.0) / (df + 1.0)) + 1.0


def corpus_idf(path: str | Path, tokenizer, batch_size: int = 1024,
               progress: bool = True) -> tuple[dict[str, float], np.ndarray, int]:
    """Smoothed IDF of every token of ``tokenizer`` over a corpus.

    Args:
        path: a BEIR directory or a JSONL file (see :func:`iter_corpus`).
        tokenizer: a HF fast tokenizer.
        batch_size: documents per tokenizer call.
        progress: show a progress bar.

    Returns:
        ``(table, df, n_docs)``: token string -> IDF for every token id, in id order (the ``idf.json`` content);
        ``(len(tokenizer),)`` int64 document frequencies; the number of documents.

    Raises:
        DataError: a bad corpus line, or a corpus without documents.
    """
    total = count_corpus_lines(path) if progress else None
    df, n_docs = document_frequencies(iter_corpus(path), tokenizer, batch_size, total=total, progress=progress)
    if n_docs == 0:
        raise DataError("the corpus has no documents; expected one JSON record per line", beir_file(path, "doc"))
    return idf_dict(smoothed_idf(df, n_docs), tokenizer), df, n_docs
