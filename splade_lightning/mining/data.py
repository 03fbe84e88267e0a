"""Inputs and output of ``mine``: the query set and de-duplicated corpus of a BEIR directory, and the resumable
JSONL output.

The output is written in chunks of complete lines, each appended, flushed and fsynced; a restart reads the query ids
already written (dropping an incomplete last line, the trace of an interrupted write) and appends the rest. The run's
fingerprint (settings, data, model weights) is kept in the manifest of ``<output>.cache/`` so that a restart with
anything else is refused instead of mixing two runs in one file. No torch here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from splade_lightning.errors import DataError
from splade_lightning.formats.beir import load_beir
from splade_lightning.formats.records import show


@dataclass
class MiningData:
    """What mining needs from a BEIR directory.

    Attributes:
        texts: the corpus texts (``title + " " + text``), de-duplicated as ST does: documents with identical text
            are one candidate, so a text identical to a positive's is never a negative.
        text_doc_ids: per text, the id of the first document (in corpus order) that has it.
        qids: the queries with at least one positive, in ``queries.jsonl`` order.
        query_texts: their texts.
        positive_ids: per query, its positive doc ids (qrels grade >= ``min_relevance``), in qrels order.
        positive_rows: per query, the distinct rows of ``texts`` of its positives.
        doc_rows: doc id -> row of ``texts``.
    """

    texts: list[str]
    text_doc_ids: list[str]
    qids: list[str]
    query_texts: list[str]
    positive_ids: list[list[str]]
    positive_rows: list[np.ndarray]
    doc_rows: dict[str, int]

    @property
    def max_positives(self) -> int:
        """The largest number of distinct positive texts of any query (ST's ``max_positives``)."""
        return max(len(rows) for rows in self.positive_rows)


def load_mining_data(path: str | Path, split: str, min_relevance: int) -> MiningData:
    """Load a BEIR directory and keep the queries that have a positive.

    Raises:
        DataErrors: see :func:`~splade_lightning.formats.beir.load_beir`.
        DataError: no query has a qrels row with grade >= ``min_relevance``.
    """
    data = load_beir(path, split, min_relevance=min_relevance)
    row_of_text: dict[str, int] = {}
    texts: list[str] = []
    text_doc_ids: list[str] = []
    doc_rows: dict[str, int] = {}
    for doc_id, text in data.corpus.items():
        row = row_of_text.setdefault(text, len(texts))
        if row == len(texts):
            texts.append(text)
            text_doc_ids.append(doc_id)
        doc_rows[doc_id] = row
    qids, query_texts, positive_ids, positive_rows = [], [], [], []
    for qid, text in data.queries.items():
        ids = [doc_id for doc_id, grade in data.qrels[qid].items() if grade >= min_relevance]
        if ids:
            qids.append(qid)
            query_texts.append(text)
            positive_ids.append(ids)
            positive_rows.append(np.array(list(dict.fromkeys(doc_rows[d] for d in ids)), dtype=np.int64))
    if not qids:
        raise DataError(f"no query has a qrels row with grade >= --min_relevance {min_relevance}",
                        path=Path(path) / "qrels" / f"{split}.tsv")
    return MiningData(texts, text_doc_ids, qids, query_texts, positive_ids, positive_rows, doc_rows)


def output_record(qid: str, positive_ids: Sequence[str], system: str, negative_ids: Sequence[str],
                  positive_scores: Sequence[float] | None = None,
                  negative_scores: Sequence[float] | None = None) -> str:
    """One output line: ``{"qid", "pos", "neg": {system: [...]}[, "scores": {"pos": [...], system: [...]}]}``."""
    record: dict = {"qid": qid, "pos": list(positive_ids), "neg": {system: list(negative_ids)}}
    if positive_scores is not None and negative_scores is not None:
        record["scores"] = {"pos": [round(float(s), 6) for s in positive_scores],
                            system: [round(float(s), 6) for s in negative_scores]}
    return json.dumps(record, ensure_ascii=False) + "\n"


def append_lines(path: str | Path, lines: Sequence[str]) -> None:
    """Append complete lines to ``path`` in one write, then flush and fsync, so a crash leaves whole chunks plus at
    most one incomplete last line."""
    if not lines:
        return
    with open(path, "ab") as handle:
        handle.write("".join(lines).encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())


@dataclass
class Written:
    """What an earlier run left in the output file.

    Attributes:
        qids: the query ids of the complete records, in file order.
        size: bytes of those records; anything after them is to be cut off.
        dropped: why the last line is dropped (incomplete or unreadable), or None.
    """

    qids: list[str]
    size: int
    dropped: str | None = None


def _line_qid(raw: bytes) -> tuple[str | None, str]:
    """The ``qid`` of one complete output line, or ``(None, why not)``."""
    if not raw.endswith(b"\n"):
        return None, "incomplete line (no newline at the end)"
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        return None, f"unreadable line ({e})"
    qid = record.get("qid") if isinstance(record, dict) else None
    if not isinstance(qid, str) or not isinstance(record.get("neg"), dict):
        return None, f"not a mine record {{'qid', 'pos', 'neg'}}: {show(record)}"
    return qid, ""


def read_written(path: str | Path, known_qids: Collection[str]) -> Written:
    """Read the records an earlier (possibly interrupted) run wrote.

    Only the last line may be bad (an interrupted write): it is reported in ``dropped`` and excluded from ``size``.

    Args:
        path: the output file.
        known_qids: the query ids of this run; a record for any other query means the file belongs to another run.

    Raises:
        DataError: a bad line before the last one, a duplicate query id, or a query id not in ``known_qids``.
    """
    qids: list[str] = []
    seen: set[str] = set()
    size, bad = 0, None
    hint = "pass --overwrite to start again, or choose another --output"
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if bad is not None:
                raise DataError(f"{bad[1]}; only the last line may be incomplete (an interrupted run); {hint}",
                                path=path, line=bad[0])
            qid, why = _line_qid(raw)
            if qid is None:
                bad = (number, why)
                continue
            if qid not in known_qids:
                raise DataError(f"query id {qid!r} is not one of the queries being mined; the file was written for "
                                f"other data; {hint}", path=path, line=number, field="qid")
            if qid in seen:
                raise DataError(f"duplicate query id {qid!r}; {hint}", path=path, line=number, field="qid")
            seen.add(qid)
            qids.append(qid)
            size += len(raw)
    return Written(qids, size, f"line {bad[0]}: {bad[1]}" if bad else None)


def read_skipped(path: str | Path) -> set[str]:
    """The query ids an earlier run found no negative for and skipped: one JSON string per line in ``path``; an
    incomplete or unreadable line (an interrupted write) is ignored. A missing file is an empty set."""
    path = Path(path)
    if not path.is_file():
        return set()
    qids = set()
    for line in path.read_bytes().split(b"\n")[:-1]:  # after the last newline: empty, or an incomplete line
        try:
            qid = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(qid, str):
            qids.add(qid)
    return qids


def cache_dir(output: str | Path) -> Path:
    """``<output>.cache/``: the run's settings and the model retriever's corpus encodings."""
    return Path(f"{output}.cache")
