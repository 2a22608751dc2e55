"""The blocking client's cost (issue 16): the same calls through ``locus_async.sync``
and through the async client, side by side in one run, on the in-process simulator.

Each call of the blocking client crosses to its loop thread and back; the question is
what that adds to a real call. Three shapes: ``sites.get`` one after another (the
smallest call: the crossing's cost shows most), a month of hourly data (a typical
call), and ``iter_data`` over 11 days of 1min windows (the iterator's per-window step).
Best of ``--repeat`` rounds, per call.

    python benchmarks/bench_blocking.py [--calls 300] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import anyio
from _common import machine, table

from locus_async.simulator import Simulator

MONTH: dict[str, Any] = {"fields": "Wh_sum", "gran": "hourly", "tz": "UTC"}
MONTH.update(start="2024-06-01T00:00:00", end="2024-07-01T00:00:00")
WINDOWS: dict[str, Any] = {"fields": "W_avg", "gran": "1min", "tz": "UTC"}
WINDOWS.update(start="2024-06-01T00:00:00", end="2024-06-12T00:00:00")


def best(repeat: int, run: Callable[[str, int], float], shape: str, calls: int) -> float:
    return min(run(shape, calls) for _ in range(repeat))


def async_round(shape: str, calls: int) -> float:
    sim = Simulator()

    async def go() -> float:
        async with sim.client() as client:
            await client.authenticate()
            started = time.perf_counter()
            for _ in range(calls):
                if shape == "get":
                    await client.sites.get(3393714)
                elif shape == "month":
                    await client.components.data(54369, **MONTH)
                else:
                    async for _part in client.components.iter_data(54369, **WINDOWS):
                        pass
            return (time.perf_counter() - started) / calls

    return anyio.run(go)


def blocking_round(shape: str, calls: int) -> float:
    sim = Simulator()
    with sim.sync_client() as client:
        client.authenticate()
        started = time.perf_counter()
        for _ in range(calls):
            if shape == "get":
                client.sites.get(3393714)
            elif shape == "month":
                client.components.data(54369, **MONTH)
            else:
                for _part in client.components.iter_data(54369, **WINDOWS):
                    pass
        return (time.perf_counter() - started) / calls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"Machine: {machine()}\n")
    rows = []
    for shape, label, calls in (
        ("get", "sites.get", args.calls),
        ("month", "a month of hourly data", max(1, args.calls // 10)),
        ("windows", "iter_data, 3 windows of 1min", max(1, args.calls // 30)),
    ):
        plain = best(args.repeat, async_round, shape, calls)
        wrapped = best(args.repeat, blocking_round, shape, calls)
        rows.append(
            (label, calls, f"{plain * 1e3:.2f}", f"{wrapped * 1e3:.2f}",
             f"{(wrapped - plain) * 1e6:.0f}", f"{wrapped / plain:.2f}")
        )  # fmt: skip
    print(
        table(
            ["call", "calls", "async ms/call", "blocking ms/call", "added us/call", "ratio"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
