"""Compare two models (e.g. two checkpoints of one run) on the same texts: retrieval quality and sparsity, per-text
overlap of their active terms, and which terms gained or lost weight."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from splade_lightning.analysis.model_io import EncodedSet, SparseModelLike, row_slices, to_coo
from splade_lightning.errors import ConfigError
from splade_lightning.metrics.ir import parse_measure
from splade_lightning.retrieval.evaluation import evaluate_retrieval

__all__ = ["check_same_vocabulary", "mean_term_weights", "retrieval_table", "term_overlap", "weight_changes"]


def check_same_vocabulary(model_a: SparseModelLike, model_b: SparseModelLike) -> None:
    """Raise :class:`ConfigError` unless both models' dims name the same terms (same width and tokenizer vocab):
    term-level comparisons are meaningless otherwise."""
    if model_a.vocab_size != model_b.vocab_size:
        raise ConfigError(f"the models have different output widths ({model_a.vocab_size} vs {model_b.vocab_size}); "
                          "expected two checkpoints of the same vocabulary")
    vocab_a, vocab_b = model_a.tokenizer.get_vocab(), model_b.tokenizer.get_vocab()
    if vocab_a != vocab_b:
        raise ConfigError(f"the models' tokenizers differ ({len(vocab_a)} vs {len(vocab_b)} entries, "
                          f"{len(set(vocab_a.items()) ^ set(vocab_b.items()))} differing entries); expected the "
                          "same vocabulary")


def _check_pair(reps_a: torch.Tensor, reps_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = to_coo(reps_a), to_coo(reps_b)
    if a.shape != b.shape:
        raise ConfigError(f"reps_a {tuple(a.shape)} and reps_b {tuple(b.shape)} differ in shape; expected the same "
                          "texts encoded by two models of the same vocabulary")
    return a, b


def _term_sets(reps: torch.Tensor, top_k: int | None) -> list[set[int]]:
    """The active (top-k heaviest, ties by id) term ids of each row of coalesced COO reps, without densifying."""
    cols, values = reps.indices()[1], reps.values()
    sets = []
    for start, end in row_slices(reps):
        row_cols, row_vals = cols[start:end], values[start:end]
        keep = row_vals != 0
        order = torch.argsort(row_vals[keep], descending=True, stable=True)[:top_k]
        sets.append(set(row_cols[keep][order].tolist()))
    return sets


def term_overlap(reps_a: torch.Tensor, reps_b: torch.Tensor, top_k: int | None = None) -> np.ndarray:
    """Per-text Jaccard overlap |A ∩ B| / |A ∪ B| of the active term sets of the same texts under two models.

    Args:
        reps_a: (N, V) reps of N texts by model A (dense, COO or CSR).
        reps_b: (N, V) reps of the same texts by model B.
        top_k: compare only each text's ``top_k`` heaviest terms (None: every active term).

    Returns:
        (N,) float64 array in [0, 1]; 1.0 where both sets are empty.
    """
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ConfigError(f"top_k must be a positive integer or None, got {top_k!r}")
    a, b = _check_pair(reps_a, reps_b)
    pairs = zip(_term_sets(a, top_k), _term_sets(b, top_k))
    return np.array([len(x & y) / len(x | y) if x | y else 1.0 for x, y in pairs], dtype=np.float64)


def mean_term_weights(reps: torch.Tensor) -> np.ndarray:
    """Mean weight of each term over the N texts (inactive = 0) of (N, V) reps -> (V,) float64 array."""
    coo = to_coo(reps)
    sums = torch.zeros(coo.shape[1], dtype=torch.float64).index_add_(0, coo.indices()[1], coo.values().double())
    return (sums / max(coo.shape[0], 1)).numpy()


def weight_changes(reps_a: torch.Tensor, reps_b: torch.Tensor, names: Sequence[str],
                   top_n: int = 20) -> dict[str, list[tuple[str, float, float, float]]]:
    """Terms whose mean weight over the same texts rose or fell most from model A to model B.

    Args:
        reps_a: (N, V) reps of N texts by model A.
        reps_b: (N, V) reps of the same texts by model B.
        names: (V,) term names.
        top_n: terms listed on each side.

    Returns:
        ``{"gained": [...], "lost": [...]}``, each a list of ``(term, mean_a, mean_b, mean_b - mean_a)``, largest
        change first (ties by id); only terms whose mean changed are listed.
    """
    a, b = _check_pair(reps_a, reps_b)
    if len(names) != a.shape[1]:
        raise ConfigError(f"names must have one entry per term ({a.shape[1]}), got {len(names)}")
    mean_a, mean_b = mean_term_weights(a), mean_term_weights(b)
    delta = mean_b - mean_a
    out = {}
    for side, sign in (("gained", 1.0), ("lost", -1.0)):
        order = np.argsort(-sign * delta, kind="stable")[:top_n]
        out[side] = [(names[i], float(mean_a[i]), float(mean_b[i]), float(delta[i]))
                     for i in order if sign * delta[i] > 0]
    return out


def retrieval_table(encoded: Mapping[str, EncodedSet], qrels: Mapping[str, Mapping[str, int]],
                    min_relevance: int = 1,
                    measures: Sequence[str] = ("ndcg@10", "mrr@10", "recall@100")) -> list[dict[str, object]]:
    """Retrieval quality and sparsity of each model on the same set, as table rows.

    Args:
        encoded: model name -> its :class:`EncodedSet` (exact search over all its documents).
        qrels: ``{query_id: {doc_id: grade}}``.
        min_relevance: lowest grade counted as relevant by mrr/recall (2 for TREC DL).
        measures: IR measures (see :mod:`splade_lightning.metrics.ir`).

    Returns:
        One dict per model: ``model``, the measures, ``active_dims_query``, ``active_dims_doc`` and ``flops``
        (see :func:`~splade_lightning.retrieval.evaluation.evaluate_retrieval`).
    """
    if not encoded:
        raise ConfigError("retrieval_table: expected at least one encoded set")
    k = max([spec.cutoff or 0 for spec in map(parse_measure, measures)] + [100])
    rows = []
    for name, enc in encoded.items():
        result = evaluate_retrieval(enc.query_ids, enc.query_reps, enc.doc_ids, enc.doc_reps, qrels,
                                    min_relevance=min_relevance, k=k, measures=measures)
        keep = [*dict.fromkeys(parse_measure(m).name for m in measures), "active_dims_query", "active_dims_doc",
                "flops"]
        rows.append({"model": name, **{m: result.metrics[m] for m in keep}})
    return rows
