"""Encode a corpus (and optionally queries) into the REST bodies that create and fill a Qdrant collection holding one
sparse vector per document.

Output directory::

    collection.json           body of ``PUT /collections/{name}``:
                              {"sparse_vectors": {"splade": {"modifier": "none"}}} (no dense vectors)
    points/000000.json ...    bodies of ``PUT /collections/{name}/points?wait=true``, ``points_per_file`` points each:
                              {"points": [{"id": row, "vector": {"splade": {"indices": [...], "values": [...]}},
                                           "payload": {"_id": doc id}}, ...]}
    queries.jsonl             (with queries) {"_id": query id, "indices": [...], "values": [...]} per query
    export_info.json          the model, vector name, counts and the commands that load the collection

Point ids are the documents' rows in corpus order (0, 1, ...): Qdrant ids must be integers or UUIDs, so the corpus
id travels in the payload. Indices are the model's output dimensions (vocabulary ids; a CSR model's latents),
sorted and unique; values are the nonzero float32 weights, written in their shortest decimal form. Documents are
encoded with the document route and queries with the query route, so an inference-free model's documents hold its
MLM weights and its queries its static weights. Qdrant scores a sparse query by the dot product over shared indices,
which is the score of our exact search; ``"modifier": "none"`` keeps Qdrant from multiplying in its own IDF.

Load into a running Qdrant (the collection name ``msmarco`` is free; ``DIR`` is the output)::

    curl -sf -X PUT localhost:6333/collections/msmarco -H 'Content-Type: application/json' \\
        --data-binary @DIR/collection.json && for f in DIR/points/*.json; do curl -sf -X PUT \\
        'localhost:6333/collections/msmarco/points?wait=true' -H 'Content-Type: application/json' \\
        --data-binary @$f || break; done

or with qdrant-client (``QdrantClient(":memory:")`` runs the same in-process)::

    from pathlib import Path
    from qdrant_client import QdrantClient, models

    client, out = QdrantClient("localhost", port=6333), Path("DIR")
    body = models.CreateCollection.model_validate_json((out / "collection.json").read_text())
    client.create_collection("msmarco", sparse_vectors_config=body.sparse_vectors)
    for f in sorted((out / "points").glob("*.json")):
        client.upsert("msmarco", models.PointsList.model_validate_json(f.read_text()).points)
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Protocol

import torch

from splade_lightning.serialization.corpus_encoding import encoded_batches

__all__ = ["COLLECTION_FILE", "INFO_FILE", "POINTS_DIR", "QUERIES_FILE", "VECTOR_NAME", "export_corpus",
           "export_queries", "load_commands", "sparse_rows", "write_info"]

COLLECTION_FILE = "collection.json"
POINTS_DIR = "points"
QUERIES_FILE = "queries.jsonl"
INFO_FILE = "export_info.json"
#: the name of the sparse vector in the collection (``using=`` in a query)
VECTOR_NAME = "splade"
#: points per file: 1,000 SPLADE documents are a few MB, well under Qdrant's default 32 MiB request limit
POINTS_PER_FILE = 1000


class SparseEncoding(Protocol):
    """What the export needs of a model (:class:`~splade_lightning.api.SparseModel` has it)."""

    def encode_query(self, texts: Sequence[str], batch_size: int = 32) -> torch.Tensor: ...

    def encode_document(self, texts: Sequence[str], batch_size: int = 32) -> torch.Tensor: ...


def _short(value: float) -> float:
    """The float32 ``value`` as the double whose repr is float32's shortest round-trip decimal (``0.3``, not
    ``0.30000001192092896``)."""
    return float(str(value))


def sparse_rows(reps: torch.Tensor) -> list[dict[str, list]]:
    """(N, V) reps (dense or sparse) -> per row ``{"indices": [...], "values": [...]}``: the nonzero dimensions in
    ascending order and their float32 weights."""
    coo = (reps.to_sparse() if reps.layout == torch.strided else reps.to_sparse_coo()).coalesce()
    rows, cols = coo.indices()
    values = coo.values().float()
    keep = values != 0
    rows, cols, values = rows[keep], cols[keep], values[keep].numpy()
    counts = torch.bincount(rows, minlength=coo.shape[0]).tolist()
    out, start = [], 0
    for count in counts:  # coalesce() sorts by (row, column)
        out.append({"indices": cols[start:start + count].tolist(),
                    "values": [_short(v) for v in values[start:start + count]]})
        start += count
    return out


def _points(model: SparseEncoding, corpus: str | Path, batch_size: int, progress: bool) -> Iterator[str]:
    """One JSON point per document, in corpus order, ids 0, 1, ..."""
    row = 0
    for doc_ids, reps in encoded_batches(model, corpus, "doc", batch_size, progress):
        for doc_id, vector in zip(doc_ids, sparse_rows(reps)):
            yield json.dumps({"id": row, "vector": {VECTOR_NAME: vector}, "payload": {"_id": doc_id}},
                             ensure_ascii=False)
            row += 1


def export_corpus(model: SparseEncoding, corpus: str | Path, output: Path, batch_size: int = 32,
                  points_per_file: int = POINTS_PER_FILE, progress: bool = True) -> tuple[int, int]:
    """Write ``collection.json`` and the ``points/NNNNNN.json`` upsert bodies of ``corpus`` into the directory
    ``output`` (the caller makes the whole directory appear atomically). Texts are streamed, one batch in memory.

    Args:
        model: encodes the documents (``encode_document``).
        corpus: a BEIR directory (its ``corpus.jsonl``) or a JSONL file of ``{"_id", "title"?, "text"}`` records.
        output: the directory to write into.
        batch_size: texts encoded per batch.
        points_per_file: points per upsert body.
        progress: show a progress bar.

    Returns:
        ``(documents, points files)``.
    """
    body = {"sparse_vectors": {VECTOR_NAME: {"modifier": "none"}}}
    (output / COLLECTION_FILE).write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    (output / POINTS_DIR).mkdir()
    points = _points(model, corpus, batch_size, progress)
    count, files = 0, 0
    while chunk := list(islice(points, points_per_file)):
        text = '{"points": [\n' + ",\n".join(chunk) + "\n]}\n"
        (output / POINTS_DIR / f"{files:06d}.json").write_text(text, encoding="utf-8")
        count, files = count + len(chunk), files + 1
    return count, files


def export_queries(model: SparseEncoding, queries: str | Path, output: Path, batch_size: int = 32) -> int:
    """Write ``queries.jsonl`` (``{"_id", "indices", "values"}`` per query, encoded with the query route) into
    ``output``; returns the number of queries."""
    lines = []
    for query_ids, reps in encoded_batches(model, queries, "query", batch_size):
        lines += [json.dumps({"_id": qid, **vector}, ensure_ascii=False)
                  for qid, vector in zip(query_ids, sparse_rows(reps))]
    (output / QUERIES_FILE).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return len(lines)


def load_commands(final: Path, collection: str = "COLLECTION", host: str = "localhost:6333") -> list[str]:
    """The shell commands that create the collection and upsert every points file of the export at ``final``."""
    header = "-H 'Content-Type: application/json'"
    return [f"curl -sf -X PUT {host}/collections/{collection} {header} --data-binary @{final / COLLECTION_FILE}",
            f"for f in {final / POINTS_DIR}/*.json; do curl -sf -X PUT "
            f"'{host}/collections/{collection}/points?wait=true' {header} --data-binary @$f || break; done"]


def write_info(output: Path, final: Path, model_name: str, n_docs: int, n_files: int, n_queries: int | None) -> None:
    """``export_info.json`` in ``output``: what the files hold and how to load them (once moved to ``final``)."""
    info = {
        "format": "qdrant REST bodies (sparse vectors)", "model": model_name, "vector_name": VECTOR_NAME,
        "score": "dot product over shared indices (modifier none: no IDF)", "point_id": "row in corpus order; the "
        "corpus id is payload._id", "documents": n_docs, "points_files": n_files, "queries": n_queries,
        "load_commands": load_commands(final),
    }
    (output / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
