"""Analysis of a trained sparse model: token expansions, active dims of queries and documents, the document
frequency of active terms, and comparisons of two models (checkpoints).

Pure torch/numpy (never imports lightning or the data side): functions take a loaded model
(``splade_lightning.load``) or its (N, V) reps and return plain data. Plots live in
:mod:`splade_lightning.analysis.plots` (needs matplotlib, the ``analysis`` extra). Used by ``notebooks/``.
"""

from __future__ import annotations

from splade_lightning.analysis.compare import (
    check_same_vocabulary,
    mean_term_weights,
    retrieval_table,
    term_overlap,
    weight_changes,
)
from splade_lightning.analysis.expansions import (
    Expansion,
    TermWeight,
    compare_expansions,
    expand_texts,
    expansion_rows,
    top_terms,
)
from splade_lightning.analysis.locate import find_repo_root, latest_exported_model, resolve_model_name
from splade_lightning.analysis.model_io import (
    EncodedSet,
    SparseModelLike,
    dimension_names,
    encode_set,
    row_slices,
    to_coo,
)
from splade_lightning.analysis.profiles import (
    active_dims,
    df_profile,
    df_profile_rows,
    document_frequency,
    summarize_counts,
    top_df_terms_rows,
)
from splade_lightning.formats.tables import dict_table

__all__ = [
    "EncodedSet",
    "Expansion",
    "SparseModelLike",
    "TermWeight",
    "active_dims",
    "check_same_vocabulary",
    "compare_expansions",
    "df_profile",
    "df_profile_rows",
    "dimension_names",
    "document_frequency",
    "encode_set",
    "expand_texts",
    "expansion_rows",
    "find_repo_root",
    "latest_exported_model",
    "dict_table",
    "mean_term_weights",
    "resolve_model_name",
    "retrieval_table",
    "row_slices",
    "summarize_counts",
    "term_overlap",
    "to_coo",
    "top_df_terms_rows",
    "top_terms",
    "weight_changes",
]
