"""A dataset's layout, the pure part: partitions, file names, and the index of finished
windows.

Owns: which calendar period partitions a granularity (``month`` below a day, ``year``
from a day up, in the dataset's time zone), a row's partition name (``month=2024-10``),
cutting a window at partition boundaries into *pieces*, the names of piece files
(``component-54369_<window start>_<window end>.parquet``: the window they come from) and
of compacted files (``part-<16 hex>.parquet``), and ``Ranges``: the finished windows of
one entity as merged ``[start, end)`` spans, so a dataset of 300,000 finished windows is
indexed by a few numbers per entity. Must never: read a clock, do I/O.

A window's rows go to the partition of their own timestamp, so a window that crosses a
month boundary is written as two pieces, each in its partition and named after the
window; the request stays one (the fewest requests are the scarce resource).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Final
from zoneinfo import ZoneInfo

from locus_async.locus.models import Granularity

__all__ = [
    "PART_PREFIX",
    "Ranges",
    "is_part",
    "parse_piece",
    "partition_name",
    "partition_unit",
    "period_bounds",
    "piece_name",
    "stamp",
]

PART_PREFIX: Final = "part-"
_PIECE: Final = re.compile(
    r"\A(component|site)-(\d+)_(\d{8}T\d{6}Z)_(\d{8}T\d{6}Z)\.(parquet|csv)\Z"
)
_PART: Final = re.compile(r"\Apart-[0-9a-f]{16}\.(parquet|csv)\Z")
_SUB_DAILY: Final = frozenset(
    {Granularity.MIN1, Granularity.MIN5, Granularity.MIN15, Granularity.HOURLY}
)


def partition_unit(gran: Granularity) -> str:
    """``month`` for granularities below a day, ``year`` for daily and coarser: a few
    million rows per file for a thousand components either way."""
    return "month" if gran in _SUB_DAILY else "year"


def _period_start(ts: int, tz: ZoneInfo, unit: str) -> datetime:
    local = datetime.fromtimestamp(ts, tz)
    if unit == "month":
        return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0, fold=0)
    return local.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0, fold=0)


def _next_period(start: datetime, unit: str) -> datetime:
    if unit == "month":
        year, month = divmod(start.month, 12)
        return start.replace(year=start.year + year, month=month + 1)
    return start.replace(year=start.year + 1)


def partition_name(ts: int, tz: ZoneInfo, unit: str) -> str:
    """The partition holding a row stamped ``ts`` (unix seconds): its local period."""
    start = _period_start(ts, tz, unit)
    return f"month={start:%Y-%m}" if unit == "month" else f"year={start:%Y}"


def period_bounds(lo: int, hi: int, tz: ZoneInfo, unit: str) -> list[tuple[str, int, int]]:
    """The partitions ``[lo, hi)`` touches, each as (name, first second, end), clipped to
    ``[lo, hi)``; in time order."""
    out: list[tuple[str, int, int]] = []
    cursor = lo
    while cursor < hi:
        start = _period_start(cursor, tz, unit)
        stop = int(_next_period(start, unit).timestamp())
        out.append((partition_name(cursor, tz, unit), cursor, min(stop, hi)))
        cursor = stop
    return out


def stamp(ts: int) -> str:
    """``20241001T070000Z``: how file names write an instant."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%dT%H%M%SZ")


def piece_name(kind: str, ident: int, start: int, end: int, suffix: str) -> str:
    """The file of one window's rows in one partition (``kind``: components or sites)."""
    return f"{kind[:-1]}-{ident}_{stamp(start)}_{stamp(end)}{suffix}"


def _instant(text: str) -> int:
    return int(datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp())


def parse_piece(name: str) -> tuple[str, int, int, int] | None:
    """(kind, id, window start, window end) of a piece file's name, or None."""
    match = _PIECE.match(name)
    if match is None:
        return None
    kind, ident, start, end, _ = match.groups()
    return f"{kind}s", int(ident), _instant(start), _instant(end)


def is_part(name: str) -> bool:
    """Whether ``name`` is a compacted file of ours."""
    return bool(_PART.match(name))


class Ranges:
    """Finished windows of one entity: sorted, disjoint, merged ``[start, end)`` spans."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, spans: Iterable[tuple[int, int]] = ()) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for lo, hi in sorted(spans):
            self.add(lo, hi)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(zip(self._starts, self._ends, strict=True))

    def __len__(self) -> int:
        return len(self._starts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ranges) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Ranges({list(self)!r})"

    def covers(self, lo: int, hi: int) -> bool:
        """Whether every second of ``[lo, hi)`` is inside one span."""
        index = bisect.bisect_right(self._starts, lo) - 1
        return index >= 0 and self._ends[index] >= hi

    def add(self, lo: int, hi: int) -> None:
        """Add ``[lo, hi)``, merging it with the spans it touches or overlaps."""
        if hi <= lo:
            return
        first = bisect.bisect_left(self._ends, lo)  # the first span ending at or after lo
        last = bisect.bisect_right(self._starts, hi)  # past the last span starting <= hi
        if first < last:
            lo = min(lo, self._starts[first])
            hi = max(hi, self._ends[last - 1])
        self._starts[first:last] = [lo]
        self._ends[first:last] = [hi]

    def remove(self, lo: int, hi: int) -> None:
        """Take ``[lo, hi)`` out (a window that is no longer finished)."""
        kept = []
        for start, end in self:
            if end <= lo or start >= hi:
                kept.append((start, end))
                continue
            if start < lo:
                kept.append((start, lo))
            if end > hi:
                kept.append((hi, end))
        self._starts = [s for s, _ in kept]
        self._ends = [e for _, e in kept]

    def to_json(self) -> list[list[int]]:
        return [[lo, hi] for lo, hi in self]
