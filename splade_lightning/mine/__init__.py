"""Hard-negative mining (``python -m splade_lightning mine``): BM25 or sparse-model candidates, filtered as
sentence-transformers' ``mine_hard_negatives`` does. The filters are pure numpy functions in :mod:`.filters`."""

from __future__ import annotations

from splade_lightning.mine.filters import (
    MinedNegatives,
    MiningRule,
    apply_filters,
    default_range_max,
    mine_negatives,
    select_negatives,
)

__all__ = ["MinedNegatives", "MiningRule", "apply_filters", "default_range_max", "mine_negatives", "select_negatives"]
