"""Compare two IDF tables token by token, e.g. a domain corpus's IDF against OpenSearch's general-domain table."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np

from splade_lightning.errors import ConfigError


@dataclass
class IdfComparison:
    """Table ``b`` compared with reference ``a`` on their common tokens.

    Attributes:
        common: tokens in both tables (within the ``tokens`` restriction).
        only_a: tokens only in ``a`` (within the restriction).
        only_b: tokens only in ``b`` (within the restriction).
        mean_abs_delta: mean of ``|b - a|`` over the common tokens.
        spearman: Spearman rank correlation of ``a`` and ``b`` over the common tokens (NaN if undefined).
        over: ``(token, a, b)`` with the largest ``b - a`` first (tokens that ``b`` weights up).
        under: ``(token, a, b)`` with the smallest ``b - a`` first (tokens that ``b`` weights down).
    """

    common: int
    only_a: int
    only_b: int
    mean_abs_delta: float
    spearman: float
    over: list[tuple[str, float, float]] = field(default_factory=list)
    under: list[tuple[str, float, float]] = field(default_factory=list)


def rank_average(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x``, ties given their average rank (as ``scipy.stats.rankdata(method="average")``)."""
    x = np.asarray(x, dtype=np.float64)
    values, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)  # rank of the last element of each group of equal values
    return (last - (counts - 1) / 2.0)[inverse.reshape(-1)]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (Pearson correlation of average ranks); NaN when either side is constant."""
    ra, rb = rank_average(a), rank_average(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


def compare_idf(a: dict[str, float], b: dict[str, float], top: int = 20,
                tokens: Collection[str] | None = None) -> IdfComparison:
    """Compare table ``b`` against reference ``a`` on their common tokens.

    Args:
        a: the reference table, token -> IDF (e.g. OpenSearch's ``idf.json``).
        b: the compared table, token -> IDF (e.g. computed on a domain corpus).
        top: how many tokens ``over`` and ``under`` list.
        tokens: if given, only these tokens take part (e.g. those that occur in the corpus); ``only_a`` and
            ``only_b`` are counted within this restriction too.

    Returns:
        an :class:`IdfComparison`; ties in ``b - a`` are broken by token string.

    Raises:
        ConfigError: ``top < 1``, or the tables have no common token.
    """
    if top < 1:
        raise ConfigError(f"top must be >= 1, got {top}")
    keep = set(tokens) if tokens is not None else None
    keys_a = [t for t in a if keep is None or t in keep]
    keys_b = [t for t in b if keep is None or t in keep]
    common = [t for t in keys_a if t in b]
    if not common:
        where = " among the selected tokens" if keep is not None else ""
        raise ConfigError(f"the two IDF tables have no token in common{where} ({len(keys_a)} and {len(keys_b)} "
                          "tokens); were they written for the same tokenizer?")
    va = np.array([a[t] for t in common], dtype=np.float64)
    vb = np.array([b[t] for t in common], dtype=np.float64)
    delta = vb - va
    rows = [(t, float(x), float(y)) for t, x, y in zip(common, va, vb)]
    order = sorted(range(len(rows)), key=lambda i: (-delta[i], rows[i][0]))
    under = sorted(range(len(rows)), key=lambda i: (delta[i], rows[i][0]))
    return IdfComparison(
        common=len(common),
        only_a=len(keys_a) - len(common),
        only_b=len(keys_b) - len(common),
        mean_abs_delta=float(np.abs(delta).mean()),
        spearman=spearman(va, vb) if len(common) > 1 else float("nan"),
        over=[rows[i] for i in order[:top]],
        under=[rows[i] for i in under[:top]],
    )


def _table(title: str, rows: list[tuple[str, float, float]]) -> list[str]:
    width = max([len("token")] + [len(t) for t, _, _ in rows])
    lines = [title, f"  {'token':<{width}}  {'a':>8}  {'b':>8}  {'b - a':>8}"]
    lines += [f"  {t:<{width}}  {x:8.3f}  {y:8.3f}  {y - x:+8.3f}" for t, x, y in rows]
    return lines


def format_comparison(cmp: IdfComparison, name_a: str = "reference", name_b: str = "corpus") -> str:
    """A plain-text report: counts, mean ``|b - a|``, Spearman, and the most over- / under-weighted tokens."""
    lines = [
        f"IDF comparison: a = {name_a}, b = {name_b}",
        f"  common tokens: {cmp.common}   only in a: {cmp.only_a}   only in b: {cmp.only_b}",
        f"  mean |b - a|: {cmp.mean_abs_delta:.4f}   Spearman rank correlation: {cmp.spearman:.4f}",
        "",
        *_table(f"tokens that b weights up most (largest b - a, top {len(cmp.over)}):", cmp.over),
        "",
        *_table(f"tokens that b weights down most (smallest b - a, top {len(cmp.under)}):", cmp.under),
    ]
    return "\n".join(lines)
