"""Sparsity profiles of a model's reps: active dims per text and the document frequency of each term.

The document frequency of term v is the number of documents in which it is active (nonzero), i.e. the length of its
posting list; its spread drives the cost of inverted-index retrieval (FLOPS, Paria et al., "Minimizing FLOPs to
learn efficient sparse representations", ICLR 2020, https://arxiv.org/abs/2004.05665).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from splade_lightning.errors import ConfigError
from splade_lightning.metrics.active_dims import active_dims_per_text
from splade_lightning.metrics.term_stats import document_frequency as eval_document_frequency

__all__ = ["active_dims", "df_profile", "df_profile_rows", "document_frequency", "summarize_counts",
           "top_df_terms_rows"]


def active_dims(reps: torch.Tensor) -> np.ndarray:
    """Number of nonzero dims of each row of (N, V) reps (dense, COO or CSR) -> (N,) int64 array."""
    return active_dims_per_text(reps).cpu().numpy().astype(np.int64)


def document_frequency(reps: torch.Tensor) -> np.ndarray:
    """Number of rows in which each dim is nonzero, for (N, V) reps -> (V,) int64 array."""
    return eval_document_frequency(reps).cpu().numpy().astype(np.int64)


def summarize_counts(counts: Sequence[int] | np.ndarray) -> dict[str, float]:
    """``{"mean", "median", "p10", "p90", "min", "max"}`` of a non-empty array of counts (e.g. active dims)."""
    values = np.asarray(counts, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ConfigError(f"counts must be a non-empty 1-D array, got shape {values.shape}")
    return {"mean": float(values.mean()), "median": float(np.median(values)),
            "p10": float(np.percentile(values, 10)), "p90": float(np.percentile(values, 90)),
            "min": float(values.min()), "max": float(values.max())}


def df_profile(df: np.ndarray, n_docs: int, names: Sequence[str] | None = None,
               top_n: int = 20) -> dict[str, object]:
    """Summary of a document-frequency vector.

    Args:
        df: (V,) document frequency of each term (:func:`document_frequency`).
        n_docs: number of documents the frequencies were counted over.
        names: (V,) term names, to name the most frequent terms (None: ``[id]``).
        top_n: how many of the most frequent terms to list.

    Returns:
        A dict with ``n_docs``; ``used_terms`` (terms active in at least one document); ``postings`` (sum of df);
        ``sorted_df`` ((used_terms,) int64 array, df in decreasing order: the rank-frequency curve);
        ``top_terms`` (``[(name, df, df / n_docs)]`` of the ``top_n`` most frequent terms, ties by id);
        ``top1pct_postings_share`` (share of all postings held by the most frequent 1% of used terms, at least one
        term); ``half_docs_terms`` (number of terms active in at least half of the documents).
    """
    df = np.asarray(df)
    if df.ndim != 1 or (df < 0).any():
        raise ConfigError(f"df must be a 1-D array of non-negative counts, got shape {df.shape}")
    if isinstance(n_docs, bool) or not isinstance(n_docs, int) or n_docs < 1 or df.max(initial=0) > n_docs:
        raise ConfigError(f"n_docs must be a positive integer >= max(df) = {int(df.max(initial=0))}, got {n_docs!r}")
    if names is not None and len(names) != df.shape[0]:
        raise ConfigError(f"names must have one entry per term ({df.shape[0]}), got {len(names)}")
    order = np.argsort(-df, kind="stable")
    used = int((df > 0).sum())
    sorted_df = df[order[:used]].astype(np.int64)
    postings = int(df.sum())
    head = max(1, used // 100)
    top = [(names[i] if names is not None else f"[{i}]", int(df[i]), float(df[i]) / n_docs)
           for i in order[:min(top_n, used)]]
    return {"n_docs": n_docs, "used_terms": used, "postings": postings, "sorted_df": sorted_df, "top_terms": top,
            "top1pct_postings_share": float(sorted_df[:head].sum()) / postings if postings else 0.0,
            "half_docs_terms": int((2 * df >= n_docs).sum())}


_PROFILE_COLUMNS = ("n_docs", "used_terms", "postings", "top1pct_postings_share", "half_docs_terms")


def df_profile_rows(profiles: Mapping[str, Mapping[str, object]]) -> list[dict[str, object]]:
    """One table row per model of the scalar fields of its :func:`df_profile`."""
    return [{"model": name, **{k: profile[k] for k in _PROFILE_COLUMNS}} for name, profile in profiles.items()]


def top_df_terms_rows(profiles: Mapping[str, Mapping[str, object]], top_n: int = 10) -> list[dict[str, object]]:
    """A table of the ``top_n`` most frequent terms of each model side by side: one row per rank, one column per
    model holding ``"term (df share)"`` (empty past the model's listed terms)."""
    def cell(top: list, rank: int) -> str:
        return f"{top[rank][0]} ({top[rank][2]:.2f})" if rank < len(top) else ""

    return [{"rank": rank + 1, **{f"{name}: term (df share)": cell(profile["top_terms"], rank)
                                  for name, profile in profiles.items()}} for rank in range(top_n)]
