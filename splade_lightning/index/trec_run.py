"""TREC runs: turn top-k search results into ``{query_id: {doc_id: score}}`` and write them as TREC run files."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from splade_lightning.atomic import write_text_atomic
from splade_lightning.errors import DataError

__all__ = ["to_run", "trec_order", "write_trec_run"]


def _check_ids(ids: Sequence[str], name: str, expected: int | None) -> None:
    if isinstance(ids, str) or not isinstance(ids, Sequence):
        raise DataError(f"{name} must be a sequence of string ids, got {type(ids).__name__}")
    if expected is not None and len(ids) != expected:
        raise DataError(f"{name} has {len(ids)} ids but the tensors have {expected} rows; expected one id per row")
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dup = next(i for i in ids if i in seen or seen.add(i))
        raise DataError(f"{name} contains the duplicate id {dup!r}; expected unique ids")


def to_run(query_ids: Sequence[str], doc_ids: Sequence[str], scores: torch.Tensor,
           indices: torch.Tensor) -> dict[str, dict[str, float]]:
    """Turn the output of :func:`~splade_lightning.index.exact_search` into a TREC-style run.

    Every returned document is kept, including zero-score ones (as sentence-transformers' evaluator does).

    Args:
        query_ids: the Q query ids, in the row order of ``scores``.
        doc_ids: the N document ids, in the row order of the searched ``doc_reps`` (``indices`` point into it).
        scores: (Q, k) scores.
        indices: (Q, k) int64 document indices.

    Returns:
        ``{query_id: {doc_id: score}}``; each inner dict is in the search order (score descending, index ascending).

    Raises:
        DataError: on mismatched shapes, ids that do not match the rows, duplicate ids or out-of-range indices.
    """
    if scores.dim() != 2 or scores.shape != indices.shape:
        raise DataError(f"scores and indices must both be (Q, k); got {tuple(scores.shape)} and {tuple(indices.shape)}")
    _check_ids(query_ids, "query_ids", scores.shape[0])
    _check_ids(doc_ids, "doc_ids", None)
    idx = indices.detach().cpu().long()
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= len(doc_ids)):
        raise DataError(f"indices must lie in [0, {len(doc_ids)}) (one per doc id), got range "
                        f"[{int(idx.min())}, {int(idx.max())}]")
    rows, vals = idx.tolist(), scores.detach().cpu().double().tolist()
    return {qid: {doc_ids[j]: s for j, s in zip(r, v)} for qid, r, v in zip(query_ids, rows, vals)}


def trec_order(ranking: Mapping[str, float]) -> list[tuple[str, float]]:
    """Order one query's ranking the way trec_eval does: score descending, then doc id descending (string order).

    trec_eval ignores the rank column and the file order; it sorts by score and breaks ties by ``strcmp`` on the
    document id, larger id first. Writing runs in this order keeps the rank column consistent with what it evaluates.

    Args:
        ranking: ``{doc_id: score}`` of one query.

    Returns:
        ``[(doc_id, score), ...]`` in trec_eval's rank order.
    """
    return sorted(ranking.items(), key=lambda item: (item[1], item[0]), reverse=True)


def _check_token(value: str, what: str) -> None:
    if not isinstance(value, str) or value == "" or any(c.isspace() for c in value):
        raise DataError(f"{what} must be a non-empty string without whitespace for a TREC run file, got {value!r}")


def _run_lines(run: Mapping[str, Mapping[str, float]], tag: str) -> list[str]:
    lines = []
    for query_id in sorted(run):
        _check_token(query_id, "query id")
        for rank, (doc_id, score) in enumerate(trec_order(run[query_id]), start=1):
            _check_token(doc_id, f"doc id of query {query_id!r}")
            lines.append(f"{query_id} Q0 {doc_id} {rank} {float(score)!r} {tag}\n")
    return lines


def write_trec_run(run: Mapping[str, Mapping[str, float]], path: str | Path, tag: str) -> Path:
    """Write a run as a TREC run file (``qid Q0 docid rank score tag``), atomically.

    Queries are written in sorted id order and documents in trec_eval's order (:func:`trec_order`); scores are
    written with ``repr`` so they read back exactly. The file is first written to a temporary file in the same
    directory and then moved into place with ``os.replace``, so readers never see a partial file.

    Args:
        run: ``{query_id: {doc_id: score}}``.
        path: destination file; missing parent directories are created.
        tag: run name written in the last column (no whitespace).

    Returns:
        The written path.

    Raises:
        DataError: if ``tag`` or an id is empty or contains whitespace.
    """
    _check_token(tag, "tag")
    lines = _run_lines(run, tag)
    return write_text_atomic(path, "".join(lines))
