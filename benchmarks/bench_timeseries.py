"""The time-series engine: requests per backfill, wall time against other strategies, parsing.

1. Requests for a year in America/Los_Angeles per granularity: our planner, the formula's
   minimum, fixed 4-day windows (1min) and fixed 30-day windows.
2. Wall time fetching the same windows from one simulator process over loopback (20 ms
   latency), allowance 1 and 4, rounds alternated, medians:
   - LocusClient.components.data (our engine);
   - a bare httpx + anyio.CapacityLimiter loop over the same windows (target: >= 0.95);
   - a sequential ``requests`` loop (what existing scripts do);
   - ``asyncio.gather`` with no limiter, retrying 429s with tenacity (a 429 storm).
3. Parse throughput (rows/s into Arrow) and peak memory for a 5-day 1min response.

    python benchmarks/bench_timeseries.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import math
import time
import tracemalloc
from datetime import datetime
from zoneinfo import ZoneInfo

import anyio
import httpx
import orjson
import requests
import tenacity
from _common import TOKEN_FORM, five_day_body, machine, median, simulator_process, table

from locus_async import DEFAULT_LIMITS, Granularity, LocusClient
from locus_async.locus._core.series import parse_data_body
from locus_async.locus._core.windows import Window, minimum_windows, plan_windows, to_instant
from locus_async.locus.timeseries import TimeSeries
from locus_async.simulator import DEFAULT_ACCOUNT

TZ = "America/Los_Angeles"
COMPONENTS = (54369, 54380, 54400)
FIELDS = "W_avg,Wh_sum"
START, END = datetime(2024, 10, 20), datetime(2024, 11, 9)  # 20 days of 1min, across DST


def request_counts() -> str:
    zone = ZoneInfo(TZ)
    start = to_instant(datetime(2024, 1, 1), zone, name="s")[0]
    end = to_instant(datetime(2025, 1, 1), zone, name="e")[0]
    rows = []
    for gran in (Granularity.MIN1, Granularity.MIN5, Granularity.HOURLY, Granularity.DAILY):
        limit = DEFAULT_LIMITS[gran]
        planned = len(plan_windows(start, end, zone, gran, limit))
        formula = minimum_windows(start, end, zone, gran, limit)
        four = math.ceil((end - start) / (4 * 86400)) if gran is Granularity.MIN1 else "-"
        thirty = math.ceil((end - start) / (30 * 86400)) if gran is not Granularity.MIN1 else "-"
        rows.append((gran.value, planned, formula, four, thirty))
    return table(
        ["granularity (2024, a year)", "planner", "formula minimum", "fixed 4-day", "fixed 30-day"],
        rows,
    )


def windows() -> list[tuple[int, Window]]:
    zone = ZoneInfo(TZ)
    start = to_instant(START, zone, name="s")[0]
    end = to_instant(END, zone, name="e")[0]
    planned = plan_windows(start, end, zone, Granularity.MIN1, DEFAULT_LIMITS[Granularity.MIN1])
    return [(c, w) for c in COMPONENTS for w in planned]


def params(window: Window) -> dict[str, str]:
    return {
        "fields": FIELDS,
        "start": window.start_param,
        "end": window.end_param,
        "tz": TZ,
        "gran": "1min",
    }


async def ours(url: str, allowance: int) -> float:
    auth = DEFAULT_ACCOUNT.provider()
    async with LocusClient(auth=auth, base_url=url, max_concurrency=allowance) as client:
        await client.sites.get(3393714)
        started = time.perf_counter()
        results: list[TimeSeries] = []

        async def one(component: int) -> None:
            results.append(
                await client.components.data(
                    component, fields=FIELDS, start=START, end=END, tz=TZ, gran="1min"
                )
            )

        async with anyio.create_task_group() as group:
            for component in COMPONENTS:
                group.start_soon(one, component)
        elapsed = time.perf_counter() - started
        assert client.stats.rate_limited == 0
        assert sum(len(r) for r in results) == 3 * (20 * 1440 + 60)
        return elapsed


async def bare(url: str, allowance: int, *, columns: bool = False) -> float:
    """httpx + CapacityLimiter over the same windows. ``columns``: also parse each body with
    the same column parser (in a thread, as ours does), i.e. the same work as ours."""
    limiter = anyio.CapacityLimiter(allowance)
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        token = (await http.post("/oauth/token", data=TOKEN_FORM)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"}
        rows = 0

        async def one(component: int, window: Window) -> None:
            nonlocal rows
            async with limiter:
                response = await http.get(
                    f"/v3/components/{component}/data", params=params(window), headers=headers
                )
            response.raise_for_status()
            if columns:
                parsed = await anyio.to_thread.run_sync(
                    parse_data_body, response.content, ["W_avg", "Wh_sum"]
                )
                rows += len(parsed)
            else:
                rows += len(orjson.loads(response.content)["data"])

        started = time.perf_counter()
        async with anyio.create_task_group() as group:
            for component, window in windows():
                group.start_soon(one, component, window)
        elapsed = time.perf_counter() - started
        assert rows == 3 * (20 * 1440 + 60)
        return elapsed


def sequential_requests(url: str) -> float:
    """The loop most public Locus scripts are: requests, one call after another, json.loads."""
    with requests.Session() as http:
        token = http.post(f"{url}/oauth/token", data=TOKEN_FORM, timeout=60).json()["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        started = time.perf_counter()
        rows = 0
        for component, window in windows():
            response = http.get(
                f"{url}/v3/components/{component}/data", params=params(window), timeout=60
            )
            response.raise_for_status()
            rows += len(json.loads(response.content)["data"])
        assert rows == 3 * (20 * 1440 + 60)
        return time.perf_counter() - started


async def gather_storm(url: str) -> tuple[float, int]:
    """Everything at once with asyncio.gather, retrying 429s with tenacity's jittered backoff."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        token = (await http.post("/oauth/token", data=TOKEN_FORM)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"}
        rate_limited = 0

        @tenacity.retry(
            retry=tenacity.retry_if_exception_type(httpx.HTTPStatusError),
            wait=tenacity.wait_random_exponential(multiplier=0.05, max=2),
            stop=tenacity.stop_after_attempt(60),
        )
        async def one(component: int, window: Window) -> int:
            nonlocal rate_limited
            response = await http.get(
                f"/v3/components/{component}/data", params=params(window), headers=headers
            )
            if response.status_code == 429:
                rate_limited += 1
            response.raise_for_status()
            return len(orjson.loads(response.content)["data"])

        started = time.perf_counter()
        rows = sum(await asyncio.gather(*(one(c, w) for c, w in windows())))
        assert rows == 3 * (20 * 1440 + 60)
        return time.perf_counter() - started, rate_limited


def wall_times(rounds: int) -> str:
    rows = []
    for allowance in (1, 4):
        with simulator_process(allowance=allowance, latency=0.02) as url:
            anyio.run(bare, url, allowance)  # warm the simulator's caches for everyone
            mine, theirs, parsing_too, sequential, storm, storm_429 = [], [], [], [], [], []
            for _ in range(rounds):
                mine.append(anyio.run(ours, url, allowance))
                theirs.append(anyio.run(bare, url, allowance))
                parsing_too.append(anyio.run(functools.partial(bare, url, allowance, columns=True)))
                sequential.append(sequential_requests(url))
                elapsed, rejected = asyncio.run(gather_storm(url))
                storm.append(elapsed)
                storm_429.append(rejected)
        m = median(mine)
        rows.append(
            (
                allowance,
                len(windows()),
                f"{m:.2f}",
                f"{median(theirs):.2f} ({median(theirs) / m:.3f})",
                f"{median(parsing_too):.2f} ({median(parsing_too) / m:.3f})",
                f"{median(sequential):.2f} ({median(sequential) / m:.2f}x)",
                f"{median(storm):.2f} ({median(storm) / m:.2f}x), {median(storm_429):.0f} x 429",
            )
        )
    return table(
        [
            "allowance",
            "windows",
            "LocusClient s",
            "bare httpx+limiter s (our throughput ratio)",
            "same + column parse s (ratio)",
            "sequential requests s (slower by)",
            "gather+tenacity s (slower by), 429s",
        ],
        rows,
    )


def parsing() -> str:
    body = five_day_body()
    zone = ZoneInfo(TZ)

    def ours_once() -> int:
        series = TimeSeries(
            parse_data_body(body, ["W_avg", "Wh_sum"]), tz=zone, gran=Granularity.MIN1
        )
        return series.to_arrow().num_rows

    def naive_once() -> int:
        import pyarrow as pa

        rows = json.loads(body)["data"]
        records = [
            {
                "id": r["id"],
                "ts": datetime.fromisoformat(r["ts"]),
                "W_avg": r.get("W_avg"),
                "Wh_sum": r.get("Wh_sum"),
            }
            for r in rows
        ]
        return pa.Table.from_pylist(records).num_rows

    out = []
    for label, fn in (
        ("orjson into columns, then Arrow (ours)", ours_once),
        ("json.loads, dict per row, Table.from_pylist", naive_once),
    ):
        fn()
        best = min(_timed(fn) for _ in range(7))
        tracemalloc.start()
        rows = fn()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out.append(
            (label, rows, f"{rows / best:,.0f}", f"{best * 1000:.1f}", f"{peak / 2**20:.1f}")
        )
    return f"body: {len(body) / 1024:.0f} KiB of JSON, 7,199 rows x 2 fields\n\n" + table(
        ["parser", "rows", "rows/s", "ms", "peak MiB (tracemalloc)"], out
    )


def _timed(fn: object) -> float:
    started = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"Machine: {machine()}\n")
    print(request_counts(), "\n")
    print(
        f"20 days of 1min ({START:%Y-%m-%d} to {END:%Y-%m-%d}, {TZ}) "
        f"for {len(COMPONENTS)} components, 20 ms latency:\n"
    )
    print(wall_times(args.rounds), "\n")
    print(parsing())


if __name__ == "__main__":
    main()
