"""IDF tables for inference-free SPLADE: OpenSearch's ``idf.json`` format, corpus IDF, and table comparison.

An ``idf.json`` is one flat JSON object mapping the tokenizer's token strings to IDF weights; inference-free sparse
models (OpenSearch ``opensearch-neural-sparse-encoding-doc-*``) weight each query token by it instead of running a
query encoder. This layer needs torch and numpy only (no lightning, no ``splade_lightning.data``)::

    from splade_lightning.idf import corpus_idf
    from splade_lightning.formats.idf_json import read_idf_table, write_idf_json
    table, df, n_docs = corpus_idf("data/scifact", tokenizer)        # token -> log((N+1)/(df+1)) + 1
    write_idf_json(table, None, "scifact_idf.json")
    idf = read_idf_table("scifact_idf.json", tokenizer, vocab_size=30522).weights   # (V,) float32

Command line: ``splade-lightning idf --corpus PATH --output FILE [--compare REF]``
(see :mod:`splade_lightning.tools.idf`).
"""

from __future__ import annotations

from splade_lightning.idf.compare import IdfComparison, compare_idf, format_comparison
from splade_lightning.idf.corpus import (
    corpus_idf,
    count_corpus_lines,
    document_frequencies,
    iter_corpus,
    smoothed_idf,
)

__all__ = [
    "IdfComparison",
    "compare_idf",
    "corpus_idf",
    "count_corpus_lines",
    "document_frequencies",
    "format_comparison",
    "iter_corpus",
    "smoothed_idf",
]
