"""Exact (brute-force) sparse retrieval: stack sparse reps, dot-product top-k with deterministic ties.

Scores are dot products ``query_reps @ doc_reps.T``. Documents are processed in chunks of ``doc_chunk_size`` rows and
queries in blocks, and every (query block, doc chunk) pair is scored with one sparse x dense product: the (n, V) CSR
doc chunk times the dense (V, q) transposed query block. Its cost is ``q * nnz(chunk)`` multiply-adds, vectorised over
the queries, which on CPU beat a sparse x sparse product (inverted index) in our measurements because SPLADE score
matrices are mostly nonzero (every query shares some frequent term with most documents). A running top-k is merged
after every chunk, so memory stays ``O(Q * k + 2**25)`` floats.

Ties are broken by ascending document index at every step (within a chunk, at the cut-off and in the merge), so the
result does not depend on ``doc_chunk_size``. This matches sentence-transformers v6's evaluator.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch

from splade_lightning.errors import ConfigError, DataError

__all__ = ["exact_search", "stack_sparse", "to_run"]

# Largest score block (query rows x doc columns) materialised at once: 2**25 float32 = 128 MiB.
_MAX_BLOCK_ELEMENTS = 1 << 25


def _check_matrix(x: object, name: str) -> torch.Tensor:
    """Validate a 2-D floating dense/COO/CSR tensor with finite values and return it."""
    if not isinstance(x, torch.Tensor):
        raise DataError(f"{name} must be a torch.Tensor of shape (rows, V), got {type(x).__name__}")
    if x.dim() != 2:
        raise DataError(f"{name} must be 2-D (rows, V), got shape {tuple(x.shape)}")
    if x.layout not in (torch.strided, torch.sparse_coo, torch.sparse_csr):
        raise DataError(f"{name} must be dense, sparse COO or sparse CSR, got layout {x.layout}")
    if not x.dtype.is_floating_point:
        raise DataError(f"{name} must have a floating dtype, got {x.dtype}")
    values = {torch.strided: lambda: x, torch.sparse_coo: x._values, torch.sparse_csr: x.values}[x.layout]()
    _check_finite(values, name)
    return x


def _check_finite(values: torch.Tensor, name: str) -> None:
    """Raise if any value is NaN or infinite (one min/max pass: NaN propagates through both)."""
    if values.numel() == 0:
        return
    low, high = torch.aminmax(values.detach())
    if not (bool(torch.isfinite(low)) and bool(torch.isfinite(high))):
        raise DataError(f"{name} contains NaN or infinite values; expected finite weights")


def _csr_parts(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(row_counts (R,), col_indices (nnz,), values (nnz,)) of the nonzero entries of a 2-D tensor, in row order."""
    if x.layout == torch.strided:
        flat = x.reshape(-1)
        pos = flat.nonzero().squeeze(1)
        return torch.bincount(pos // x.shape[1], minlength=x.shape[0]), pos % x.shape[1], flat[pos]
    if x.layout == torch.sparse_coo:
        x = x.coalesce().to_sparse_csr()
    crow, col, val = x.crow_indices().long(), x.col_indices().long(), x.values()
    rows = torch.repeat_interleave(torch.arange(x.shape[0], device=col.device), crow[1:] - crow[:-1])
    keep = val != 0
    counts = torch.bincount(rows[keep], minlength=x.shape[0])
    return counts, col[keep], val[keep]


def _build_csr(counts: torch.Tensor, col: torch.Tensor, val: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    crow = torch.zeros(shape[0] + 1, dtype=torch.int64, device=col.device)
    torch.cumsum(counts, 0, out=crow[1:])
    return torch.sparse_csr_tensor(crow, col, val.float(), shape, device=col.device, check_invariants=False)


def stack_sparse(batches: list[torch.Tensor]) -> torch.Tensor:
    """Stack batches of reps into one CPU sparse CSR matrix that stores only the nonzero weights.

    Dense batches are sparsified on their own device before the copy to CPU, so a GPU validation loop moves only
    the nonzeros.

    Args:
        batches: non-empty list of (B_i, V) tensors (dense, sparse COO or sparse CSR; any device; one V).

    Returns:
        A (sum_i B_i, V) float32 sparse CSR tensor on CPU with int64 indices and no explicit zeros.

    Raises:
        DataError: if ``batches`` is empty, a batch is not a finite 2-D floating tensor, or the widths V differ.
    """
    if not isinstance(batches, (list, tuple)) or len(batches) == 0:
        raise DataError(f"batches must be a non-empty list of (B, V) tensors, got {batches!r}")
    width = None
    counts, cols, vals = [], [], []
    for i, batch in enumerate(batches):
        _check_matrix(batch, f"batches[{i}]")
        if width is None:
            width = batch.shape[1]
        elif batch.shape[1] != width:
            raise DataError(f"batches[{i}] has width {batch.shape[1]}, expected V={width} like batches[0]")
        c, col, val = _csr_parts(batch.detach())
        counts.append(c.cpu())
        cols.append(col.cpu())
        vals.append(val.cpu())
    count = torch.cat(counts)
    return _build_csr(count, torch.cat(cols), torch.cat(vals), (int(count.numel()), int(width)))


def _row_slice(x: torch.Tensor, start: int, end: int) -> torch.Tensor:
    """Rows ``start:end`` of a dense or CSR matrix (CSR slicing copies only the slice's nonzeros)."""
    if x.layout == torch.strided:
        return x[start:end]
    crow = x.crow_indices()
    lo, hi = int(crow[start]), int(crow[end])
    return torch.sparse_csr_tensor(crow[start : end + 1] - lo, x.col_indices()[lo:hi], x.values()[lo:hi],
                                   (end - start, x.shape[1]), device=x.device, check_invariants=False)


def _topk_block(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of each row of a dense (q, n) block, sorted by score descending then column ascending.

    ``torch.topk`` picks arbitrary members of a tie at the cut-off; rows where more than k entries reach the k-th value
    are redone exactly: everything above the k-th value plus the lowest-index entries equal to it.
    """
    vals, idx = torch.topk(scores, k, dim=1, sorted=False)
    kth = vals.min(dim=1, keepdim=True).values
    tied = ((scores >= kth).sum(dim=1) > k).nonzero().squeeze(1)
    if tied.numel():
        sub, cut = scores[tied], kth[tied]
        above, equal = sub > cut, sub == cut
        need = k - above.sum(dim=1, keepdim=True)
        take = above | (equal & (torch.cumsum(equal, dim=1) <= need))
        cols = take.nonzero()[:, 1].view(-1, k)
        idx[tied], vals[tied] = cols, sub.gather(1, cols)
    idx, perm = torch.sort(idx, dim=1)
    return _sort_desc(vals.gather(1, perm), idx)


def _sort_desc(vals: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Stable descending sort by score; entries already in ascending index order keep it within ties."""
    vals, perm = torch.sort(vals, dim=1, descending=True, stable=True)
    return vals, idx.gather(1, perm)


def _as_float_matrix(reps: torch.Tensor) -> torch.Tensor:
    """A dense matrix as dense float32; a sparse one as CSR float32 with int64 indices and no explicit zeros."""
    if reps.layout == torch.strided:
        return reps.float()
    counts, col, val = _csr_parts(reps)
    return _build_csr(counts, col, val, (reps.shape[0], reps.shape[1]))


def _block_scores(queries: torch.Tensor, docs: torch.Tensor) -> torch.Tensor:
    """Dense (q, n) float32 scores of a (q, V) query block against a (n, V) doc chunk."""
    if docs.layout == torch.strided:
        return queries @ docs.T if queries.layout == torch.strided else torch.sparse.mm(queries, docs.T)
    dense_queries = queries if queries.layout == torch.strided else queries.to_dense()
    return torch.sparse.mm(docs, dense_queries.T.contiguous()).T.contiguous()


def _validate_search(query_reps: torch.Tensor, doc_reps: torch.Tensor, k: int, doc_chunk_size: int) -> None:
    _check_matrix(query_reps, "query_reps")
    _check_matrix(doc_reps, "doc_reps")
    if query_reps.shape[1] != doc_reps.shape[1]:
        raise DataError(f"query_reps has width V={query_reps.shape[1]} but doc_reps has V={doc_reps.shape[1]}; "
                        "expected the same vocabulary")
    for name, value in (("k", k), ("doc_chunk_size", doc_chunk_size)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def exact_search(query_reps: torch.Tensor, doc_reps: torch.Tensor, k: int,
                 doc_chunk_size: int = 65536) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact dot-product top-k retrieval of every query over every document.

    Args:
        query_reps: (Q, V) query weights; dense, sparse COO or sparse CSR, any device (computation runs there).
        doc_reps: (N, V) document weights; dense, sparse COO or sparse CSR (e.g. from :func:`stack_sparse`), any
            device; chunks are moved to the device of ``query_reps``.
        k: number of documents to return per query (at most N are returned).
        doc_chunk_size: documents scored at once. Queries are split into blocks so that one score block
            (queries x docs) and one densified query block (queries x V) stay below 2**25 floats each; memory is
            about ``2 * Q * k`` entries for the running top-k plus these blocks and the doc chunk.

    Returns:
        ``(scores, indices)``: (Q, min(k, N)) float32 scores and int64 row indices into ``doc_reps``, on the device
        of ``query_reps``, sorted by score descending with ties broken by ascending document index.

    Raises:
        DataError: if the reps are not finite 2-D floating tensors with the same V.
        ConfigError: if ``k`` or ``doc_chunk_size`` is not a positive integer.
    """
    _validate_search(query_reps, doc_reps, k, doc_chunk_size)
    device, (n_queries, n_docs) = query_reps.device, (query_reps.shape[0], doc_reps.shape[0])
    k_out, doc_chunk_size = min(int(k), n_docs), int(doc_chunk_size)
    if n_queries == 0 or k_out == 0:
        empty = torch.empty(n_queries, k_out, device=device)
        return empty, empty.long()
    best_vals = torch.empty(n_queries, 0, dtype=torch.float32, device=device)
    best_idx = torch.empty(n_queries, 0, dtype=torch.int64, device=device)
    doc_reps = _as_float_matrix(doc_reps) if doc_reps.layout == torch.sparse_coo else doc_reps
    queries = _as_float_matrix(query_reps)
    for start in range(0, n_docs, doc_chunk_size):
        end = min(start + doc_chunk_size, n_docs)
        chunk = _row_slice(doc_reps, start, end).to(device=device, dtype=torch.float32)
        q_step = max(1, _MAX_BLOCK_ELEMENTS // max(end - start, queries.shape[1]))
        vals, idx = [], []
        for q0 in range(0, n_queries, q_step):
            scores = _block_scores(_row_slice(queries, q0, min(q0 + q_step, n_queries)), chunk)
            v, i = _topk_block(scores, min(k_out, end - start))
            vals.append(v)
            idx.append(i + start)
        best_vals, best_idx = _sort_desc(torch.cat([best_vals, torch.cat(vals)], dim=1),
                                         torch.cat([best_idx, torch.cat(idx)], dim=1))
        best_vals, best_idx = best_vals[:, :k_out].contiguous(), best_idx[:, :k_out].contiguous()
    return best_vals, best_idx


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
    """Turn the output of :func:`~splade_lightning.retrieval.exact.exact_search` into a TREC-style run.

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
