"""Collecting input problems so that they can be raised together: :class:`ErrorList` and :func:`collect_errors`."""

from __future__ import annotations

from ..errors import DataError, DataErrors


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
