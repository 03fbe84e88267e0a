"""Error types with messages that name the file, line, field, bad value and what was expected."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal


class SpladeLightningError(Exception):
    """Base class of every error this package raises on bad user input."""


class DataError(SpladeLightningError, ValueError):
    """Bad input data: a missing file, a malformed record, a missing field, a dangling id.

    Args:
        message: what is wrong and what was expected.
        path: the offending file or directory.
        line: 1-based line (or row) number inside ``path``.
        field: the offending field / column name.
        scope: ``"record"`` for a problem of one record (it can be skipped with ``on_bad_record: skip``) or
            ``"file"`` for one that concerns a whole file (missing file, bad header, no records); default:
            ``"record"`` when ``line`` is given, else ``"file"``.
    """

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None, field: str | None = None,
                 scope: Literal["record", "file"] | None = None):
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.reason = message
        self.scope = scope if scope is not None else ("record" if line is not None else "file")
        where = self.path or ""
        if line is not None:
            where += f":{line}"
        prefix = f"{where}: " if where else ""
        if field is not None:
            prefix += f"field '{field}': "
        super().__init__(prefix + message)


class DataErrors(DataError):
    """Several :class:`DataError` collected and reported together (at most ``shown`` printed in full)."""

    def __init__(self, errors: Iterable[DataError], shown: int = 20):
        self.errors = list(errors)
        lines = [str(e) for e in self.errors[:shown]]
        more = len(self.errors) - shown
        if more > 0:
            lines.append(f"... and {more} more problem(s)")
        header = f"{len(self.errors)} problem(s) found in the input data:\n  "
        SpladeLightningError.__init__(self, header + "\n  ".join(lines))
        self.path, self.line, self.field, self.reason = None, None, None, "several problems"
        self.scope = "file"


class ConfigError(SpladeLightningError, ValueError):
    """A bad constructor / CLI argument: names the argument, the bad value and the allowed values."""


class TrainingDiverged(SpladeLightningError, FloatingPointError):
    """A non-finite training loss (raised by :class:`~splade_lightning.callbacks.CollapseGuard`)."""


class TrainingCollapsed(SpladeLightningError, RuntimeError):
    """The representations collapsed to (almost) all-zero vectors (raised by
    :class:`~splade_lightning.callbacks.CollapseGuard`)."""
