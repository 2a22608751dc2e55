"""The window planner, checked against the simulator's independently written calendar.

Properties over random spans, granularities and DST-heavy zones: every window is strictly
shorter than its limit in absolute time, windows touch without overlap, cut points are
bucket starts whose local time is unambiguous, the union returns exactly the requested
buckets, and the count is the minimum (and equals the issue's formula wherever no cut has
to dodge an ambiguous local time).
"""

from __future__ import annotations

import itertools
import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from locus_async.errors import UsageError
from locus_async.locus._core.windows import (
    DEFAULT_LIMITS,
    STEP_SECONDS,
    is_ambiguous,
    local_string,
    minimum_windows,
    plan_calendar_windows,
    plan_windows,
    to_instant,
    wall_to_instant,
)
from locus_async.locus.models import Granularity as Gran
from locus_async.simulator._calendar import bucket_starts, parse_local

ZONES = [
    "America/Los_Angeles",
    "Europe/Berlin",
    "Australia/Sydney",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "Asia/Kolkata",  # +05:30
    "Asia/Kathmandu",  # +05:45
    "America/St_Johns",  # -03:30 with DST
    "Pacific/Chatham",  # +12:45 / +13:45
    "America/Santiago",  # DST changes at midnight
    "UTC",
]
REGULAR = {"America/Los_Angeles", "Europe/Berlin", "Australia/Sydney", "UTC"}
SUB_DAILY = [Gran.MIN1, Gran.MIN5, Gran.MIN15, Gran.HOURLY]


def oracle_buckets(start: int, end: int, tz: ZoneInfo, gran: Gran) -> list[int]:
    """Bucket starts in ``[start, end)`` from the simulator's calendar."""
    return [b for b in bucket_starts(start, end, tz, gran.value) if start <= b < end]


def unambiguous(ts: int, tz: ZoneInfo) -> bool:
    """Round-trips through its local string under both folds (an oracle of its own)."""
    wall = datetime.fromtimestamp(ts, tz).replace(tzinfo=None)
    return all(int(wall.replace(tzinfo=tz, fold=f).timestamp()) == ts for f in (0, 1))


def optimum(first: int, stop: int, tz: ZoneInfo, gran: Gran, limit: timedelta) -> int:
    """Fewest windows: greedy over the oracle's allowed cut points (greedy is optimal)."""
    limit_s = int(limit.total_seconds())
    cuts = [b for b in oracle_buckets(first + 1, stop, tz, gran) if unambiguous(b, tz)]
    if gran is Gran.DAILY:
        # Daily windows hold at most 364 local days (one year minus DST slack).
        pass
    count, cursor = 1, first
    while stop - cursor >= limit_s:
        reachable = [c for c in cuts if cursor < c < cursor + limit_s]
        if gran is Gran.DAILY:
            cap = datetime.fromtimestamp(cursor, tz).date() + timedelta(days=364)
            reachable = [c for c in reachable if datetime.fromtimestamp(c, tz).date() <= cap]
        cursor = max(reachable)
        count += 1
    return count


@st.composite
def requests(draw: st.DrawFn, grans: list[Gran]) -> tuple[ZoneInfo, Gran, int, int]:
    tz = ZoneInfo(draw(st.sampled_from(ZONES)))
    gran = draw(st.sampled_from(grans))
    limit = DEFAULT_LIMITS[gran]
    base = datetime(2019, 1, 1) + timedelta(minutes=draw(st.integers(0, 7 * 365 * 1440)))
    if draw(st.booleans()):
        base = base.replace(minute=0)
    if draw(st.integers(0, 9)) == 0:
        base = base.replace(second=draw(st.integers(1, 59)))
    top = int(limit.total_seconds() * 3.2) if limit else 20 * 365 * 86400
    length = draw(st.integers(60, top))
    start = wall_to_instant(base, tz)
    return tz, gran, start, start + length


def check_plan(tz: ZoneInfo, gran: Gran, start: int, end: int) -> None:
    limit = DEFAULT_LIMITS[gran]
    windows = plan_windows(start, end, tz, gran, limit)
    wanted = oracle_buckets(start, end, tz, gran)
    if not wanted:
        assert windows == []
        return
    # Contiguous, each strictly below the limit in absolute time.
    for a, b in itertools.pairwise(windows):
        assert a.end == b.start
    for w in windows:
        assert w.start < w.end
        if limit is not None:
            assert w.end - w.start < limit.total_seconds()
    # Every boundary we send is a bucket start (or the caller's exact end) and unambiguous.
    for w in windows:
        assert unambiguous(w.start, tz), local_string(w.start, tz)
        assert unambiguous(w.end, tz), local_string(w.end, tz)
        assert parse_local(w.start_param, tz) == w.start
        assert parse_local(w.end_param, tz) == w.end
    for w in windows[1:]:
        assert w.start in set(bucket_starts(w.start, w.start + 1, tz, gran.value))
    # Together they return exactly the requested buckets (the caller drops rows outside).
    got = [b for w in windows for b in oracle_buckets(w.start, w.end, tz, gran) if start <= b < end]
    assert got == wanted
    # Fewest possible, and the formula where no cut has to dodge an ambiguity.
    first = wanted[0]
    stop = next(b for b in bucket_starts(end, end + 1, tz, gran.value) if b >= end)
    if limit is None:
        assert len(windows) == 1
        return
    if windows[0].start == first and windows[-1].end == stop:
        assert len(windows) == optimum(first, stop, tz, gran, limit)
    step = STEP_SECONDS.get(gran)
    if step is not None:
        formula = math.ceil((stop - first) / (limit.total_seconds() - step))
    else:
        days = (
            datetime.fromtimestamp(stop, tz).date() - datetime.fromtimestamp(first, tz).date()
        ).days
        formula = math.ceil(days / 364)
    assert minimum_windows(start, end, tz, gran, limit) == formula
    any_ambiguous = any(not unambiguous(b, tz) for b in oracle_buckets(first, stop, tz, gran))
    if tz.key in REGULAR and not any_ambiguous:
        assert len(windows) == formula
    assert len(windows) <= formula + (1 if any_ambiguous else 0) + (0 if tz.key in REGULAR else 1)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests(SUB_DAILY))
def test_sub_daily_plans(case: tuple[ZoneInfo, Gran, int, int]) -> None:
    """Sub-daily windows: within limits, exact union, minimal count."""
    check_plan(*case)


def fall_backs(tz: ZoneInfo, year: int) -> list[int]:
    """Instants where the zone's offset decreases (the clock is set back) in ``year``."""
    t = int(datetime(year, 1, 1, tzinfo=tz).timestamp())
    stop = int(datetime(year + 1, 1, 1, tzinfo=tz).timestamp())
    found, previous = [], datetime.fromtimestamp(t, tz).utcoffset()
    while t < stop:
        current = datetime.fromtimestamp(t, tz).utcoffset()
        assert current is not None
        assert previous is not None
        if current < previous:
            found.append(t)
        previous, t = current, t + 1800
    return found


@st.composite
def cuts_at_fall_backs(draw: st.DrawFn) -> tuple[ZoneInfo, Gran, int, int]:
    """Requests whose natural first cut lands in or near a repeated (ambiguous) hour."""
    tz = ZoneInfo(
        draw(
            st.sampled_from(
                [
                    "America/Los_Angeles",
                    "Europe/Berlin",
                    "Australia/Sydney",
                    "Australia/Lord_Howe",
                    "Pacific/Chatham",
                ]
            )
        )
    )
    gran = draw(st.sampled_from(SUB_DAILY))
    limit = DEFAULT_LIMITS[gran]
    assert limit is not None
    transition = draw(st.sampled_from(fall_backs(tz, draw(st.integers(2019, 2025)))))
    shift = draw(st.integers(-3 * 3600, 3 * 3600)) // 60 * 60
    start = transition - int(limit.total_seconds()) + shift
    start = bucket_starts(start, start + 1, tz, gran.value)[-1]
    length = draw(st.integers(int(limit.total_seconds()), int(limit.total_seconds() * 2.5)))
    return tz, gran, start, start + length


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts_at_fall_backs())
def test_cuts_dodge_ambiguous_local_times(case: tuple[ZoneInfo, Gran, int, int]) -> None:
    """Cuts aimed at fall-back nights step back to an unambiguous bucket start."""
    check_plan(*case)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests([Gran.DAILY, Gran.MONTHLY, Gran.YEARLY]))
def test_calendar_plans(case: tuple[ZoneInfo, Gran, int, int]) -> None:
    """Daily windows of at most 364 local days; monthly and yearly in one request."""
    check_plan(*case)


def _instant(text: str, tz: ZoneInfo) -> int:
    return to_instant(text, tz, name="t")[0]


def test_fall_back_window_of_31_local_days_is_too_long() -> None:
    """31 local days across a fall-back is 31 days and 1 hour: never one 5min window."""
    tz = ZoneInfo("America/Los_Angeles")
    start, end = _instant("2024-10-15T00:00:00", tz), _instant("2024-11-15T00:00:00", tz)
    assert end - start == 31 * 86400 + 3600
    windows = plan_windows(start, end, tz, Gran.MIN5, DEFAULT_LIMITS[Gran.MIN5])
    assert len(windows) == 2
    assert [w.start_param for w in windows] == ["2024-10-15T00:00:00", "2024-11-14T22:55:00"]


def test_one_year_of_1min_needs_20_percent_fewer_requests_than_4_day_windows() -> None:
    """74 windows of 5 days minus a minute, against 92 fixed 4-day windows."""
    tz = ZoneInfo("America/Los_Angeles")
    start, end = _instant("2024-01-01T00:00:00", tz), _instant("2025-01-01T00:00:00", tz)
    planned = len(plan_windows(start, end, tz, Gran.MIN1, DEFAULT_LIMITS[Gran.MIN1]))
    fixed = math.ceil((end - start) / (4 * 86400))
    assert (planned, fixed) == (74, 92)
    assert planned <= 0.81 * fixed


def test_ten_years_of_daily_data() -> None:
    """ceil(days / 364) windows for daily data."""
    tz = ZoneInfo("Australia/Sydney")
    start, end = _instant("2015-01-01", tz), _instant("2025-01-01", tz)
    windows = plan_windows(start, end, tz, Gran.DAILY, DEFAULT_LIMITS[Gran.DAILY])
    assert len(windows) == math.ceil(3653 / 364) == 11
    assert windows[1].start_param == "2015-12-31T00:00:00"


def test_lord_howe_hourly_boundaries_skip_the_missing_and_repeated_half_hours() -> None:
    """Hourly buckets across Lord Howe's 30-minute shifts: 90-minute buckets, no ambiguity."""
    tz = ZoneInfo("Australia/Lord_Howe")
    start, end = _instant("2024-04-06T22:00:00", tz), _instant("2024-04-07T04:00:00", tz)
    stamps = oracle_buckets(start, end, tz, Gran.HOURLY)
    assert [datetime.fromtimestamp(b, tz).strftime("%H:%M%z") for b in stamps] == [
        "22:00+1100",
        "23:00+1100",
        "00:00+1100",
        "01:00+1100",
        "02:00+1030",
        "03:00+1030",
    ]
    assert not any(is_ambiguous(b, tz) for b in stamps)


def test_requested_range_on_an_ambiguous_time_is_widened_then_trimmed() -> None:
    """A start at 01:30 on a fall-back night cannot be sent as is; the window starts earlier."""
    tz = ZoneInfo("America/Los_Angeles")
    start = _instant("2024-11-03T01:30:00", tz)  # the first 01:30 (PDT)
    windows = plan_windows(start, start + 7200, tz, Gran.MIN5, DEFAULT_LIMITS[Gran.MIN5])
    assert windows[0].start < start
    assert not is_ambiguous(windows[0].start, tz)
    assert windows[0].start_param == "2024-11-03T00:55:00"


def test_naive_times_in_a_gap_mean_the_end_of_the_gap() -> None:
    """02:30 on a spring-forward night does not exist: it means 03:00 PDT."""
    tz = ZoneInfo("America/Los_Angeles")
    ts = wall_to_instant(datetime(2024, 3, 10, 2, 30), tz)
    assert datetime.fromtimestamp(ts, tz).isoformat() == "2024-03-10T03:00:00-07:00"


def test_bulk_is_split_into_calendar_years() -> None:
    """29 months of bulk data are three requests of at most twelve months."""
    tz = ZoneInfo("UTC")
    windows = plan_calendar_windows(
        _instant("2022-01-01", tz), _instant("2024-06-01", tz), tz, Gran.MONTHLY, 12
    )
    assert [(w.start_param[:7], w.end_param[:7]) for w in windows] == [
        ("2022-01", "2023-01"),
        ("2023-01", "2024-01"),
        ("2024-01", "2024-06"),
    ]


def test_latest_has_no_windows() -> None:
    """Latest is a single request without a range."""
    with pytest.raises(UsageError, match="latest"):
        plan_windows(0, 60, ZoneInfo("UTC"), Gran.LATEST, None)


def test_limit_shorter_than_a_bucket_is_refused() -> None:
    """A custom limit that cannot hold one bucket is a clear usage error."""
    tz = ZoneInfo("UTC")
    with pytest.raises(UsageError, match="shorter than one bucket"):
        plan_windows(0, 86400, tz, Gran.HOURLY, timedelta(minutes=30))


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Australia/Lord_Howe", "Asia/Kathmandu"])
def test_simulator_calendar_matches_a_minute_walk(zone: str) -> None:
    """The oracle itself: segment arithmetic equals walking every minute with zoneinfo."""
    tz = ZoneInfo(zone)
    for month in ("2024-03-28", "2024-04-05", "2024-10-04", "2024-11-01"):
        start = _instant(month, tz)
        end = start + 4 * 86400
        for gran, step in (("15min", 15), ("hourly", 60)):
            walk = []
            for t in range(start, end, 60):
                local = datetime.fromtimestamp(t, tz)
                if (local.hour * 60 + local.minute) % step == 0:
                    walk.append(t)
            assert [b for b in bucket_starts(start, end, tz, gran) if b < end] == walk
