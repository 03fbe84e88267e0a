"""Operations on encoded sparse vectors, with sentence-transformers 6.2 ``SparseEncoder`` semantics: all-pairs
similarity, keeping each vector's k largest weights (``max_active_dims``) and the shared terms of a query and a
document (``intersection``). Pure torch; :class:`~splade_lightning.api.SparseModel` exposes them as methods.

The references are ``sentence_transformers/util/similarity.py`` (``dot_score``), ``util/tensor.py``
(``select_max_active_dims``) and ``sparse_encoder/model.py`` (``SparseEncoder.intersection``). One deviation: at the
cut-off of ``select_max_active_dims``, equal weights keep the lower dimension index (sentence-transformers leaves the
choice to ``torch.topk``, whose order among ties is unspecified), as :func:`~.quantize.top_k_per_doc` does.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch

from splade_lightning.errors import ConfigError

__all__ = ["SIMILARITY_FN_NAME", "check_max_active_dims", "intersection", "select_max_active_dims",
           "similarity_scores"]

#: the score :func:`similarity_scores` computes; sentence-transformers' ``SparseEncoder`` default for every sparse
#: architecture (SPLADE, inference-free, CSR), and what our saved ``config_sentence_transformers.json`` records
SIMILARITY_FN_NAME = "dot"


def _as_tensor(x: torch.Tensor | Sequence[torch.Tensor], name: str) -> torch.Tensor:
    """A tensor, or a list of 1-D tensors stacked into one (sparse stays sparse); sparse layouts become COO."""
    if isinstance(x, (list, tuple)) and x and all(isinstance(v, torch.Tensor) for v in x):
        x = torch.stack([v.coalesce() if v.layout == torch.sparse_coo else v for v in x])
    if not isinstance(x, torch.Tensor):
        raise ConfigError(f"{name}: got {type(x).__name__}; expected a torch.Tensor (dense or sparse) or a "
                          "non-empty list of them")
    if x.dim() not in (1, 2):
        raise ConfigError(f"{name}: got shape {tuple(x.shape)}; expected a vector (V,) or a matrix (N, V)")
    if x.layout not in (torch.strided, torch.sparse_coo):
        x = x.to_sparse(layout=torch.sparse_coo)
    if not x.dtype.is_floating_point or torch.finfo(x.dtype).bits < 32:
        x = x.float()  # half precision would round the scores (and bucket them into ties)
    return x


def similarity_scores(a: torch.Tensor | Sequence[torch.Tensor],
                      b: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """Dot product of every row of ``a`` with every row of ``b`` (sentence-transformers' ``dot_score``).

    Args:
        a: (Na, V) or (V,), dense or sparse (COO or CSR), or a list of (V,) vectors.
        b: (Nb, V) or (V,), likewise.

    Returns:
        (Na, Nb) dense scores, float32 (float64 if an input is); a 1-D input counts as one row.

    Raises:
        ConfigError: an input that is not a vector or matrix, or widths that differ.
    """
    a, b = _as_tensor(a, "similarity: a"), _as_tensor(b, "similarity: b")
    if a.shape[-1] != b.shape[-1]:
        raise ConfigError(f"similarity: a has {a.shape[-1]} dimensions but b has {b.shape[-1]}; expected vectors of "
                          "the same model")
    dtype = torch.promote_types(a.dtype, b.dtype)
    a, b = (x.to(dtype).unsqueeze(0) if x.dim() == 1 else x.to(dtype) for x in (a, b))
    with warnings.catch_warnings():  # torch goes through CSR internally for sparse x sparse, and says so each time
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        return torch.mm(a, b.transpose(0, 1)).to_dense()


def check_max_active_dims(value: object, where: str) -> int | None:
    """``value`` if it is None or an integer >= 1.

    Raises:
        ConfigError: naming ``where``, the value and what is expected (0, negatives and booleans are refused, as
            sentence-transformers refuses them).
    """
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    raise ConfigError(f"{where}: max_active_dims={value!r}; expected None (no limit) or an integer >= 1")


def select_max_active_dims(reps: torch.Tensor, max_active_dims: int | None) -> torch.Tensor:
    """Keep each row's ``max_active_dims`` largest weights in absolute value and zero the rest.

    Exactly ``min(max_active_dims, V)`` entries are kept per row, so a row with fewer non-zero weights is returned
    unchanged; among equal weights at the cut-off, the lower dimension index is kept. None keeps everything.

    Args:
        reps: (..., V) dense weights.
        max_active_dims: weights kept per row, >= 1, or None.

    Returns:
        A new tensor shaped like ``reps`` (``reps`` itself when ``max_active_dims`` is None).
    """
    if check_max_active_dims(max_active_dims, "select_max_active_dims") is None:
        return reps
    k = min(max_active_dims, reps.shape[-1])
    kept = torch.sort(reps.abs(), dim=-1, descending=True, stable=True).indices[..., :k]
    return torch.zeros_like(reps).scatter(-1, kept, reps.gather(-1, kept))


def intersection(query: torch.Tensor, doc: torch.Tensor) -> torch.Tensor:
    """The terms two sparse vectors share, weighted by the product of their weights (sentence-transformers'
    ``SparseEncoder.intersection``): ``query * doc`` element-wise, keeping the positive products only.

    Args:
        query: (V,) one vector, dense or sparse.
        doc: (V,) one vector or (N, V) several, dense or sparse; each row is multiplied by ``query``.

    Returns:
        Sparse COO (coalesced), shaped like ``doc``; the sum of a row is that row's dot product with ``query`` when
        both are non-negative (SPLADE, CSR).

    Raises:
        ConfigError: ``query`` not 1-D, ``doc`` not 1-D or 2-D, or widths that differ.
    """
    query, doc = _as_tensor(query, "intersection: query"), _as_tensor(doc, "intersection: doc")
    if query.dim() != 1:
        raise ConfigError(f"intersection: query has shape {tuple(query.shape)}; expected one vector (V,) (take a "
                          "row: queries[i])")
    if query.shape[-1] != doc.shape[-1]:
        raise ConfigError(f"intersection: query has {query.shape[-1]} dimensions but doc has {doc.shape[-1]}; "
                          "expected vectors of the same model")
    doc = (doc if doc.is_sparse else doc.to_sparse()).coalesce()
    indices, values = doc.indices(), doc.values()
    products = query.to_dense().to(values.device)[indices[-1]] * values
    shared = products > 0
    return torch.sparse_coo_tensor(indices[:, shared], products[shared], doc.shape,
                                   check_invariants=False).coalesce()  # a subset of coalesced indices: valid
