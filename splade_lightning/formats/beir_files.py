"""Where BEIR records are: a corpus or queries argument (a BEIR folder or its JSONL file), a folder of BEIR folders
(a suite), and the judged queries of a split. The records themselves are read by :mod:`splade_lightning.formats.beir`.
No torch here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from splade_lightning.errors import ConfigError, DataError, DataErrors
from splade_lightning.formats.beir import iter_id_texts, parse_grade, read_id_text
from splade_lightning.formats.records import iter_lines, missing_path_error


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


#: the file of each record kind inside a BEIR directory
BEIR_FILES = {"doc": "corpus.jsonl", "query": "queries.jsonl"}


def beir_file(path: str | Path, kind: str) -> Path:
    """The JSONL file behind a corpus or queries argument: ``path`` itself, or ``<path>/corpus.jsonl`` (kind
    ``doc``) / ``<path>/queries.jsonl`` (kind ``query``) when ``path`` is a BEIR directory.

    Raises:
        DataError: the path does not exist, or is a directory without that file.
    """
    path, name = Path(path), BEIR_FILES[kind]
    if path.is_dir():
        if not (path / name).is_file():
            raise DataError(f"directory has no {name}; expected a BEIR directory or a JSONL file of "
                            + ('{"_id", "title", "text"}' if kind == "doc" else '{"_id", "text"}') + " records", path)
        return path / name
    if not path.is_file():
        raise missing_path_error(path, "corpus" if kind == "doc" else "queries")
    return path


def stream_id_texts(path: str | Path, kind: str) -> Iterator[tuple[str, str]]:
    """Stream ``(id, text)`` of a corpus or queries argument (:func:`beir_file`), in file order; every bad record is
    collected and raised at the end.

    Raises:
        DataError: a missing file. DataErrors: bad records (see :func:`iter_id_texts`).
    """
    errors: list[DataError] = []
    yield from iter_id_texts(beir_file(path, kind), kind, errors)
    if errors:
        raise DataErrors(errors)


def _judged_ids(qrels: Path, errors: list[DataError]) -> set[str]:
    """Query ids with at least one row in a BEIR qrels TSV (an optional header line first)."""
    ids = set()
    for line, raw in iter_lines(qrels, errors):
        fields = raw.split("\t")
        if raw.strip() and not (line == 1 and len(fields) == 3 and parse_grade(fields[2]) is None):
            ids.add(fields[0])
    return ids


def read_queries(path: str | Path, split: str) -> dict[str, str]:
    """Query id -> text from a queries JSONL, or from a BEIR directory (only the queries judged in ``split``).

    Raises:
        DataError: missing files, malformed records, no queries.
    """
    path, errors = Path(path), []
    judged = None
    if path.is_dir():
        qrels = path / "qrels" / f"{split}.tsv"
        if not qrels.is_file():
            raise DataError(f"--split {split}: no qrels/{split}.tsv in the BEIR directory", path=path)
        judged = _judged_ids(qrels, errors)
    queries = read_id_text(beir_file(path, "query"), "query", errors)
    if errors:
        raise DataErrors(errors)
    if judged is not None:
        queries = {qid: text for qid, text in queries.items() if qid in judged}
    if not queries:
        raise DataError("no queries to search", path=path)
    return queries
