"""Chunked data equals the simulator's ground truth, with no 400s and the fewest requests."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import pytest

from locus_async import DEFAULT_LIMITS, Granularity, LocusClient, TimeSeries, UsageError
from locus_async.locus._core.windows import minimum_windows, to_instant
from locus_async.simulator import Faults, Simulator

pytestmark = pytest.mark.anyio


def _formula(start: Any, end: Any, tz: str, gran: str) -> int:
    zone = ZoneInfo(tz)
    g = Granularity(gran)
    return minimum_windows(
        to_instant(start, zone, name="s")[0],
        to_instant(end, zone, name="e")[0],
        zone,
        g,
        DEFAULT_LIMITS[g],
    )


async def _check(
    sim: Simulator,
    client: LocusClient,
    kind: str,
    ident: int,
    *,
    fields: list[str],
    start: datetime,
    end: datetime,
    tz: str,
    gran: str,
) -> TimeSeries:
    api = client.components if kind == "components" else client.sites
    before = len(sim.stats.data_windows)
    series = await api.data(ident, fields=fields, start=start, end=end, tz=tz, gran=gran)
    truth = sim.ground_truth(kind, ident, fields=fields, start=start, end=end, tz=tz, gran=gran)
    assert len(series) == len(truth)
    assert list(series) == truth
    requests = len(sim.stats.data_windows) - before
    assert requests == series.requests
    assert requests <= _formula(start, end, tz, gran)
    assert sim.stats.by_status[400] == 0
    assert sim.stats.by_status[429] == 0
    return series


@pytest.mark.parametrize("tz", ["America/Los_Angeles", "Europe/Berlin", "Australia/Sydney"])
async def test_a_leap_year_of_5min_equals_ground_truth(
    sim: Simulator, client: LocusClient, tz: str
) -> None:
    """2024 (366 days, two DST changes) of 5min data: 12 requests, every row exact."""
    series = await _check(
        sim,
        client,
        "components",
        54369,
        fields=["W_avg", "Wh_sum"],
        start=datetime(2024, 1, 1),
        end=datetime(2025, 1, 1),
        tz=tz,
        gran="5min",
    )
    assert series.requests == 12
    assert len(series) == 366 * 288
    stamps = series.columns.ts
    assert all(b - a == 300 for a, b in itertools.pairwise(stamps))


async def test_1min_across_a_fall_back(sim: Simulator, client: LocusClient) -> None:
    """7 local days of 1min across the 2024 fall-back: 7 days + 1 hour, two requests."""
    series = await _check(
        sim,
        client,
        "components",
        54370,
        fields=["W_avg", "Wh_sum", "A_max"],
        start=datetime(2024, 10, 31),
        end=datetime(2024, 11, 7),
        tz="America/Los_Angeles",
        gran="1min",
    )
    assert series.requests == 2
    assert len(series) == 7 * 1440 + 60
    repeated = [
        r["ts"] for r in series if r["ts"].hour == 1 and r["ts"].minute == 30 and r["ts"].day == 3
    ]
    assert [t.utcoffset() for t in repeated] == [timedelta(hours=-7), timedelta(hours=-8)]


async def test_hourly_in_the_southern_hemisphere(sim: Simulator, client: LocusClient) -> None:
    """Hourly in Sydney over its April fall-back and October spring-forward."""
    await _check(
        sim,
        client,
        "components",
        54410,
        fields=["Wh_sum", "W_max"],
        start=datetime(2024, 3, 1),
        end=datetime(2024, 11, 1),
        tz="Australia/Sydney",
        gran="hourly",
    )


async def test_15min_in_a_half_hour_offset_zone(sim: Simulator, client: LocusClient) -> None:
    """15min in Asia/Kolkata (+05:30)."""
    series = await _check(
        sim,
        client,
        "components",
        54420,
        fields=["W_avg", "Wh_sum"],
        start=datetime(2024, 1, 1),
        end=datetime(2024, 3, 15),
        tz="Asia/Kolkata",
        gran="15min",
    )
    assert series.timestamps[0].isoformat() == "2024-01-01T00:00:00+05:30"


@pytest.mark.parametrize(
    ("tz", "gran", "ident"),
    [
        ("Australia/Lord_Howe", "hourly", 54440),
        ("Asia/Kathmandu", "15min", 54430),
        ("Asia/Kathmandu", "hourly", 54430),
    ],
)
async def test_odd_offsets_and_half_hour_dst(
    sim: Simulator, client: LocusClient, tz: str, gran: str, ident: int
) -> None:
    """Lord Howe's 30-minute DST shifts and Kathmandu's 45-minute offset."""
    await _check(
        sim,
        client,
        "components",
        ident,
        fields=["Wh_sum"],
        start=datetime(2024, 3, 20),
        end=datetime(2024, 10, 20),
        tz=tz,
        gran=gran,
    )


async def test_ten_years_of_daily(sim: Simulator, client: LocusClient) -> None:
    """2015-2025 daily: 11 requests of 364 local days; years before commissioning have no values."""
    series = await _check(
        sim,
        client,
        "components",
        54369,
        fields=["Wh_sum", "W_max"],
        start=datetime(2015, 1, 1),
        end=datetime(2025, 1, 1),
        tz="America/New_York",
        gran="daily",
    )
    assert series.requests == 11
    assert series.column("Wh_sum")[0] is None
    assert series.column("Wh_sum")[-1] is not None


@pytest.mark.parametrize("gran", ["monthly", "yearly"])
async def test_lifetime_series_in_one_request(
    sim: Simulator, client: LocusClient, gran: str
) -> None:
    """Monthly and yearly: one request from 2000 to 2030, whatever the span."""
    series = await _check(
        sim,
        client,
        "components",
        54369,
        fields=["Wh_sum"],
        start=datetime(2000, 1, 1),
        end=datetime(2025, 1, 1),
        tz="UTC",
        gran=gran,
    )
    assert series.requests == 1


async def test_site_data_across_spring_forward(sim: Simulator, client: LocusClient) -> None:
    """Site-level 5min data across the March change in Los Angeles."""
    series = await _check(
        sim,
        client,
        "sites",
        3393714,
        fields=["W_avg", "Wh_sum"],
        start=datetime(2024, 3, 1),
        end=datetime(2024, 4, 15),
        tz="America/Los_Angeles",
        gran="5min",
    )
    assert len(series) == 45 * 288 - 12


async def test_latest_is_one_request_one_row(sim: Simulator, client: LocusClient) -> None:
    """latest: one request, one row, no range."""
    series = await client.components.data(
        54369, fields=["W_avg", "PhV_avg"], tz="UTC", gran="latest"
    )
    assert len(series) == 1
    assert sim.stats.data_windows[-1][1:3] == (None, None)
    row = next(iter(series))
    assert row["PhV_avg"] is not None


async def test_29_months_of_bulk(sim: Simulator, client: LocusClient) -> None:
    """Partner bulk data over 29 months: three requests, equal to the ground truth."""
    fields = ["Wh_sum", "Wh_e_sum", "GHIh_m_sum", "EER_avg"]
    start, end = datetime(2022, 1, 1), datetime(2024, 6, 1)
    series = await client.partners.bulk_data(
        111, fields=fields, start=start, end=end, tz="US/Pacific"
    )
    truth = sim.ground_truth("bulk", 111, fields=fields, start=start, end=end, tz="US/Pacific")
    assert series.requests == 3
    assert list(series) == truth
    assert len(series) == 8 * 29
    assert sim.stats.by_status[400] == 0


async def test_allowance_four_keeps_four_windows_in_flight(sim: Simulator) -> None:
    """With allowance 4 the windows go four at a time and the result is the same."""
    sim.core.allowance = 4
    sim.faults = Faults(latency=0.01)
    args: dict[str, Any] = {
        "fields": ["Wh_sum"],
        "start": datetime(2024, 1, 1),
        "end": datetime(2024, 7, 1),
        "tz": "UTC",
        "gran": "hourly",
    }
    async with sim.client(max_concurrency=4, strict=True) as client:
        series = await client.components.data(54369, **args)
    assert sim.stats.max_in_flight == 4
    assert list(series) == sim.ground_truth("components", 54369, **args)


async def test_faults_do_not_change_the_data(sim: Simulator) -> None:
    """5xx, HTML pages, cut bodies, 429s and revoked tokens: retried to the same rows."""
    sim.faults = Faults(
        seed=11, server_errors=0.1, html_errors=0.05, drops=0.05, rate_limits=0.1, revocations=0.02
    )
    args: dict[str, Any] = {
        "fields": ["W_avg", "Wh_sum"],
        "start": datetime(2024, 9, 1),
        "end": datetime(2024, 12, 1),
        "tz": "America/Los_Angeles",
        "gran": "15min",
    }
    async with sim.client(strict=True) as client:
        series = await client.components.data(54369, **args)
        assert client.stats.retries > 0
    assert list(series) == sim.ground_truth("components", 54369, **args)
    assert sum(sim.stats.faults.values()) > 0


async def test_iter_data_yields_windows_in_order(sim: Simulator, client: LocusClient) -> None:
    """Plain async for: windows in order, together the same as data()."""
    args: dict[str, Any] = {
        "fields": ["Wh_sum"],
        "start": datetime(2024, 1, 1),
        "end": datetime(2024, 4, 1),
        "tz": "Europe/Berlin",
        "gran": "hourly",
    }
    stream = client.components.iter_data(54369, **args)
    assert len(stream) == 3
    parts = [part async for part in stream]
    assert [p.requests for p in parts] == [1, 1, 1]
    assert parts[0].timestamps[-1] < parts[1].timestamps[0]
    assert TimeSeries.concat(parts) == await client.components.data(54369, **args)


async def test_iter_data_prefetches_with_bounded_memory(sim: Simulator) -> None:
    """In ``async with``, windows are fetched while the consumer works, never more than
    allowance + 1 ahead of what it has consumed."""
    sim.faults = Faults(latency=0.002)
    args: dict[str, Any] = {
        "fields": ["Wh_sum"],
        "start": datetime(2024, 1, 1),
        "end": datetime(2024, 1, 21),
        "tz": "UTC",
        "gran": "1min",
    }
    async with sim.client(strict=True) as client:
        consumed = 0
        ahead: list[int] = []
        async with client.components.iter_data(54369, **args) as stream:
            async for part in stream:
                consumed += 1
                # A consumer slower than the fetches: it works until the prefetch has
                # reached its bound (observed on the server, not timed), then a while more.
                expected = min(5, consumed + 2) - consumed
                with anyio.fail_after(60):  # a hang guard only
                    while len(sim.stats.data_windows) - consumed < expected:  # noqa: ASYNC110
                        await anyio.sleep(0.005)
                for _ in range(20):
                    await anyio.sleep(0.005)  # room to overshoot, if it ever would
                ahead.append(len(sim.stats.data_windows) - consumed)
                assert len(part) > 0
    assert consumed == 5
    assert ahead == [2, 2, 2, 1, 0]  # allowance 1 + 1 prefetched while we worked, never more


async def test_breaking_out_of_iter_data_is_safe(client: LocusClient) -> None:
    """Leaving the loop early leaves nothing running and the limiter free."""
    stream = client.components.iter_data(
        54369, fields="Wh_sum", start="2024-01-01", end="2024-06-01", tz="UTC", gran="hourly"
    )
    async for _ in stream:
        break
    async with client.components.iter_data(
        54369, fields="Wh_sum", start="2024-01-01", end="2024-06-01", tz="UTC", gran="hourly"
    ) as prefetching:
        async for _ in prefetching:
            break
    assert client.limiter.in_use == 0  # type: ignore[attr-defined]


async def test_validation_names_the_field_before_any_data_request(
    sim: Simulator, client: LocusClient
) -> None:
    """validate=True: unknown fields and granularities are refused with the valid ones listed."""
    with pytest.raises(
        UsageError,
        match=r"field 'POA_avg' is not available for component 54369; valid fields: A_avg",
    ):
        await client.components.data(
            54369,
            fields=["Wh_sum", "POA_avg"],
            start="2024-01-01",
            end="2024-01-02",
            tz="UTC",
            gran="hourly",
            validate=True,
        )
    with pytest.raises(UsageError, match="granularity '1min' is not available for field 'W_avg'"):
        await client.sites.data(
            3393714,
            fields=["W_avg"],
            start="2024-01-01",
            end="2024-01-02",
            tz="UTC",
            gran="1min",
            validate=True,
        )
    assert sim.stats.data_windows == []
    dataavailable = [e for e in sim.stats.log if e[1].endswith("/dataavailable")]
    await client.components.data(
        54369,
        fields=["Wh_sum"],
        start="2024-01-01",
        end="2024-01-02",
        tz="UTC",
        gran="hourly",
        validate=True,
    )
    assert [e for e in sim.stats.log if e[1].endswith("/dataavailable")] == dataavailable  # cached


async def test_empty_range_makes_no_request(sim: Simulator, client: LocusClient) -> None:
    """A range holding no bucket (10:01-10:04 at 5min) asks nothing and returns nothing."""
    series = await client.components.data(
        54369,
        fields="Wh_sum",
        start="2024-01-01T10:01:00",
        end="2024-01-01T10:04:00",
        tz="UTC",
        gran="5min",
    )
    assert len(series) == 0
    assert sim.stats.data_windows == []


async def test_inputs_in_every_form_mean_the_same(sim: Simulator, client: LocusClient) -> None:
    """Naive datetimes, aware datetimes, dates, ISO strings, ZoneInfo, enum: the same rows."""
    tz = ZoneInfo("America/New_York")
    forms: list[dict[str, Any]] = [
        {
            "start": datetime(2024, 3, 9),
            "end": datetime(2024, 3, 11),
            "tz": "America/New_York",
            "gran": "hourly",
        },
        {"start": date(2024, 3, 9), "end": date(2024, 3, 11), "tz": tz, "gran": Granularity.HOURLY},
        {
            "start": "2024-03-09",
            "end": "2024-03-11T00:00:00",
            "tz": "America/New_York",
            "gran": "hourly",
        },
        {
            "start": datetime(2024, 3, 9, 5, tzinfo=ZoneInfo("UTC")),
            "end": datetime(2024, 3, 11, tzinfo=tz),
            "tz": tz,
            "gran": "hourly",
        },
    ]
    results = [await client.components.data(54380, fields="Wh_sum,W_avg", **form) for form in forms]
    assert all(r == results[0] for r in results)
    assert len(results[0]) == 47  # 48 hours minus the hour lost at 2 a.m.


async def test_columnar_conversions(client: LocusClient) -> None:
    """Arrow, pandas and polars views: int64 ids, tz-aware timestamps, float64 values."""
    import pandas as pd
    import polars as pl
    import pyarrow as pa

    # Commissioned at 2021-06-01T00:00Z, which is 17:00 the day before in Los Angeles.
    series = await client.components.data(
        54369,
        fields=["W_avg", "Wh_sum"],
        start="2021-05-31T15:00:00",
        end="2021-05-31T19:00:00",
        tz="America/Los_Angeles",
        gran="hourly",
    )
    table = series.to_arrow()
    assert table.schema.field("id").type == pa.int64()
    assert table.schema.field("ts").type == pa.timestamp("us", tz="America/Los_Angeles")
    assert table.schema.field("W_avg").type == pa.float64()
    assert table.column("Wh_sum").to_pylist() == series.column("Wh_sum")
    assert table.column("Wh_sum").null_count == 2  # 15:00 and 16:00, before commissioning
    frame = series.to_pandas()
    assert str(frame.index.tz) == "America/Los_Angeles"
    assert frame["Wh_sum"].dtype == "float64"
    assert frame.index[0] == pd.Timestamp("2021-05-31T15:00:00", tz="America/Los_Angeles")
    polars_frame = series.to_polars()
    assert polars_frame.schema["ts"] == pl.Datetime("us", "America/Los_Angeles")
    assert polars_frame["id"].to_list() == [54369] * 4
