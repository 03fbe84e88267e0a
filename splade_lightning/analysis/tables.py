"""Render table rows (a list of dicts with the same keys) as GitHub Markdown, for notebooks and reports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from splade_lightning.errors import ConfigError

__all__ = ["markdown_table"]


def _cell(value: object, digits: int) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: Sequence[Mapping[str, object]], digits: int = 4) -> str:
    """A Markdown table of ``rows`` (columns: the first row's keys, in order; floats with ``digits`` decimals).

    Raises:
        ConfigError: when ``rows`` is empty or the rows do not share the same keys.
    """
    if not rows:
        raise ConfigError("markdown_table: expected at least one row")
    columns = list(rows[0])
    for i, row in enumerate(rows):
        if list(row) != columns:
            raise ConfigError(f"markdown_table: row {i} has columns {list(row)}, expected {columns}")
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(row[c], digits) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"
