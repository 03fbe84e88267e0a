"""Data file formats, one module each, and the rules for writing them (model directories and checkpoints live in
:mod:`splade_lightning.serialization`). Pure Python/numpy/torch: imports
nothing of the package but :mod:`splade_lightning.errors`, :mod:`splade_lightning.problems` and each other.

| module | format |
|---|---|
| :mod:`.atomic` | atomic file and directory writes (the one helper) |
| :mod:`.outputs` | the output policy: what may be written where (``docs/your_files_are_safe.md``) |
| :mod:`.manifest` | ``splade_lightning.manifest.json``: who wrote a directory output, from what, and its files |
| :mod:`.fingerprints` | what a resumable output was built from; file digests |
| :mod:`.beir` | BEIR folders: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv`` (evaluation sets) |
| :mod:`.beir_files` | BEIR file paths and streaming readers of ids and texts |
| :mod:`.trec` | TREC run files and qrels |
| :mod:`.idf_json` | OpenSearch ``idf.json`` tables |
| :mod:`.index_store` | the sharded on-disk sparse index written by ``index`` |
| :mod:`.records` | training-record files (JSONL, TSV, parquet, saved HF datasets), read with ``file:line`` errors |
| :mod:`.report` | ``report.json`` / ``report.md`` of a run |
| :mod:`.tables` | Markdown tables (the one writer) |
"""
