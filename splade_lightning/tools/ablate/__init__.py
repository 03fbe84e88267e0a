"""``splade-lightning ablate``: run a grid of ``fit`` configurations (resumable) and collect a results table, CSV and
Pareto plot."""

from splade_lightning.tools.ablate.main import ablate

__all__ = ["ablate"]
