"""Keeping a dataset current, the pure part: durations and relative moments, the stable
window grid of a growing range, which rows to keep and when a window is final.

Owns: ``parse_duration`` (``5m``, ``7d``), ``relative_moment`` (``now``, ``-30d``),
``dataset_windows`` (windows that never move when the range grows), ``keep_valued`` (rows
with at least one value, in the dataset's columns) and ``is_final``. Must never: read a
clock (``now`` is an argument), do I/O.

The grid: a dataset's range is one or more segments. The first run plans windows from its
start (the anchor) greedily, so every window but the last depends only on the anchor; a
range open at the end ("up to now") plans through the bucket that holds ``now`` and keeps
its last window whole (it ends in the future, which the server answers with empty rows).
Moving the start earlier adds a segment that ends exactly at the old start. Growing the end
only ever changes the last window of the anchor segment, and always keeps its start.

A window is final when its data cannot change any more as far as a sync can tell: it ended
at least ``max_lag`` ago, or it has ended and the entity already has data after it
(dataloggers upload in order, so everything before their newest reading is in).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Final
from zoneinfo import ZoneInfo

from locus_async.errors import UsageError
from locus_async.locus._core.series import Columns
from locus_async.locus._core.windows import (
    Window,
    bucket_ceil,
    later_unambiguous,
    plan_windows,
)
from locus_async.locus.models import Granularity

__all__ = [
    "UNITS",
    "dataset_windows",
    "is_final",
    "keep_valued",
    "parse_duration",
    "relative_moment",
    "requested",
]

#: Seconds per duration unit.
UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}

_DURATION: Final = re.compile(r"\A(\d+(?:\.\d+)?)([smhdw])\Z")


def parse_duration(text: object, name: str) -> int:
    """Whole seconds of ``90s``, ``5m``, ``6h``, ``7d``, ``2w`` (or a plain ``0``), of a
    ``timedelta``, or of a number of seconds."""
    if isinstance(text, timedelta):
        seconds = text.total_seconds()
    elif isinstance(text, int | float) and not isinstance(text, bool):
        if not math.isfinite(text):
            raise UsageError(f"{name} must be a finite number of seconds")
        seconds = float(text)
    elif isinstance(text, str):
        value = text.strip().lower()
        if value == "0":
            return 0
        match = _DURATION.match(value)
        if match is None:
            raise UsageError(f"{name} {text!r} is not a duration such as 90s, 5m, 6h, 7d or 2w")
        seconds = float(match.group(1)) * UNITS[match.group(2)]
    else:
        raise UsageError(f"{name} must be a duration such as '7d' or a timedelta")
    if seconds < 0:
        raise UsageError(f"{name} must not be negative")
    return round(seconds)


def relative_moment(value: object, now: float, name: str) -> int | None:
    """Unix seconds for ``now`` or ``-<duration>`` (before now); None for anything else
    (absolute times are read elsewhere)."""
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    if text == "now":
        return int(now)
    if text.startswith("-") and text[1:2].isdigit():
        return int(now) - parse_duration(text[1:], name)
    return None


def dataset_windows(
    starts: Sequence[int],
    end: int | None,
    *,
    now: float,
    tz: ZoneInfo,
    gran: Granularity,
    limit: timedelta | None,
) -> list[Window]:
    """Every window of a dataset whose segments start at ``starts`` (ascending; the last is
    the anchor) and which ends at ``end`` (None: open, up to ``now``)."""
    if not starts:
        return []
    windows: list[Window] = []
    for begin, stop in itertools.pairwise(starts):
        windows.extend(plan_windows(begin, stop, tz, gran, limit))
    anchor = starts[-1]
    if end is not None:
        windows.extend(plan_windows(anchor, end, tz, gran, limit) if anchor < end else [])
        return windows
    horizon = bucket_ceil(int(now) + 1, gran, tz)  # the end of the bucket holding now
    if horizon <= anchor:
        return windows
    if limit is None:
        windows.extend(plan_windows(anchor, horizon, tz, gran, None))
        return windows
    reach = horizon + int(limit.total_seconds())  # so the window holding now stays whole
    windows.extend(w for w in plan_windows(anchor, reach, tz, gran, limit) if w.start < horizon)
    return windows


def requested(window: Window, now: float, gran: Granularity) -> Window:
    """The range to ask for: ``window`` up to the end of the bucket holding ``now`` (never
    the future, which a strict server may refuse), on an unambiguous local boundary; the
    window itself (and its file) keeps its full grid span."""
    stop = bucket_ceil(int(now) + 1, gran, window.tz)
    stop = later_unambiguous(stop, gran, window.tz)
    if stop >= window.end:
        return window
    return Window(window.start, max(stop, window.start), window.tz)


def keep_valued(columns: Columns, fields: Sequence[str]) -> tuple[Columns, int]:
    """The rows with at least one value, with exactly ``fields`` as columns (a field the
    entity lacks is all nulls); and how many rows had no value."""
    present = [columns.values.get(name) for name in fields]
    keep = [
        index
        for index in range(len(columns))
        if any(column is not None and column[index] is not None for column in present)
    ]
    kept = columns.select(keep)
    out = Columns(tuple(fields), kept.ids, kept.ts)
    for name in fields:
        values = kept.values.get(name)
        out.values[name] = list(values) if values is not None else [None] * len(kept)
    return out, len(columns) - len(keep)


def is_final(window: Window, frontier: int | None, now: float, max_lag: int) -> bool:
    """Whether a fetched window's data can no longer grow (see the module docs).
    ``frontier``: the entity's newest timestamp with a value, if any."""
    if window.end <= now - max_lag:
        return True
    return window.end <= now and frontier is not None and frontier >= window.end
