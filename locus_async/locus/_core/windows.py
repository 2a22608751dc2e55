"""Time windows for data requests: local times, bucket boundaries, the fewest windows.

Owns: the per-granularity limits, reading user times (naive = wall time in ``tz``),
granularity boundaries in a time zone, and ``plan_windows``. Must never: do I/O or read
the clock.

The rules, in one place:

* A bucket of a sub-daily granularity starts at every *instant* whose local wall time is a
  multiple of the step (``:00, :05, ...`` for 5min; ``:00`` for hourly). Across a fall-back
  the repeated local hour yields two buckets with different offsets; in a zone with a 30-min
  offset or DST shift (Asia/Kolkata, Australia/Lord_Howe) hourly buckets sit at UTC ``:30``
  and the one bucket at a 30-minute shift lasts 90 minutes. Daily, monthly and yearly
  buckets start at the first instant of the local day, month or year.
* The server answers ``start <= ts < end`` for leading timestamps ``ts``, with ``start`` and
  ``end`` given as local ``YYYY-MM-DDThh:mm:ss`` in ``tz``. A local time that is ambiguous
  (inside a fall-back) cannot say which instant it means, and one in a gap does not exist,
  so no window boundary we send is ever either of these.
* Limits are "strictly below" in absolute time: a 31-day local window across a fall-back is
  31 days and 1 hour and is too long.
* The planner is greedy: each window ends at the last allowed boundary strictly less than
  one limit after its start. Greedy is optimal for covering a line with segments whose cut
  points come from a fixed set, so the count is the minimum possible; where every boundary is
  allowed it is ``ceil(span / (limit - step))`` for sub-daily granularities (span in absolute
  time, between the first and the end bucket boundary), and ``ceil(days / 364)`` for daily.

Times inside the planner are integer unix seconds; the server's format has whole seconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import attrs

from locus_async._core.times import from_iso, resolve_tz
from locus_async.errors import InvalidArgumentType, UsageError
from locus_async.locus.models import Granularity

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_DST_SHIFT",
    "STEP_SECONDS",
    "Window",
    "bucket_ceil",
    "bucket_floor",
    "daily_window_days",
    "from_iso",
    "is_ambiguous",
    "later_unambiguous",
    "local_string",
    "minimum_windows",
    "parse_granularity",
    "plan_windows",
    "resolve_tz",
    "to_instant",
    "wall_to_instant",
]

DAY: Final = 86_400

#: The reference's limits (2018 onwards). ``None``: no limit. Latest takes no range at all.
DEFAULT_LIMITS: Final[Mapping[Granularity, timedelta | None]] = {
    Granularity.LATEST: None,
    Granularity.MIN1: timedelta(days=5),
    Granularity.MIN5: timedelta(days=31),
    Granularity.MIN15: timedelta(days=31),
    Granularity.HOURLY: timedelta(days=31),
    Granularity.DAILY: timedelta(days=365),
    Granularity.MONTHLY: None,
    Granularity.YEARLY: None,
}

#: Bucket length of the fixed-step granularities, in seconds.
STEP_SECONDS: Final[Mapping[Granularity, int]] = {
    Granularity.MIN1: 60,
    Granularity.MIN5: 300,
    Granularity.MIN15: 900,
    Granularity.HOURLY: 3600,
}

#: The largest change of UTC offset a zone makes in one transition (Antarctica/Troll: 2 h).
MAX_DST_SHIFT: Final = 2 * 3600

_MIN_YEAR: Final = 1900
_MAX_YEAR: Final = 2200


# --------------------------------------------------------------------------- inputs


def parse_granularity(gran: object) -> Granularity:
    """A Granularity from itself or its wire string."""
    if isinstance(gran, Granularity):
        return gran
    if not isinstance(gran, str):
        raise InvalidArgumentType(
            f"gran must be a string or Granularity, not {type(gran).__name__}"
        )
    try:
        return Granularity(gran)
    except ValueError:
        valid = ", ".join(g.value for g in Granularity)
        raise UsageError(f"unknown granularity {gran!r}; valid: {valid}") from None


def _epoch(dt: datetime) -> int:
    """Whole unix seconds of an aware datetime, rounded up (a bound never moves earlier)."""
    return math.ceil(dt.timestamp())


def _utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _local(ts: int, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(ts, tz)


def _offset(ts: int, tz: ZoneInfo) -> int:
    off = _local(ts, tz).utcoffset()
    assert off is not None
    return int(off.total_seconds())


def wall_to_instant(wall: datetime, tz: ZoneInfo) -> int:
    """The instant a naive wall time names in ``tz``, in the order of wall clocks.

    An ambiguous wall time (repeated in a fall-back) is its first occurrence; a wall time
    that does not exist (in a spring-forward gap) is the end of the gap, the first instant
    whose wall clock is not earlier than it.
    """
    if wall.microsecond:
        # The wire has whole seconds: a bound moves up to the next whole second.
        wall = wall.replace(microsecond=0) + timedelta(seconds=1)
    first = _epoch(wall.replace(tzinfo=tz, fold=0))
    if _local(first, tz).replace(tzinfo=None) == wall:
        return first
    # In a gap: search between the two readings for the first instant at or after ``wall``.
    lo = _epoch(wall.replace(tzinfo=tz, fold=1))
    hi = first
    lo, hi = min(lo, hi), max(lo, hi)
    while lo < hi:
        mid = (lo + hi) // 2
        if _local(mid, tz).replace(tzinfo=None) >= wall:
            hi = mid
        else:
            lo = mid + 1
    return lo


def to_instant(value: object, tz: ZoneInfo, *, name: str) -> tuple[int, bool]:
    """(unix seconds, was_aware) for a datetime, date or ISO string; naive means local in ``tz``."""
    if isinstance(value, str):
        value = from_iso(value, name, "date or datetime", "2024-01-01T00:00:00")
    if isinstance(value, datetime):
        if not _MIN_YEAR <= value.year <= _MAX_YEAR:
            raise UsageError(f"{name} {value.isoformat()} is outside {_MIN_YEAR}..{_MAX_YEAR}")
        if value.tzinfo is not None and value.utcoffset() is not None:
            return _epoch(value), True
        return wall_to_instant(value.replace(tzinfo=None), tz), False
    if isinstance(value, date):
        if not _MIN_YEAR <= value.year <= _MAX_YEAR:
            raise UsageError(f"{name} {value.isoformat()} is outside {_MIN_YEAR}..{_MAX_YEAR}")
        return wall_to_instant(datetime(value.year, value.month, value.day), tz), False
    raise InvalidArgumentType(
        f"{name} must be a datetime, a date or an ISO-8601 string, not {type(value).__name__}"
    )


def local_string(ts: int, tz: ZoneInfo) -> str:
    """The wire form of an instant: local ``YYYY-MM-DDThh:mm:ss`` in ``tz``, no offset."""
    return _local(ts, tz).strftime("%Y-%m-%dT%H:%M:%S")


def is_ambiguous(ts: int, tz: ZoneInfo) -> bool:
    """True when the local wall time of ``ts`` occurs twice (so its string is ambiguous)."""
    wall = _local(ts, tz).replace(tzinfo=None)
    return (
        wall.replace(tzinfo=tz, fold=0).utcoffset() != wall.replace(tzinfo=tz, fold=1).utcoffset()
    )


# --------------------------------------------------------------------------- boundaries


def _first_with_offset(lo: int, hi: int, offset: int, tz: ZoneInfo) -> int:
    """Smallest t in (lo, hi] whose offset is ``offset`` (one transition lies in between)."""
    while lo + 1 < hi:
        mid = (lo + hi) // 2
        if _offset(mid, tz) == offset:
            hi = mid
        else:
            lo = mid
    return hi


def _floor_step(ts: int, step: int, tz: ZoneInfo) -> int:
    """Largest t <= ts whose local wall time is a multiple of ``step`` seconds."""
    while True:
        off = _offset(ts, tz)
        candidate = ts - (ts + off) % step
        if _offset(candidate, tz) == off:
            return candidate
        # A transition lies in (candidate, ts]: nothing aligned under ``off`` before it.
        ts = _first_with_offset(candidate, ts, off, tz) - 1


def _ceil_step(ts: int, step: int, tz: ZoneInfo) -> int:
    """Smallest t >= ts whose local wall time is a multiple of ``step`` seconds."""
    while True:
        off = _offset(ts, tz)
        candidate = ts + (-(ts + off)) % step
        if _offset(candidate, tz) == off:
            return candidate
        # A transition lies in (ts, candidate]: continue from the first instant after it.
        ts = _first_with_offset(ts, candidate, _offset(candidate, tz), tz)


def _period_start(day: date, gran: Granularity) -> date:
    if gran is Granularity.MONTHLY:
        return day.replace(day=1)
    if gran is Granularity.YEARLY:
        return day.replace(month=1, day=1)
    return day


def _next_period(day: date, gran: Granularity, count: int = 1) -> date:
    if gran is Granularity.DAILY:
        return day + timedelta(days=count)
    if gran is Granularity.MONTHLY:
        months = day.year * 12 + day.month - 1 + count
        return date(months // 12, months % 12 + 1, 1)
    return date(day.year + count, 1, 1)


def _start_of(day: date, tz: ZoneInfo) -> int:
    return wall_to_instant(datetime(day.year, day.month, day.day), tz)


def bucket_floor(ts: int, gran: Granularity, tz: ZoneInfo) -> int:
    """Start of the bucket that contains instant ``ts``."""
    step = STEP_SECONDS.get(gran)
    if step is not None:
        return _floor_step(ts, step, tz)
    return _start_of(_period_start(_local(ts, tz).date(), gran), tz)


def bucket_ceil(ts: int, gran: Granularity, tz: ZoneInfo) -> int:
    """First bucket start at or after instant ``ts``."""
    step = STEP_SECONDS.get(gran)
    if step is not None:
        return _ceil_step(ts, step, tz)
    start = bucket_floor(ts, gran, tz)
    if start == ts:
        return ts
    return _start_of(_next_period(_period_start(_local(ts, tz).date(), gran), gran), tz)


def daily_window_days(limit: timedelta) -> int:
    """Whole local days per daily window: n days plus the largest DST shift stay below limit."""
    return max(0, (int(limit.total_seconds()) - MAX_DST_SHIFT - 1) // DAY)


# --------------------------------------------------------------------------- planning


@attrs.frozen
class Window:
    """One request's range: ``[start, end)`` in unix seconds, sent as local times in ``tz``."""

    start: int
    end: int
    tz: ZoneInfo

    @property
    def start_param(self) -> str:
        return local_string(self.start, self.tz)

    @property
    def end_param(self) -> str:
        return local_string(self.end, self.tz)

    @property
    def duration(self) -> int:
        return self.end - self.start

    @property
    def start_utc(self) -> datetime:
        return _utc(self.start)

    @property
    def end_utc(self) -> datetime:
        return _utc(self.end)


def _earlier_unambiguous(ts: int, gran: Granularity, tz: ZoneInfo) -> int:
    while is_ambiguous(ts, tz):
        ts = bucket_floor(ts - 1, gran, tz)
    return ts


def later_unambiguous(ts: int, gran: Granularity, tz: ZoneInfo) -> int:
    """The first bucket boundary at or after ``ts`` whose local time is unambiguous."""
    while is_ambiguous(ts, tz):
        ts = bucket_ceil(ts + 1, gran, tz)
    return ts


def span_bounds(start: int, end: int, gran: Granularity, tz: ZoneInfo) -> tuple[int, int]:
    """The request's buckets as ``[first bucket start, first bucket start >= end)``."""
    return bucket_ceil(start, gran, tz), bucket_ceil(end, gran, tz)


def plan_windows(
    start: int,
    end: int,
    tz: ZoneInfo,
    gran: Granularity,
    limit: timedelta | None,
) -> list[Window]:
    """The fewest windows that together return exactly the buckets of ``[start, end)``.

    Every window is strictly shorter than ``limit`` in absolute time, starts and ends on
    bucket boundaries that are unambiguous local times, and touches the next one without
    overlap. ``limit=None`` means one window. No bucket in range: no window at all.

    Only when the requested range itself starts or ends on an ambiguous local time (say
    01:30 on a fall-back night) does the first window start earlier or the last end later;
    the caller then drops the rows outside ``[start, end)``.
    """
    if gran is Granularity.LATEST:
        raise UsageError("latest takes no time range; it is a single request without windows")
    first, stop = span_bounds(start, end, gran, tz)
    if first >= stop:
        return []
    first = _earlier_unambiguous(first, gran, tz)
    stop = later_unambiguous(stop, gran, tz)
    if limit is None:
        return [Window(first, stop, tz)]
    limit_s = int(limit.total_seconds())
    day_cap = daily_window_days(limit) if gran is Granularity.DAILY else 0
    if gran is Granularity.DAILY and day_cap < 1:
        raise UsageError(f"a daily limit of {limit} cannot fit one local day plus a DST shift")
    windows: list[Window] = []
    cursor = first
    while stop - cursor >= limit_s:
        cut = bucket_floor(cursor + limit_s - 1, gran, tz)
        if day_cap:
            cap = _start_of(_local(cursor, tz).date() + timedelta(days=day_cap), tz)
            cut = min(cut, cap)
        while cut > cursor and is_ambiguous(cut, tz):
            cut = bucket_floor(cut - 1, gran, tz)
        if cut <= cursor:
            raise UsageError(
                f"the {gran.value} limit of {limit} is shorter than one bucket; raise the limit"
            )
        windows.append(Window(cursor, cut, tz))
        cursor = cut
    windows.append(Window(cursor, stop, tz))
    return windows


def minimum_windows(
    start: int, end: int, tz: ZoneInfo, gran: Granularity, limit: timedelta | None
) -> int:
    """The issue's formula for the fewest requests, given a range and limit.

    Sub-daily: ``ceil(span / (limit - step))``; daily: ``ceil(days / days_per_window)``
    (364 for the one-year limit); otherwise one. Zero when the range holds no bucket.
    """
    first, stop = span_bounds(start, end, gran, tz)
    if first >= stop:
        return 0
    if limit is None or gran is Granularity.LATEST:
        return 1
    step = STEP_SECONDS.get(gran)
    if step is not None:
        return math.ceil((stop - first) / (int(limit.total_seconds()) - step))
    if gran is Granularity.DAILY:
        days = (_local(stop, tz).date() - _local(first, tz).date()).days
        return math.ceil(days / daily_window_days(limit))
    return len(plan_windows(start, end, tz, gran, limit))


def plan_calendar_windows(
    start: int, end: int, tz: ZoneInfo, gran: Granularity, periods: int
) -> list[Window]:
    """Windows of at most ``periods`` whole local months (or years) each: bulk requests."""
    first, stop = span_bounds(start, end, gran, tz)
    windows: list[Window] = []
    cursor = first
    while cursor < stop:
        day = _local(cursor, tz).date()
        cut = min(stop, _start_of(_next_period(_period_start(day, gran), gran, periods), tz))
        windows.append(Window(cursor, cut, tz))
        cursor = cut
    return windows


def plan_spans(start: int, end: int, tz: ZoneInfo, max_length: timedelta) -> list[Window]:
    """Cut ``[start, end)`` at local midnights into pieces of at most ``max_length``.

    For alert ``openDuring`` windows (inclusive limit): pieces are contiguous, cut points are
    unambiguous local day starts, the first and last piece keep the caller's exact bounds.
    """
    limit_s = int(max_length.total_seconds())
    windows: list[Window] = []
    cursor = start
    while end - cursor > limit_s:
        cut = bucket_floor(cursor + limit_s, Granularity.DAILY, tz)
        while cut > cursor and is_ambiguous(cut, tz):
            cut = bucket_floor(cut - 1, Granularity.DAILY, tz)
        if cut <= cursor:
            cut = cursor + limit_s  # a day-start never came; cut mid-day (rare zones)
        windows.append(Window(cursor, cut, tz))
        cursor = cut
    windows.append(Window(cursor, end, tz))
    return windows
