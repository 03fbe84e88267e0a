"""Semantic textual similarity (STS) evaluation sets: a JSONL file of sentence pairs with gold similarity scores.

The counterpart of the inputs of sentence-transformers 6.2's ``SparseEmbeddingSimilarityEvaluator``
(``sparse_encoder/evaluation/sparse_embedding_similarity.py``: ``sentences1``, ``sentences2``, ``scores``). Every
problem is collected and raised together as one :class:`~splade_lightning.errors.DataErrors`. No torch here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from splade_lightning.errors import DataError, DataErrors
from splade_lightning.formats.records import iter_jsonl, missing_path_error, show
from splade_lightning.problems import OnBadRecord, SkippedRecords, settle

#: how the model's similarity of two sentence vectors is computed
StsSimilarity = Literal["dot", "cosine"]


@dataclass
class StsSet:
    """One STS evaluation set (a ``val_sts_sets`` / ``test_sts_sets`` entry such as
    ``{path: data/stsb-cc/dev.jsonl}``).

    Both sentences of a pair are encoded as documents (the ``document`` route, truncated to the document length), as
    sentence-transformers' ``SparseEncoder.encode`` does through a Router's default route ``document``. The metrics
    are the Spearman and Pearson correlations between the model's similarity of the two vectors and the gold score
    (any scale: both are invariant to a linear rescaling of the scores).

    Args:
        path: a JSONL file with one pair per line, e.g. ``{"sentence1": ..., "sentence2": ..., "score": 4.2}``.
        name: name used in metric keys (``val/<name>/spearman``); default: ``<parent directory>-<file stem>``
            (``stsb-cc-dev`` for ``data/stsb-cc/dev.jsonl``).
        sentence1_column: the field of the first sentence.
        sentence2_column: the field of the second sentence.
        score_column: the field of the gold score (a JSON number).
        similarity: ``dot`` (sentence-transformers' default for sparse encoders, ``spearman_dot``) or ``cosine``.
    """

    path: str
    name: str | None = None
    sentence1_column: str = "sentence1"
    sentence2_column: str = "sentence2"
    score_column: str = "score"
    similarity: StsSimilarity = "dot"

    @property
    def display_name(self) -> str:
        """``name``, or ``<parent directory>-<file stem>`` when no name is given."""
        if self.name:
            return self.name
        path = Path(self.path).resolve()
        return f"{path.parent.name}-{path.stem}" if path.parent.name else path.stem


@dataclass
class StsData:
    """A loaded STS set: N sentence pairs with their gold scores.

    Attributes:
        name: the set's name (unique among a stage's sets).
        sentences1: the N first sentences.
        sentences2: the N second sentences.
        scores: the N gold scores.
        similarity: ``dot`` or ``cosine``.
        path: the JSONL file.
        suite: the suite the set belongs to; always ``None`` (suites hold BEIR sets), kept so that code reading
            ``EvalData.suite`` reads any evaluation set.
    """

    name: str
    sentences1: list[str]
    sentences2: list[str]
    scores: list[float]
    similarity: StsSimilarity = "dot"
    path: str = ""
    suite: str | None = None


def _sentence(obj: dict, column: str, path: Path, line: int, errors: list[DataError]) -> str | None:
    if column not in obj:
        errors.append(DataError(f"missing field; this record has fields {sorted(obj)}", path, line, column))
        return None
    value = obj[column]
    if not isinstance(value, str):
        errors.append(DataError(f"expected a string, got {type(value).__name__} {show(value)}", path, line, column))
        return None
    return value


def _score(obj: dict, column: str, path: Path, line: int, errors: list[DataError]) -> float | None:
    if column not in obj:
        errors.append(DataError(f"missing field; this record has fields {sorted(obj)}", path, line, column))
        return None
    value = obj[column]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        errors.append(DataError(f"expected a number (the gold similarity), got {type(value).__name__} {show(value)}",
                                path, line, column))
        return None
    if not math.isfinite(value):
        errors.append(DataError(f"expected a finite number, got {value}", path, line, column))
        return None
    return float(value)


def load_sts(path: str | Path, name: str | None = None, sentence1_column: str = "sentence1",
             sentence2_column: str = "sentence2", score_column: str = "score", similarity: StsSimilarity = "dot",
             on_bad_record: OnBadRecord = "raise", skipped: SkippedRecords | None = None) -> StsData:
    """Load and validate an STS JSONL file.

    With ``on_bad_record="skip"`` a bad line (malformed JSON, not an object, a missing or non-string sentence, a
    missing, non-numeric or non-finite score) is left out and counted in ``skipped``. A missing file, and a file left
    with fewer than two pairs (a correlation needs two), still raise.

    Args:
        path: the JSONL file.
        name: dataset name; default: see :class:`StsSet`.
        sentence1_column: field of the first sentence.
        sentence2_column: field of the second sentence.
        score_column: field of the gold score.
        similarity: ``dot`` or ``cosine``.
        on_bad_record: ``"raise"`` or ``"skip"`` (see above).
        skipped: receives the skipped records (needed with ``"skip"``).

    Returns:
        The validated :class:`StsData`.

    Raises:
        DataErrors: every problem found, each with its file:line and field.
    """
    path = Path(path)
    if not path.is_file():
        raise DataErrors([missing_path_error(path, "STS file")])
    errors: list[DataError] = []
    s1, s2, scores = [], [], []
    for line, obj in iter_jsonl(path, errors):
        if not isinstance(obj, dict):
            errors.append(DataError(f"expected a JSON object, got {type(obj).__name__} {show(obj)}", path, line))
            continue
        first = _sentence(obj, sentence1_column, path, line, errors)
        second = _sentence(obj, sentence2_column, path, line, errors)
        score = _score(obj, score_column, path, line, errors)
        if first is not None and second is not None and score is not None:
            s1.append(first)
            s2.append(second)
            scores.append(score)
    if len(scores) < 2 and not any(e.scope == "file" for e in errors):
        errors.append(DataError(f"{len(scores)} usable pair(s); expected at least 2 (a correlation needs two)",
                                path=path))
    settle(errors, on_bad_record, skipped)
    display = name or StsSet(str(path)).display_name
    return StsData(display, s1, s2, scores, similarity, str(path))


def load_sts_set(sts_set: StsSet, on_bad_record: OnBadRecord = "raise",
                 skipped: SkippedRecords | None = None) -> StsData:
    """Load an :class:`StsSet` with :func:`load_sts`.

    Raises:
        DataErrors: see :func:`load_sts`.
    """
    return load_sts(sts_set.path, sts_set.display_name, sts_set.sentence1_column, sts_set.sentence2_column,
                    sts_set.score_column, sts_set.similarity, on_bad_record, skipped)


def text_id(column: Literal[1, 2], row: int) -> str:
    """The id under which sentence ``column`` (1 or 2) of pair ``row`` is encoded: ``"1:17"``, ``"2:17"``."""
    return f"{column}:{row}"


def parse_text_id(key: str) -> tuple[int, int]:
    """``(column, row)`` of an id written by :func:`text_id`."""
    column, row = key.split(":", 1)
    return int(column), int(row)
