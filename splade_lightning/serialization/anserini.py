"""Encode a corpus (and optionally queries) into Anserini / pyserini's ``JsonVectorCollection`` impact format.

Output directory::

    collection/            what Anserini indexes (its ``--input``; Anserini reads every file there, so nothing else is):
      docs-00000.jsonl ... {"id": docid, "contents": "", "vector": {token: impact}} per document, ``shard_size`` a file
    queries.tsv            (with queries) ``qid<TAB>token token token ...``: each token repeated ``impact`` times,
                           pyserini's "impact" query format (``--impact`` / ``--pretokenized``)
    export_info.json       the quantisation factor, model, counts and the commands that index and search it

``impact = round(weight × quantization)``; tokens whose impact is 0 are dropped (``docs/quantization.md`` measures
nDCG@10 and index size against the scale). Token names come from the tokenizer (``[unused0]``, ``##ing``, ...) or,
for a CSR model, ``latent_<j>``.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path

import torch

from splade_lightning.retrieval.quantize import impact_values
from splade_lightning.serialization.corpus_encoding import encoded_batches

INFO_FILE = "export_info.json"
COLLECTION_DIR = "collection"
QUERIES_FILE = "queries.tsv"


def impacts(reps: torch.Tensor, quantization: float) -> list[dict[int, int]]:
    """(N, V) dense weights -> per row ``{dimension: round(w × quantization)}`` with zero impacts dropped (the rounding
    of :func:`~splade_lightning.retrieval.quantize.impact_values`)."""
    quantized = impact_values(reps, quantization)
    rows = []
    for row in quantized:
        nz = row.nonzero().flatten()
        rows.append(dict(zip(nz.tolist(), row[nz].tolist())))
    return rows


def dimension_names(model) -> list[str]:
    """Name of every output dimension: the encoder's ``dimension_names`` (CSR latents) or the tokenizer's tokens."""
    ids = list(range(model.vocab_size))
    names_fn = getattr(model.encoder, "dimension_names", None)
    names = names_fn(ids) if names_fn is not None else model.tokenizer.convert_ids_to_tokens(ids)
    return [name if name is not None else f"[{i}]" for i, name in zip(ids, names)]


def export_corpus(model, corpus: str | Path, output: Path, quantization: float = 100.0, batch_size: int = 32,
                  shard_size: int = 100_000, progress: bool = True) -> int:
    """Write the ``collection/docs-NNNNN.jsonl`` shards of ``corpus`` into the directory ``output`` (the caller makes
    the whole directory appear atomically); returns the number of documents. Texts are streamed, one batch in
    memory."""
    names = dimension_names(model)
    (output / COLLECTION_DIR).mkdir(exist_ok=True)
    lines = _doc_lines(model, corpus, names, quantization, batch_size, progress)
    count, shard = 0, 0
    while (first := next(lines, None)) is not None:
        with open(output / COLLECTION_DIR / f"docs-{shard:05d}.jsonl", "w", encoding="utf-8") as handle:
            handle.write(first)
            count += 1
            for line in islice(lines, shard_size - 1):
                handle.write(line)
                count += 1
        shard += 1
    return count


def _doc_lines(model, corpus: str | Path, names: Sequence[str], quantization: float, batch_size: int,
               progress: bool) -> Iterator[str]:
    for doc_ids, reps in encoded_batches(model, corpus, "doc", batch_size, progress):
        for doc_id, vector in zip(doc_ids, impacts(reps.to_dense(), quantization)):
            record = {"id": doc_id, "contents": "", "vector": {names[j]: v for j, v in vector.items()}}
            yield json.dumps(record, ensure_ascii=False) + "\n"


def query_line(query_id: str, vector: dict[int, int], names: Sequence[str]) -> str:
    """``qid<TAB>tok tok tok``: each token repeated by its impact (negative impacts cannot be repeated; dropped)."""
    tokens = [" ".join([names[j]] * v) for j, v in sorted(vector.items(), key=lambda kv: (-kv[1], kv[0])) if v > 0]
    return f"{query_id}\t{' '.join(tokens)}"


def export_queries(model, queries: str | Path, output: Path, quantization: float = 100.0,
                   batch_size: int = 32) -> int:
    """Write ``queries.tsv`` (pyserini impact format) into ``output``; returns the number of queries."""
    names = dimension_names(model)
    lines = []
    for query_ids, reps in encoded_batches(model, queries, "query", batch_size):
        lines += [query_line(qid, vector, names) for qid, vector in zip(query_ids, impacts(reps.to_dense(),
                                                                                          quantization))]
    (output / QUERIES_FILE).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return len(lines)


def write_info(output: Path, final: Path, model_name: str, quantization: float, n_docs: int,
               n_queries: int | None) -> None:
    """``export_info.json`` in ``output``: the quantisation factor and how to index / search the collection (once
    moved to ``final``) with pyserini."""
    info = {
        "format": "anserini JsonVectorCollection", "model": model_name, "quantization": quantization,
        "impact": "round(weight * quantization); zero impacts dropped", "documents": n_docs,
        "queries": n_queries,
        "index_command": "python -m pyserini.index.lucene --collection JsonVectorCollection --input "
                         f"{shlex.quote(str(final / COLLECTION_DIR))} --index INDEX "
                         "--generator DefaultLuceneDocumentGenerator --impact --pretokenized",
        "search_command": "python -m pyserini.search.lucene --index INDEX --topics "
                          f"{shlex.quote(str(final / QUERIES_FILE))} --output run.trec --impact --pretokenized "
                          "--hits 1000",
    }
    (output / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
