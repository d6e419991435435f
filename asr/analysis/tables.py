"""Rendering rows of cells as text tables: markdown for reading, CSV for other tools.

The callers decide what a cell says (``"7.57 %"``, ``"–"``); these functions only lay the
cells out, so every table of the toolkit has the same shape.

Example:
    >>> print(markdown_table(["job", "WER"], [["0", "7.57 %"]]), end="")
    | job | WER |
    |---|---:|
    | 0 | 7.57 % |
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence


def markdown_table(head: Sequence[str], rows: Iterable[Sequence[str]], *, left: int = 1) -> str:
    """A markdown table, one line per row and a final newline.

    Args:
        head: the column names.
        rows: the cells of each row, already formatted, as many as ``head``.
        left: how many leading columns are left-aligned (names, settings); the others are
            right-aligned, as numbers read best.
    """
    align = ["---"] * left + ["---:"] * (len(head) - left)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines) + "\n"


def csv_text(head: Sequence[str], rows: Iterable[Sequence]) -> str:
    """CSV with a header line and ``\\n`` line ends; ``None`` is an empty cell, other values as ``str()`` gives them."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(head)
    writer.writerows(rows)
    return buf.getvalue()
