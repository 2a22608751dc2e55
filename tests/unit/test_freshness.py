"""Keeping a dataset current, the pure part: durations, relative moments, the stable grid,
the rows kept and when a window is final."""

from __future__ import annotations

import itertools
from array import array
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from locus_async.errors import UsageError
from locus_async.locus._core.freshness import (
    dataset_windows,
    is_final,
    keep_valued,
    parse_duration,
    relative_moment,
    requested,
)
from locus_async.locus._core.series import Columns
from locus_async.locus._core.windows import DEFAULT_LIMITS, Window
from locus_async.locus.models import Granularity

UTC_ZONE = ZoneInfo("UTC")
LA = ZoneInfo("America/Los_Angeles")


def _ts(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp())  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("5m", 300), ("6h", 21_600), ("7d", 604_800), ("2w", 1_209_600), ("0", 0),
     ("1.5h", 5400), (timedelta(minutes=2), 120), (90, 90), (2.6, 3)],
)  # fmt: skip
def test_durations(text: object, seconds: int) -> None:
    """Every unit reads as whole seconds; a timedelta passes through."""
    assert parse_duration(text, "lookback") == seconds


@pytest.mark.parametrize("text", ["5", "5 minutes", "-1d", "d", "", "1y"])
def test_bad_durations_say_what_is_expected(text: str) -> None:
    """A duration that is not one is a one-line UsageError naming the option and examples."""
    with pytest.raises(UsageError, match=r"lookback .* is not a duration such as 90s, 5m"):
        parse_duration(text, "lookback")


def test_a_number_of_seconds_must_be_finite_and_not_negative() -> None:
    """Seconds given as numbers are checked like the strings: no inf, nothing negative."""
    with pytest.raises(UsageError, match="max_lag must be a finite number of seconds"):
        parse_duration(float("inf"), "max_lag")
    with pytest.raises(UsageError, match="max_lag must not be negative"):
        parse_duration(-5, "max_lag")


def test_relative_moments() -> None:
    """``now`` and ``-30d`` read against the given moment; absolute times are not ours."""
    now = 1_733_000_000.5
    assert relative_moment("now", now, "end") == 1_733_000_000
    assert relative_moment(" NOW ", now, "end") == 1_733_000_000
    assert relative_moment("-30d", now, "start") == 1_733_000_000 - 30 * 86_400
    assert relative_moment("-90m", now, "start") == 1_733_000_000 - 5400
    assert relative_moment("2024-01-01T00:00:00", now, "start") is None
    assert relative_moment(None, now, "start") is None


def test_the_grid_never_moves_as_now_advances() -> None:
    """Open range: every window of an earlier run is still a window later (the last keeps
    its start and grows whole), and the window holding now is whole, ending after now."""
    start = _ts(2024, 1, 1)
    limit = DEFAULT_LIMITS[Granularity.MIN5]
    seen: list[Window] = []
    for day in range(0, 200, 7):
        now = start + day * 86_400 + 3600.5
        windows = dataset_windows([start], None, now=now, tz=LA, gran=Granularity.MIN5, limit=limit)
        assert windows[0].start <= start + 8 * 3600
        assert windows[-1].start <= now < windows[-1].end
        assert all(a.end == b.start for a, b in itertools.pairwise(windows))
        assert {w.start for w in seen} <= {w.start for w in windows}
        assert set(seen[:-1]) <= set(windows)
        seen = windows
    assert all(w.duration < limit.total_seconds() for w in seen)


def test_a_closed_range_then_opened_keeps_every_start() -> None:
    """A fixed end plans the exact range; opening it later changes only the last window,
    whose start stays."""
    start, end = _ts(2024, 1, 1), _ts(2024, 3, 1)
    limit = DEFAULT_LIMITS[Granularity.HOURLY]
    closed = dataset_windows([start], end, now=0, tz=UTC_ZONE, gran=Granularity.HOURLY, limit=limit)
    assert (closed[0].start, closed[-1].end) == (start, end)
    opened = dataset_windows(
        [start], None, now=_ts(2024, 6, 1), tz=UTC_ZONE, gran=Granularity.HOURLY, limit=limit
    )
    assert closed[:-1] == opened[: len(closed) - 1]
    assert opened[len(closed) - 1].start == closed[-1].start
    assert opened[len(closed) - 1].end > closed[-1].end


def test_an_earlier_start_adds_a_segment_ending_at_the_old_start() -> None:
    """Moving the start earlier plans windows up to the old start; the old ones stay."""
    old, new, end = _ts(2024, 3, 1), _ts(2024, 1, 15), _ts(2024, 5, 1)
    limit = DEFAULT_LIMITS[Granularity.HOURLY]
    before = dataset_windows([old], end, now=0, tz=UTC_ZONE, gran=Granularity.HOURLY, limit=limit)
    after = dataset_windows(
        [new, old], end, now=0, tz=UTC_ZONE, gran=Granularity.HOURLY, limit=limit
    )
    assert after[-len(before) :] == before
    assert after[0].start == new
    assert after[len(after) - len(before) - 1].end == old


def test_unlimited_granularities_are_one_window_growing_from_its_start() -> None:
    """Monthly: one window from the start to the end of the month holding now."""
    start = _ts(2024, 1, 1)
    windows = dataset_windows(
        [start], None, now=_ts(2024, 6, 10), tz=UTC_ZONE, gran=Granularity.MONTHLY, limit=None
    )
    assert windows == [Window(start, _ts(2024, 7, 1), UTC_ZONE)]


def test_keep_valued_drops_rows_without_any_value_and_fills_missing_fields() -> None:
    """Rows with no value go (counted); a field the entity lacks is a column of nulls."""
    columns = Columns(
        ("W_avg",),
        array("q", [1, 1, 1]),
        array("q", [10, 20, 30]),
        {"W_avg": [1.5, None, 0.0]},
    )
    kept, empty = keep_valued(columns, ("W_avg", "Wh_sum"))
    assert empty == 1
    assert list(kept.ts) == [10, 30]
    assert kept.values == {"W_avg": [1.5, 0.0], "Wh_sum": [None, None]}
    assert kept.fields == ("W_avg", "Wh_sum")


def test_final_when_old_enough_or_the_entity_has_data_after_it() -> None:
    """A window is final after max_lag, or once it ended and data after it exists."""
    window = Window(1000, 2000, UTC_ZONE)
    assert not is_final(window, None, now=1500, max_lag=10_000)
    assert not is_final(window, 5000, now=1500, max_lag=10_000)  # has not ended yet
    assert not is_final(window, 1900, now=3000, max_lag=10_000)  # data stops inside it
    assert is_final(window, 2000, now=3000, max_lag=10_000)
    assert is_final(window, None, now=12_000, max_lag=10_000)


def test_the_request_stops_at_the_bucket_holding_now() -> None:
    """A window reaching into the future is asked for up to the end of the bucket holding
    now, on an unambiguous local time; a window in the past is asked for whole."""
    window = Window(_ts(2024, 10, 20), _ts(2024, 11, 19), LA)
    now = _ts(2024, 11, 3, 8, 20) + 0.5  # 01:20 PDT, in the first of the two 01:00 hours
    asked = requested(window, now, Granularity.HOURLY)
    assert (asked.start, asked.tz) == (window.start, LA)
    assert asked.end == _ts(2024, 11, 3, 10)  # 02:00 PST (01:00-02:00 local is ambiguous)
    assert requested(window, _ts(2024, 12, 1), Granularity.HOURLY) == window
    assert requested(window, _ts(2024, 10, 25, 12, 0), Granularity.HOURLY).end == _ts(
        2024, 10, 25, 13
    )
