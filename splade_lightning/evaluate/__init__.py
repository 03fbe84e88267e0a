"""The ``evaluate`` tool: score a model on BEIR data (one set or a suite) or score and compare TREC run files."""

from .significance import SignificanceRow, compare_per_query, paired_t_test, randomisation_test
from .suite import beir_dirs, evaluate_dataset, format_table, mean_metrics
from .trec_files import read_qrels, read_trec_run

__all__ = ["SignificanceRow", "beir_dirs", "compare_per_query", "evaluate_dataset", "format_table", "mean_metrics",
           "paired_t_test", "randomisation_test", "read_qrels", "read_trec_run"]
