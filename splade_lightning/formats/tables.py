"""Markdown tables: the one writer every report, tool, logger and notebook uses (GitHub pipe tables)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from splade_lightning.errors import ConfigError

__all__ = ["dict_table", "markdown_table"]


def _escape(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Sequence[object], rows: Iterable[Sequence[object]], pad: bool = False) -> str:
    """A GitHub Markdown table (no trailing newline); ``|`` and newlines inside cells are escaped.

    Args:
        header: the column names.
        rows: one sequence of cells per row, as long as ``header``; cells are written with ``str`` (format numbers
            before).
        pad: pad every column to its widest cell, for reading in a terminal.
    """
    table = [[_escape(c) for c in header]] + [[_escape(c) for c in row] for row in rows]
    for i, row in enumerate(table[1:]):
        if len(row) != len(table[0]):
            raise ConfigError(f"markdown_table: row {i} has {len(row)} cells, expected {len(table[0])}")
    if not pad:
        lines = ["| " + " | ".join(row) + " |" for row in table]
        lines.insert(1, "|" + "---|" * len(table[0]))
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in table]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _cell(value: object, digits: int) -> str:
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def dict_table(rows: Sequence[Mapping[str, object]], digits: int = 4) -> str:
    """A Markdown table of dict rows (columns: the first row's keys, in order; floats with ``digits`` decimals),
    ending with a newline.

    Raises:
        ConfigError: when ``rows`` is empty or the rows do not share the same keys.
    """
    if not rows:
        raise ConfigError("dict_table: expected at least one row")
    columns = list(rows[0])
    for i, row in enumerate(rows):
        if list(row) != columns:
            raise ConfigError(f"dict_table: row {i} has columns {list(row)}, expected {columns}")
    return markdown_table(columns, ([_cell(row[c], digits) for c in columns] for row in rows)) + "\n"
