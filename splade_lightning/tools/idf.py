"""``splade-lightning idf``: compute a corpus's IDF table (OpenSearch ``idf.json``) and compare tables.

Examples::

    splade-lightning idf --corpus data/scifact --output runs/scifact_idf.json
    splade-lightning idf --corpus data/scifact --output idf.json --compare opensearch/idf.json --min_df 2
    splade-lightning idf --compare opensearch/idf.json runs/scifact_idf.json

Every argument is checked before the corpus is read.
"""

from __future__ import annotations

import numpy as np

from splade_lightning.errors import ConfigError, DataError
from splade_lightning.formats.beir_files import beir_file
from splade_lightning.formats.idf_json import read_idf_json, write_idf_json
from splade_lightning.formats.outputs import Input, check_file_output, model_input
from splade_lightning.hub import load_tokenizer
from splade_lightning.idf.compare import compare_idf, format_comparison
from splade_lightning.idf.corpus import corpus_idf


def _check(corpus: str | None, output: str | None, tokenizer: str, compare: list[str], overwrite: bool,
           counts: dict[str, tuple[int, int]]) -> list[dict[str, float]]:
    """Check every argument before any work; return the ``--compare`` tables, read and validated."""
    if len(compare) > 2:
        raise ConfigError(f"--compare takes one or two tables, got {len(compare)}")
    if corpus is not None:
        if output is None:
            raise ConfigError("--corpus needs --output FILE, the idf.json to write")
        if len(compare) > 1:
            raise ConfigError("with --corpus, --compare takes one reference table (the new table is compared "
                              "against it)")
    elif len(compare) != 2:
        raise ConfigError("expected --corpus PATH --output FILE [--compare REF], or --compare A B")
    elif output is not None:
        raise ConfigError("--output needs --corpus; --compare A B only prints the comparison")
    for name, (value, low) in counts.items():
        if value < low:
            raise ConfigError(f"--{name} must be >= {low}, got {value}")
    if corpus is not None:
        beir_file(corpus, "doc")
        inputs = [Input(corpus, "--corpus", reads=("corpus.jsonl",)), model_input(tokenizer, "--tokenizer"),
                  *(Input(path, "--compare") for path in compare)]
        check_file_output(output, "--output", overwrite, "the idf.json file to write", inputs)
    return [read_idf_json(path) for path in compare]


def idf(corpus: str | None = None, output: str | None = None, tokenizer: str = "splade-tiny", batch_size: int = 1024,
        compare: list[str] | None = None, top: int = 20, min_df: int = 1, overwrite: bool = False,
        progress: bool = True) -> int:
    """Compute the smoothed IDF log((N+1)/(df+1))+1 of every token over a corpus and write it as an OpenSearch
    idf.json, and/or compare IDF tables.

    Args:
        corpus: the documents: a BEIR directory (its corpus.jsonl) or a JSONL file of {"_id", "title", "text"}
            records.
        output: the idf.json file to write (required with --corpus).
        tokenizer: the tokenizer that splits the documents: alias, model directory or HF hub id (default
            splade-tiny, BERT-uncased).
        batch_size: documents per tokenizer call.
        compare: with --corpus, one reference table to compare the new table against; without, two tables A B (B is
            compared against A).
        top: tokens listed per direction in the comparison.
        min_df: with --corpus --compare, only tokens in at least this many documents are compared.
        overwrite: replace an existing --output file.
        progress: show a progress bar.
    """
    compare = list(compare or [])
    tables = _check(corpus, output, tokenizer, compare, overwrite,
                    {"batch_size": (batch_size, 1), "top": (top, 1), "min_df": (min_df, 0)})
    if corpus is None:
        print(format_comparison(compare_idf(tables[0], tables[1], top=top), name_a=compare[0], name_b=compare[1]))
        return 0
    loaded = load_tokenizer(tokenizer)
    table, df, n_docs = corpus_idf(corpus, loaded, batch_size=batch_size, progress=progress)
    out = write_idf_json(table, None, output)
    print(f"wrote {len(table)} tokens from {n_docs} documents to {out}")
    if tables:
        ids = np.nonzero(df >= min_df)[0].tolist()
        tokens = {t for t in loaded.convert_ids_to_tokens(ids) if t is not None}
        if not tokens:
            raise DataError(f"no token occurs in at least --min_df {min_df} of the {n_docs} documents; nothing to "
                            "compare", path=corpus)
        cmp = compare_idf(tables[0], table, top=top, tokens=tokens)
        print(f"\ncomparing tokens with df >= {min_df} ({len(tokens)} tokens)")
        print(format_comparison(cmp, name_a=compare[0], name_b=f"{corpus} (new table)"))
    return 0
