"""Markdown tables: the one renderer every report, comparison and energy page uses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def markdown_cell(value: Any) -> str:
    """One cell: ``|`` escaped and newlines folded so the row stays one line."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_row(cells: Sequence[Any]) -> str:
    """``| a | b |`` for one row of cells."""
    return "| " + " | ".join(markdown_cell(c) for c in cells) + " |"


def markdown_table(header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (header, separator, one line per row)."""
    lines = [markdown_row(header), "|" + "---|" * len(header)]
    lines += [markdown_row(r) for r in rows]
    return "\n".join(lines)
