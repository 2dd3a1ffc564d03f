"""Tables for a terminal: the chosen columns fit its width (100 columns when unknown).

``--wide`` shows every column unshortened, ``--format csv`` writes every column as CSV for
scripts. In the default view, the long text column (a description) is wrapped into the width
left by the others, and other long cells are shortened with "...".
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Sequence
from enum import StrEnum

import pandas as pd

__all__ = ["TableFormat", "render_table", "terminal_width"]

#: Narrowest width the default view assumes, even in a tiny terminal.
MIN_WIDTH = 60
#: Widest a shortened cell (other than the wrapped column) may be.
MAX_CELL = 28
_GAP = "  "


class TableFormat(StrEnum):
    """How a listing is printed."""

    table = "table"
    csv = "csv"


def terminal_width() -> int:
    """The terminal's width in columns (``COLUMNS``, else the terminal, else 100)."""
    return max(MIN_WIDTH, shutil.get_terminal_size((100, 24)).columns)


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def render_table(
    table: pd.DataFrame,
    *,
    columns: Sequence[str],
    wrap: str,
    fmt: TableFormat = TableFormat.table,
    wide: bool = False,
    width: int | None = None,
) -> str:
    """``table`` as text: its ``columns`` fitted to ``width``, or every column (``wide``/CSV).

    ``wrap`` names the column (the last of ``columns``) wrapped over several lines.
    """
    text = table.astype(str)
    if fmt == TableFormat.csv:
        return table.to_csv(index=False).rstrip("\n")
    if wide:
        return text.to_string(index=False)
    width = width or terminal_width()
    fixed = [c for c in columns if c != wrap]
    cells = {c: [_shorten(v, MAX_CELL) for v in text[c]] for c in fixed}
    widths = {c: max([len(c), *map(len, cells[c])]) for c in fixed}
    room = width - sum(widths.values()) - len(_GAP) * len(fixed)
    room = max(room, 20)
    lines = [_GAP.join([*(c.ljust(widths[c]) for c in fixed), wrap]).rstrip()]
    for i, value in enumerate(text[wrap]):
        wrapped = textwrap.wrap(value, room) or [""]
        head = [cells[c][i].ljust(widths[c]) for c in fixed]
        lines.append(_GAP.join([*head, wrapped[0]]).rstrip())
        indent = " " * (sum(widths.values()) + len(_GAP) * len(fixed))
        lines.extend(indent + more for more in wrapped[1:])
    return "\n".join(lines)
