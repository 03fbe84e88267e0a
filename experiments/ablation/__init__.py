"""Ablation runner: grid YAML -> one ``fit`` per point (resumable) -> results table, CSV and Pareto plot.

Usage: ``python -m experiments.ablation --base BASE.yaml --grid GRID.yaml --output DIR`` (see experiments/README.md).
"""
