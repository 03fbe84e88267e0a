"""Hard-negative mining: BM25 or sparse-model candidates, filtered as sentence-transformers'
``mine_hard_negatives`` does (the filters are pure numpy in :mod:`splade_lightning.mining.filters`). The command
line is ``splade-lightning mine`` (:mod:`splade_lightning.tools.mine`)."""

from __future__ import annotations

from splade_lightning.mining.filters import (
    MinedNegatives,
    MiningRule,
    apply_filters,
    default_range_max,
    mine_negatives,
    select_negatives,
)

__all__ = ["MinedNegatives", "MiningRule", "apply_filters", "default_range_max", "mine_negatives", "select_negatives"]
