"""``splade-lightning ablate``: run a grid of ``fit`` configurations (resumable) and collect a results table, CSV and
Pareto plot."""
