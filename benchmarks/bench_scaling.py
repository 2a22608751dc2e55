"""Beyond one process: the adaptive limit, and the priority lane during a big backfill.

1. Adaptive limit: 600 calls (32 callers) against a simulator process whose true
   allowance is 4 (20 ms latency); AdaptiveLimiter(ceiling=16) starting at 1, next to fixed
   limits of 1 and 4. Target (issue 8): >= 90% of the allowance within 100 requests, 429s
   <= 2% of all requests.
2. Priority lane: a backfill of 10,000 windows running in the background lane (allowance
   1, 5 ms latency); 20 interactive calls arrive during it. Target: each waits for at most
   the windows already in flight.

    python benchmarks/bench_scaling.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import timedelta

import anyio
from _common import machine, simulator_process, table

from locus_async import (
    AdaptiveLimiter,
    Backfill,
    BackfillSpec,
    LocalLimiter,
    LocusClient,
    Priority,
)
from locus_async.simulator import DEFAULT_ACCOUNT, Faults, Simulator


async def drive(url: str, limiter: LocalLimiter, calls: int = 600) -> tuple[float, int, int]:
    remaining = calls
    async with LocusClient(
        auth=DEFAULT_ACCOUNT.provider(), base_url=url, limiter=limiter
    ) as client:
        await client.sites.get(3393714)
        started = time.perf_counter()

        async def caller() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await client.components.get(54369)

        async with anyio.create_task_group() as group:
            for _ in range(32):
                group.start_soon(caller)
        elapsed = time.perf_counter() - started
        return calls / elapsed, client.stats.rate_limited, client.stats.requests


def adaptive() -> str:
    rows = []
    with simulator_process(allowance=4, latency=0.02) as url:
        for label, make in (
            ("AdaptiveLimiter(ceiling=16), starts at 1", lambda: AdaptiveLimiter(ceiling=16)),
            ("fixed max_concurrency=1 (the default)", lambda: LocalLimiter(1)),
            ("fixed max_concurrency=4 (told the allowance)", lambda: LocalLimiter(4)),
        ):
            limiter = make()
            throughput, rejected, requests = anyio.run(drive, url, limiter)
            if isinstance(limiter, AdaptiveLimiter):
                history = limiter.history
                reached = next(i for i, c in enumerate(history) if c >= 3.6) + 1
                steady = statistics.mean(history[100:])
                extra = (f"{reached}", f"{steady:.2f} ({steady / 4:.0%})")
            else:
                extra = ("-", f"{limiter.capacity}")
            rows.append(
                (label, f"{throughput:.0f}", *extra, rejected, f"{rejected / requests:.2%}")
            )
    return table(
        [
            "limiter",
            "calls/s",
            "requests to reach >= 90%",
            "mean limit after 100",
            "429s",
            "429 share",
        ],
        rows,
    )


class Discarding(Backfill):
    def _write(self, task: object, series: object) -> None:
        return None


async def priority_lane(use_lane: bool) -> tuple[float, float, float, int]:
    sim = Simulator(faults=Faults(latency=0.005))
    spec = BackfillSpec(
        fields=("Wh_sum",),
        start="2001-01-01T00:00:00",
        end="2003-04-14T08:00:00",
        tz="UTC",
        gran="hourly",
        components=(54369,),
    )
    async with sim.client(limits={"hourly": timedelta(hours=2, minutes=1)}) as client:
        engine = Discarding(
            client,
            spec,
            tempfile.mkdtemp(prefix="locus-bench-lane-"),
            priority=Priority.BACKGROUND if use_lane else Priority.INTERACTIVE,
        )
        assert len(engine._plan(await engine.entities())) == 10_000
        waits: list[float] = []
        async with anyio.create_task_group() as group:
            group.start_soon(engine.run)
            while client.stats.requests < 200:  # noqa: ASYNC110 - a benchmark polling a counter
                await anyio.sleep(0.01)
            window = client.stats.busy_seconds / client.stats.requests
            for _ in range(20):
                started = time.perf_counter()
                await client.sites.get(3393714)
                waits.append(time.perf_counter() - started)
                await anyio.sleep(0.03)
            group.cancel_scope.cancel()
        return window, statistics.median(waits), max(waits), client.limiter.waiting


def lane() -> str:
    rows = []
    for use_lane in (True, False):
        window, median_wait, worst, _ = anyio.run(priority_lane, use_lane)
        rows.append(
            (
                "backfill in the background lane" if use_lane else "everything in one FIFO lane",
                f"{window * 1000:.1f}",
                f"{median_wait * 1000:.1f} ({median_wait / window:.1f} windows)",
                f"{worst * 1000:.1f} ({worst / window:.1f} windows)",
            )
        )
    return table(
        ["setup", "one window on the wire (ms)", "interactive call, median (ms)", "worst (ms)"],
        rows,
    )


def main() -> None:
    print(f"Machine: {machine()}\n")
    print("Adaptive limit, true allowance 4, 600 calls, 20 ms latency:\n")
    print(adaptive(), "\n")
    print(
        "Priority lane: 20 interactive calls during a 10,000-window backfill "
        "(allowance 1, 5 ms latency):\n"
    )
    print(lane())


if __name__ == "__main__":
    main()
