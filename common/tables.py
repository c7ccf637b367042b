"""Figures and Markdown tables for the reports every package writes (report.md, table.md)."""

from __future__ import annotations

from collections.abc import Sequence


def fmt(value: float | None, digits: int = 3) -> str:
    """A figure for a table: ``0.912``, ``-`` for missing or NaN.

    >>> fmt(0.91234), fmt(float("nan")), fmt(None, 1)
    ('0.912', '-', '-')
    """
    if value is None or value != value:  # NaN of any float type (numpy's float32 is no float)
        return "-"
    return f"{value:.{digits}f}"


def markdown_cell(text: object) -> str:
    """``text`` as one Markdown table cell: a ``|`` escaped, a line break a space (a class name from a
    COCO file made by hand or by another tool, ``crack | deep``, split its row into another column).

    >>> markdown_cell("crack | deep"), markdown_cell("two\\nlines")
    ('crack \\\\| deep', 'two lines')
    """
    return " ".join(str(text).replace("|", "\\|").splitlines())


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub Markdown table of ``rows`` (cells already formatted) under ``header``.

    >>> print(markdown_table(["a", "b"], [["1", "2"]]))
    | a | b |
    |---|---|
    | 1 | 2 |
    """
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
