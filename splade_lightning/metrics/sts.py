"""STS metrics: Spearman and Pearson correlation between the model's similarity of sentence pairs and gold scores.

Equal to sentence-transformers 6.2's ``SparseEmbeddingSimilarityEvaluator``
(``sparse_encoder/evaluation/sparse_embedding_similarity.py``, through ``sentence_transformer/evaluation/
embedding_similarity.py``): ``scipy.stats.pearsonr`` / ``spearmanr`` of (gold, similarity); their
``pearson_dot`` / ``spearman_dot`` (or ``_cosine``) are our ``pearson`` / ``spearman``, their ``active_dims`` /
``sparsity_ratio`` (mean over both columns' vectors) ours. Tested for parity.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence

import torch

from splade_lightning.errors import DataError
from splade_lightning.formats.sts import StsData, parse_text_id
from splade_lightning.metrics.active_dims import active_dims_per_text

__all__ = ["STS_KEYS", "evaluate_sts", "pairwise_similarity", "score_encoded_sts", "sts_metrics"]

#: what an STS evaluation reports, per set
STS_KEYS = ("spearman", "pearson", "active_dims", "sparsity_ratio")
_EPS = 1e-12  # as torch.nn.functional.normalize


def _coo(reps: torch.Tensor) -> torch.Tensor:
    return (reps.to_sparse_coo() if reps.layout != torch.sparse_coo else reps).coalesce().float()


def _row_sums(reps: torch.Tensor) -> torch.Tensor:
    """(N,) dense row sums of a dense or sparse (N, V) tensor."""
    return reps.sum(dim=-1).to_dense() if reps.layout == torch.strided else torch.sparse.sum(reps, dim=1).to_dense()


@torch.inference_mode()
def pairwise_similarity(a: torch.Tensor, b: torch.Tensor, similarity: str = "dot") -> torch.Tensor:
    """``sim(a[i], b[i])`` for every row: dot product, or cosine (a zero vector has cosine 0 with anything).

    Args:
        a: (N, V) dense, sparse COO or sparse CSR.
        b: (N, V), likewise.
        similarity: ``dot`` or ``cosine``.

    Returns:
        (N,) float32 on the CPU.
    """
    if a.shape != b.shape or a.dim() != 2:
        raise DataError(f"pairwise_similarity: expected two (N, V) tensors of one shape, got {tuple(a.shape)} and "
                        f"{tuple(b.shape)}")
    a, b = _coo(a.cpu()), _coo(b.cpu())
    dot = _row_sums(a * b)
    if similarity == "dot":
        return dot
    if similarity != "cosine":
        raise DataError(f"similarity={similarity!r}: expected 'dot' or 'cosine'")
    norms = [_row_sums(x * x).sqrt().clamp_min(_EPS) for x in (a, b)]
    return dot / (norms[0] * norms[1])


def _correlations(gold: Sequence[float], predicted: torch.Tensor) -> tuple[float, float]:
    """(Spearman, Pearson); NaN when either side is constant (e.g. every vector all-zero), as scipy returns."""
    from scipy.stats import pearsonr, spearmanr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's ConstantInputWarning: the NaN says it
        pearson = pearsonr(list(gold), predicted.double().numpy())[0]
        spearman = spearmanr(list(gold), predicted.double().numpy())[0]
    return float(spearman), float(pearson)


@torch.inference_mode()
def sts_metrics(reps1: torch.Tensor, reps2: torch.Tensor, gold: Sequence[float],
                similarity: str = "dot") -> dict[str, float]:
    """Correlations of the pairs' similarity with the gold scores, and the sparsity of the vectors.

    Args:
        reps1: (N, V) vectors of the first sentences (dense or sparse).
        reps2: (N, V) vectors of the second sentences.
        gold: the N gold scores.
        similarity: ``dot`` or ``cosine``.

    Returns:
        ``spearman``, ``pearson`` (NaN when the similarities are constant), ``active_dims`` (mean nonzero weights per
        vector over all 2N vectors) and ``sparsity_ratio`` (``1 - active_dims / V``).
    """
    if len(gold) != reps1.shape[0]:
        raise DataError(f"sts_metrics: {len(gold)} gold scores for {reps1.shape[0]} pairs")
    predicted = pairwise_similarity(reps1, reps2, similarity)
    spearman, pearson = _correlations(gold, predicted)
    active = sum(int(active_dims_per_text(r).sum()) for r in (reps1, reps2)) / (2 * reps1.shape[0])
    return {"spearman": spearman, "pearson": pearson, "active_dims": active,
            "sparsity_ratio": 1.0 - active / reps1.shape[1]}


@torch.inference_mode()
def score_encoded_sts(data: StsData, ids: Sequence[str], reps: torch.Tensor) -> dict[str, float] | None:
    """:func:`sts_metrics` of a set whose sentences were encoded in any order under the ids of
    :func:`~splade_lightning.formats.sts.text_id` (``"1:<row>"``, ``"2:<row>"``), rows of ``reps`` (M, V).

    Returns:
        The metrics, or ``None`` when some sentence was not encoded (a limited evaluation loop).
    """
    n = len(data.scores)
    position = {parse_text_id(key): i for i, key in enumerate(ids)}
    if len(position) < 2 * n:
        return None
    target = torch.empty(reps.shape[0], dtype=torch.long)  # row of reps -> (column - 1) * n + pair row
    for (column, row), i in position.items():
        target[i] = (column - 1) * n + row
    coo = _coo(reps.cpu())
    rows, cols = target[coo.indices()[0]], coo.indices()[1]
    halves = [rows < n, rows >= n]
    reps1, reps2 = (torch.sparse_coo_tensor(torch.stack([rows[keep] - offset, cols[keep]]), coo.values()[keep],
                                            (n, reps.shape[1]), check_invariants=False)
                    for keep, offset in zip(halves, (0, n)))
    return sts_metrics(reps1, reps2, data.scores, data.similarity)


def evaluate_sts(model, data: StsData, batch_size: int, progress: bool) -> tuple[dict[str, float], dict[str, float]]:
    """Encode both columns of an STS set with ``model.encode_document`` and score them with :func:`sts_metrics`.

    Args:
        model: a :class:`~splade_lightning.api.SparseModel` (or anything with its ``encode_document``).
        data: the loaded STS set.
        batch_size: texts per encoder call.
        progress: show progress bars.

    Returns:
        The metrics, and the timings in seconds (``encode``, ``score``).
    """
    start = time.perf_counter()
    reps1 = model.encode_document(data.sentences1, batch_size, progress)
    reps2 = model.encode_document(data.sentences2, batch_size, progress)
    encoded = time.perf_counter()
    metrics = sts_metrics(reps1, reps2, data.scores, data.similarity)
    return metrics, {"encode": encoded - start, "score": time.perf_counter() - encoded}
