"""The simulator's own reading of local times and buckets (independent of the client's).

Owns: parsing ``YYYY-MM-DDThh:mm:ss`` in a zone the way a Java server does (an ambiguous time
is its earlier reading, a time in a gap moves later by the gap), formatting timestamps with
their offset, and listing bucket starts. Must never: import the client's planner; the point
is that both are written separately, so a shared mistake cannot hide.

Buckets: a sub-daily bucket starts at every whole minute whose local wall clock is a multiple
of the step; daily, monthly and yearly buckets start at the first instant of the local day,
month or year. A bucket lasts until the next one starts.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

__all__ = ["LOCAL_FORMAT", "bucket_starts", "format_many", "format_ts", "parse_local"]

LOCAL_FORMAT: Final = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\Z")

STEP_MINUTES: Final = {"1min": 1, "5min": 5, "15min": 15, "hourly": 60}


def parse_local(text: str, tz: ZoneInfo) -> int:
    """Unix seconds of a local ``YYYY-MM-DDThh:mm:ss``; ValueError if malformed."""
    match = LOCAL_FORMAT.match(text)
    if not match:
        raise ValueError(text)
    year, month, day, hour, minute, second = (int(g) for g in match.groups())
    wall = datetime(year, month, day, hour, minute, second)  # ValueError on 2024-02-30
    return int(wall.replace(tzinfo=tz, fold=0).timestamp())


def format_ts(ts: int, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(ts, tz).isoformat()


def format_many(stamps: list[int], tz: ZoneInfo) -> list[str]:
    """``format_ts`` for an ascending list, by arithmetic within each offset segment."""
    if not stamps:
        return []
    out: list[str] = []
    index, count = 0, len(stamps)
    days: dict[int, str] = {}
    for _, seg_to, offset in offset_segments(stamps[0], stamps[-1] + 1, tz):
        size = abs(offset)
        suffix = f"{'-' if offset < 0 else '+'}{size // 3600:02d}:{size % 3600 // 60:02d}"
        if size % 60:
            suffix += f":{size % 60:02d}"
        while index < count and stamps[index] < seg_to:
            day, second = divmod(stamps[index] + offset, 86_400)
            label = days.get(day)
            if label is None:
                label = days[day] = (_EPOCH_DATE + timedelta(days=day)).isoformat()
            minute, rest = divmod(second, 60)
            clock = f"T{minute // 60:02d}:{minute % 60:02d}:{rest:02d}" if rest else _CLOCK[minute]
            out.append(label + clock + suffix)
            index += 1
    return out


_EPOCH_DATE: Final = date(1970, 1, 1)
_CLOCK: Final = [f"T{h:02d}:{m:02d}:00" for h in range(24) for m in range(60)]


def _offset(ts: int, tz: ZoneInfo) -> int:
    delta = datetime.fromtimestamp(ts, tz).utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


def offset_segments(start: int, end: int, tz: ZoneInfo) -> list[tuple[int, int, int]]:
    """``(from, to, offset)`` pieces of ``[start, end)`` with one UTC offset each."""
    segments: list[tuple[int, int, int]] = []
    seg_start, current = start, _offset(start, tz)
    probe = start
    while probe < end:
        nxt = min(probe + 3600, end)
        after = _offset(nxt, tz)
        if after != current:
            lo, hi = probe, nxt  # offset(lo) == current, offset(hi) == after
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if _offset(mid, tz) == current:
                    lo = mid
                else:
                    hi = mid
            segments.append((seg_start, hi, current))
            seg_start, current = hi, after
        probe = nxt
    segments.append((seg_start, end, current))
    return segments


def _sub_daily(start: int, end: int, tz: ZoneInfo, step: int) -> list[int]:
    out: list[int] = []
    for seg_from, seg_to, offset in offset_segments(start, end, tz):
        minute = -(-seg_from // 60) * 60  # first whole minute in the segment
        behind = ((minute + offset) // 60) % step
        if behind:
            minute += (step - behind) * 60
        out.extend(range(minute, seg_to, step * 60))
    return out


def start_of_day(day: date, tz: ZoneInfo) -> int:
    """First instant whose local date is ``day``."""
    guess = int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())
    local = datetime.fromtimestamp(guess, tz)
    if local.date() == day and (local.hour, local.minute, local.second) == (0, 0, 0):
        previous = datetime.fromtimestamp(guess - 1, tz)
        if previous.date() != day:
            return guess
    # Midnight is missing (a gap) or repeated: walk minute by minute around it.
    probe = guess - 4 * 3600
    while datetime.fromtimestamp(probe, tz).date() < day:
        probe += 60
    while datetime.fromtimestamp(probe - 1, tz).date() == day:
        probe -= 1
    return probe


def _periods(first: date, last: date, gran: str) -> list[date]:
    days: list[date] = []
    if gran == "daily":
        d = first
        while d <= last:
            days.append(d)
            d += timedelta(days=1)
    elif gran == "monthly":
        y, m = first.year, first.month
        while date(y, m, 1) <= last:
            days.append(date(y, m, 1))
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    else:
        days.extend(date(y, 1, 1) for y in range(first.year, last.year + 1))
    return days


def bucket_starts(start: int, end: int, tz: ZoneInfo, gran: str) -> list[int]:
    """Bucket starts ``b`` with ``start <= b < end``, plus the start of the next bucket."""
    step = STEP_MINUTES.get(gran)
    if step is not None:
        starts = _sub_daily(start, end + step * 60 + 4 * 3600, tz, step)
    else:
        first = datetime.fromtimestamp(start, tz).date()
        last = datetime.fromtimestamp(end, tz).date() + timedelta(
            days=400 if gran == "yearly" else 40
        )
        if gran == "monthly":
            first = first.replace(day=1)
        elif gran == "yearly":
            first = first.replace(month=1, day=1)
        starts = [start_of_day(d, tz) for d in _periods(first, last, gran)]
    inside = [b for b in starts if start <= b < end]
    following = next((b for b in starts if b >= end), None)
    if following is not None:
        inside.append(following)
    return inside
