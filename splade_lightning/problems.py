"""Collecting input problems so that they can be raised together (:class:`ErrorList`, :func:`collect_errors`), or
skipped and counted (:class:`SkippedRecords`, :func:`settle`)."""

from __future__ import annotations

from collections import Counter
from typing import Literal

from splade_lightning.errors import DataError, DataErrors


class ErrorList(list):
    """A list of :class:`DataError` that keeps the first ``limit`` and only counts the rest (bad files can have
    millions of problems)."""

    def __init__(self, limit: int = 1000):
        super().__init__()
        self.limit, self.dropped = limit, 0

    def append(self, error: DataError) -> None:
        if len(self) < self.limit:
            super().append(error)
        else:
            self.dropped += 1

    @property
    def total(self) -> int:
        """Errors seen, kept or not."""
        return len(self) + self.dropped

    def room(self) -> int:
        """How many more errors are kept."""
        return max(0, self.limit - len(self))

    def raise_if_any(self) -> None:
        """Raise every kept error (plus a line counting the dropped ones) as one :class:`DataErrors`."""
        if self.dropped:
            super().append(DataError(f"... and {self.dropped} more problem(s) of the same kinds, not listed"))
            self.dropped = 0
        if self:
            raise DataErrors(list(self))


def collect_errors(errors: list[DataError], load, *args):
    """``load(*args)``, or ``None`` after adding the :class:`DataError` (or every error of the :class:`DataErrors`)
    it raised to ``errors``."""
    try:
        return load(*args)
    except DataErrors as e:
        errors.extend(e.errors)
    except DataError as e:
        errors.append(e)
    return None


# -- skipping bad records ----------------------------------------------------------------------------------------------
OnBadRecord = Literal["raise", "skip"]

#: (substring of a DataError's reason, kind it is counted as), first match wins
_KINDS = (("not valid UTF-8", "invalid UTF-8"), ("malformed JSON", "malformed JSON"),
          ("expected a JSON object", "not an object"), ("missing", "missing field"),
          ("tab-separated fields", "wrong field count"), ("duplicate", "duplicate"),
          ("more than once", "duplicate"), ("scored twice", "duplicate"), ("is not in", "dangling id"),
          ("has no record", "dangling id"), ("no valid record", "dangling id"), ("non-finite", "non-finite score"),
          ("scores for", "wrong list length"), ("integer grade", "non-integer grade"), ("ids must be", "wrong type"),
          ("empty", "empty text or list"), ("expected", "wrong type"))


def error_kind(error: DataError) -> str:
    """A short name of the kind of problem (``"malformed JSON"``, ``"dangling id"``, ...), for skip counts."""
    return next((kind for text, kind in _KINDS if text in error.reason), "other")


class SkippedRecords:
    """Bad records dropped under ``on_bad_record: skip``: counts per file and kind, plus the first examples.

    Args:
        shown: how many examples (``file:line: problem``) :meth:`summary` lists.
    """

    def __init__(self, shown: int = 5):
        self.shown = shown
        self.kinds: Counter[tuple[str, str]] = Counter()  # (file, kind) -> problems
        self.records: dict[str, set[int]] = {}  # file -> bad line numbers
        self.unlisted: Counter[str] = Counter()  # file -> problems beyond an ErrorList's limit (lines unknown)
        self.examples: list[DataError] = []

    def add(self, errors: list[DataError]) -> None:
        """Count record-level ``errors`` as skipped."""
        for error in errors:
            if error.line is None:  # the "... and N more" line of an ErrorList
                continue
            self.kinds[(str(error.path), error_kind(error))] += 1
            self.records.setdefault(str(error.path), set()).add(error.line)
            if len(self.examples) < self.shown:
                self.examples.append(error)

    @property
    def total(self) -> int:
        """Records skipped (a record with several problems counts once)."""
        return sum(len(lines) for lines in self.records.values()) + sum(self.unlisted.values())

    def per_file(self) -> dict[str, int]:
        """File -> records skipped."""
        files = {path: len(lines) for path, lines in self.records.items()}
        for path, count in self.unlisted.items():
            files[path] = files.get(path, 0) + count
        return files

    def summary(self) -> str:
        """One message: the total, per file the records and problem kinds, and the first examples."""
        parts = []
        for path, count in self.per_file().items():
            kinds = ", ".join(f"{kind} {n}" for (p, kind), n in sorted(self.kinds.items()) if p == path)
            parts.append(f"{path}: {count} record(s) ({kinds or 'not listed'})")
        examples = "; ".join(str(e) for e in self.examples)
        return (f"on_bad_record='skip': skipped {self.total} bad record(s): " + "; ".join(parts)
                + (f". First examples: {examples}" if examples else ""))


def settle(errors: list[DataError], on_bad_record: OnBadRecord, skipped: SkippedRecords | None) -> None:
    """End of reading: nothing to do without ``errors``; with ``"skip"`` and only record-level errors, count them in
    ``skipped`` and clear ``errors`` (the caller has already dropped those records); otherwise raise them all.

    Raises:
        DataErrors: every problem, with ``"raise"``, or with ``"skip"`` when some problem concerns a whole file.
    """
    dropped = getattr(errors, "dropped", 0)
    if not errors and not dropped:
        return
    if on_bad_record == "skip" and skipped is not None and all(e.scope == "record" for e in errors):
        skipped.add(list(errors))
        if dropped:
            skipped.unlisted["(further problems beyond the listing limit, lines not kept)"] += dropped
            errors.dropped = 0
        errors.clear()
        return
    if isinstance(errors, ErrorList):
        errors.raise_if_any()
    raise DataErrors(list(errors))
