"""Stream a corpus or query file through a model's encoder, one batch in memory: what the corpus exports
(:mod:`~splade_lightning.serialization.anserini`, :mod:`~splade_lightning.serialization.qdrant`) write from."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import torch
from tqdm.auto import tqdm

from splade_lightning.formats.beir_files import stream_id_texts
from splade_lightning.idf.corpus import batches


def encoded_batches(model, path: str | Path, kind: Literal["doc", "query"], batch_size: int,
                    progress: bool = False) -> Iterator[tuple[list[str], torch.Tensor]]:
    """``(ids, reps)`` per batch of ``path``, in file order.

    Args:
        model: a :class:`~splade_lightning.api.SparseModel` (anything with ``encode_query`` / ``encode_document``).
        path: a BEIR directory (its ``corpus.jsonl`` or ``queries.jsonl``) or a JSONL file of records.
        kind: ``doc`` (the document route, ``encode_document``) or ``query`` (the query route, ``encode_query``).
        batch_size: texts read and encoded at once.
        progress: show a progress bar (documents only: "encode corpus").

    Yields:
        The batch's ids and its (B, V) reps as the model returns them (a sparse COO tensor for ``SparseModel``).
    """
    encode = model.encode_query if kind == "query" else model.encode_document
    with tqdm(desc="encode corpus", unit="doc", disable=not progress) as bar:
        for batch in batches(stream_id_texts(path, kind), batch_size):
            yield [item_id for item_id, _ in batch], encode([text for _, text in batch], batch_size=batch_size)
            bar.update(len(batch))
