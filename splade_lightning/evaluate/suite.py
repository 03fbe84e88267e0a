"""Evaluate a model on one BEIR directory or a suite of them, and format results as Markdown tables.

Retrieval and scoring go through :func:`splade_lightning.eval.evaluate_retrieval`, the same function the in-training
validation uses, so the numbers match it for the same reps.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..data.beir import EvalData
from ..errors import ConfigError
from ..eval.retrieval import RetrievalResult, evaluate_retrieval

__all__ = ["SPARSITY_KEYS", "beir_dirs", "evaluate_dataset", "format_table", "mean_metrics"]

#: sparsity statistics reported next to the IR measures
SPARSITY_KEYS = ("active_dims_query", "active_dims_doc", "flops")


def _is_beir_dir(path: Path) -> bool:
    return (path / "corpus.jsonl").is_file()


def beir_dirs(path: str | Path) -> tuple[list[Path], bool]:
    """The BEIR directories behind ``--data`` and whether it is a suite.

    Args:
        path: a BEIR directory (holds ``corpus.jsonl``) or a folder whose subfolders are BEIR directories.

    Returns:
        ``([path], False)`` for a BEIR directory; ``(sorted subfolders with a corpus.jsonl, True)`` for a suite.

    Raises:
        ConfigError: if ``path`` is not a directory, or neither a BEIR directory nor a folder of them.
    """
    root = Path(path)
    if not root.is_dir():
        raise ConfigError(f"--data {root} is not a directory; expected a BEIR directory (corpus.jsonl, "
                          "queries.jsonl, qrels/<split>.tsv) or a folder of BEIR directories")
    if _is_beir_dir(root):
        return [root], False
    children = sorted(child for child in root.iterdir() if child.is_dir() and _is_beir_dir(child))
    if not children:
        raise ConfigError(f"--data {root} holds no corpus.jsonl and none of its subfolders does; expected a BEIR "
                          "directory or a folder of BEIR directories")
    return children, True


def evaluate_dataset(model, data: EvalData, k: int, measures: Sequence[str], batch_size: int,
                     progress: bool) -> tuple[RetrievalResult, dict[str, float]]:
    """Encode one dataset's queries and corpus with ``model``, retrieve the top-k exactly and score the run.

    Args:
        model: a :class:`~splade_lightning.api.SparseModel`.
        data: the loaded BEIR set (its ``qrels`` and ``min_relevance`` are used).
        k: documents retrieved per query.
        measures: IR measure names.
        batch_size: texts per encoder call.
        progress: show progress bars.

    Returns:
        The :class:`RetrievalResult` and the timings in seconds (``encode_queries``, ``encode_docs``, ``search``).
    """
    query_ids, doc_ids = list(data.queries), list(data.corpus)
    start = time.perf_counter()
    query_reps = model.encode_query([data.queries[q] for q in query_ids], batch_size, progress)
    encoded_queries = time.perf_counter()
    doc_reps = model.encode_document([data.corpus[d] for d in doc_ids], batch_size, progress)
    encoded_docs = time.perf_counter()
    result = evaluate_retrieval(query_ids, query_reps, doc_ids, doc_reps, data.qrels, data.min_relevance, k, measures)
    timings = {"encode_queries": encoded_queries - start, "encode_docs": encoded_docs - encoded_queries,
               "search": time.perf_counter() - encoded_docs}
    return result, timings


def mean_metrics(per_dataset: Mapping[str, Mapping[str, float]], keys: Sequence[str]) -> dict[str, float]:
    """Unweighted mean of each key over the datasets (every dataset counts once, whatever its size)."""
    return {key: sum(metrics[key] for metrics in per_dataset.values()) / len(per_dataset) for key in keys}


def _cell(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if key.startswith("active_dims") else f"{value:.4f}"


def format_table(rows: Mapping[str, Mapping[str, float]], keys: Sequence[str], first_column: str = "dataset") -> str:
    """A Markdown table with one row per entry of ``rows`` and one column per key (missing values as ``-``)."""
    lines = [f"| {first_column} | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, metrics in rows.items():
        lines.append(f"| {name} | " + " | ".join(_cell(key, metrics.get(key)) for key in keys) + " |")
    return "\n".join(lines)
