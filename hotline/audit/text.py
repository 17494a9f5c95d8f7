"""The audit's plain-text output: fixed-width tables within ``WIDTH`` columns, and the times and
durations they show (shared by the compliance and availability reports and the plot)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

from hotline.times import format_time

WIDTH = 100  # no report line is longer


def time_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else format_time(moment)


def milliseconds(delta: timedelta) -> int:
    return delta // timedelta(milliseconds=1)


class Column(NamedTuple):
    header: str
    right: bool = False  # right-aligned (numbers)
    shrink: bool = False  # may be cut (with a trailing "~") to keep the table within WIDTH


def table(columns: Sequence[Column], rows: Sequence[Sequence[str]], *, indent: int = 2) -> list[str]:
    """Fixed-width columns two spaces apart, no line over WIDTH (shrinkable columns are cut)."""
    widths = [max([len(c.header), *(len(row[i]) for row in rows)]) for i, c in enumerate(columns)]
    while indent + sum(widths) + 2 * (len(widths) - 1) > WIDTH:
        candidates = [i for i, c in enumerate(columns) if c.shrink and widths[i] > max(len(c.header), 4)]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: widths[i])
        widths[widest] -= 1

    def line(cells: Sequence[str]) -> str:
        out = []
        for cell, width, column in zip(cells, widths, columns, strict=True):
            if len(cell) > width:
                cell = cell[:width - 1] + "~"
            out.append(cell.rjust(width) if column.right else cell.ljust(width))
        return (" " * indent + "  ".join(out)).rstrip()

    return [line([c.header for c in columns]), *(line(row) for row in rows)]


def moment_text(moment: datetime | None, absent: str = "none") -> str:
    return absent if moment is None else format_time(moment)[:19].replace("T", " ")


def duration_text(delta: timedelta) -> str:
    """``850ms``, ``45s``, ``2m05s``, ``1h02m``, ``3d04h``."""
    ms = milliseconds(delta)
    if ms < 1000:
        return f"{ms}ms"
    seconds = ms // 1000
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"
