"""Data bodies at Arrow speed (issue 14), side by side in one run.

1. A 5-day 1min window (the longest a request may ask: just under 5 days, 7,199 rows x 2
   fields) into an Arrow table: our fast path (msgspec + Arrow's timestamp parsing), our
   column parser then Arrow (what 0.1 did), ``json.loads`` + ``pandas.DataFrame``, and
   ``orjson.loads`` alone (no table at all). Goals: >= 3 M rows/s, >= 3x json + pandas.
2. Fetching the same windows at allowance 4 from a simulator process over loopback (20 ms
   latency), rounds alternated, medians: the backfill's fetch (``fetch_window(arrow=True)``
   through the limiter, an Arrow table per window) against a bare httpx + CapacityLimiter
   loop that only runs ``orjson.loads`` on each body. Goal: >= 0.95 of the bare loop.

    python benchmarks/bench_decode.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import time
from zoneinfo import ZoneInfo

import anyio
import httpx
import orjson
import pandas as pd
from _common import TOKEN_FORM, five_day_body, machine, median, simulator_process, table

from locus_async import Granularity, LocusClient
from locus_async.locus._core.arrow_series import parse_data_arrow
from locus_async.locus._core.query import DataQuery
from locus_async.locus._core.series import parse_data_body
from locus_async.locus._core.windows import Window, to_instant
from locus_async.locus.timeseries import TimeSeries
from locus_async.simulator import DEFAULT_ACCOUNT

TZ = "America/Los_Angeles"
FIELDS = ("W_avg", "Wh_sum")
COMPONENTS = (54369, 54380, 54400, 54370)


def parsing(rounds: int) -> str:
    content = five_day_body()
    zone = ZoneInfo(TZ)

    def fast() -> int:
        result = parse_data_arrow(content, FIELDS)
        assert result is not None
        return int(result.num_rows)

    def columns() -> int:
        series = TimeSeries(parse_data_body(content, FIELDS), tz=zone, gran=Granularity.MIN1)
        return int(series.to_arrow().num_rows)

    def pandas_frame() -> int:
        return len(pd.DataFrame(json.loads(content)["data"]))

    def orjson_only() -> int:
        return len(orjson.loads(content)["data"])

    runs = [
        ("msgspec + Arrow timestamps into an Arrow table (ours, 0.2)", fast),
        ("orjson into columns, then Arrow (ours, 0.1)", columns),
        ("json.loads + pandas.DataFrame", pandas_frame),
        ("orjson.loads alone (no table)", orjson_only),
    ]
    best: dict[str, float] = {name: float("inf") for name, _ in runs}
    rows = 0
    for _ in range(rounds * 10):  # alternated, best of each
        for name, fn in runs:
            started = time.perf_counter()
            rows = fn()
            best[name] = min(best[name], time.perf_counter() - started)
    reference = best["json.loads + pandas.DataFrame"]
    out = [
        (
            name,
            rows,
            f"{rows / seconds / 1e6:.2f}",
            f"{seconds * 1000:.2f}",
            f"{reference / seconds:.2f}x",
        )
        for name, seconds in best.items()
    ]
    return f"body: {len(content) / 1024:.0f} KiB of JSON, {rows:,} rows x 2 fields\n\n" + table(
        ["decoder", "rows", "M rows/s", "ms", "vs json + pandas"], out
    )


def windows() -> list[tuple[int, Window]]:
    zone = ZoneInfo(TZ)
    from datetime import datetime, timedelta

    out = []
    for component in COMPONENTS:
        for day in range(0, 20, 4):  # 4-day windows over 20 days
            start = to_instant(datetime(2024, 10, 1) + timedelta(days=day), zone, name="s")[0]
            end = to_instant(datetime(2024, 10, 5) + timedelta(days=day), zone, name="e")[0]
            out.append((component, Window(start, end, zone)))
    return out


async def ours(url: str, allowance: int) -> float:
    zone = ZoneInfo(TZ)
    auth = DEFAULT_ACCOUNT.provider()
    async with LocusClient(auth=auth, base_url=url, max_concurrency=allowance) as client:
        await client.authenticate()
        rows = 0
        started = time.perf_counter()

        async def one(component: int, window: Window) -> None:
            nonlocal rows
            query = DataQuery(FIELDS, zone, Granularity.MIN1, window.start, window.end)
            series = await client.fetch_window("components", component, query, window, arrow=True)
            assert series.arrow is not None
            rows += len(series)

        async with anyio.create_task_group() as group:
            for component, window in windows():
                group.start_soon(one, component, window)
        elapsed = time.perf_counter() - started
        assert client.stats.rate_limited == 0
        assert rows == len(windows()) * 4 * 1440
        return elapsed


async def bare(url: str, allowance: int) -> float:
    limiter = anyio.CapacityLimiter(allowance)
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        token = (await http.post("/oauth/token", data=TOKEN_FORM)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"}
        rows = 0
        started = time.perf_counter()

        async def one(component: int, window: Window) -> None:
            nonlocal rows
            params = {
                "fields": ",".join(FIELDS), "tz": TZ, "gran": "1min",
                "start": window.start_param, "end": window.end_param,
            }  # fmt: skip
            async with limiter:
                response = await http.get(
                    f"/v3/components/{component}/data", params=params, headers=headers
                )
            response.raise_for_status()
            rows += len(orjson.loads(response.content)["data"])

        async with anyio.create_task_group() as group:
            for component, window in windows():
                group.start_soon(one, component, window)
        elapsed = time.perf_counter() - started
        assert rows == len(windows()) * 4 * 1440
        return elapsed


def fetching(rounds: int) -> str:
    rows = []
    for allowance in (1, 4):
        with simulator_process(allowance=allowance, latency=0.02) as url:
            anyio.run(bare, url, allowance)  # warm the simulator's caches for both
            mine, theirs = [], []
            for _ in range(rounds):
                mine.append(anyio.run(ours, url, allowance))
                theirs.append(anyio.run(bare, url, allowance))
        m, t = median(mine), median(theirs)
        rows.append((allowance, len(windows()), f"{m:.3f}", f"{t:.3f}", f"{t / m:.3f}"))
    return table(
        [
            "allowance",
            "windows",
            "fetch_window(arrow=True) s",
            "bare loop + orjson.loads s",
            "our throughput ratio",
        ],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"Machine: {machine()}\n")
    print(parsing(args.rounds), "\n")
    print(
        f"{len(windows())} windows of 4 days of 1min ({len(COMPONENTS)} components), "
        "20 ms latency, medians:\n"
    )
    print(fetching(args.rounds))


if __name__ == "__main__":
    main()
