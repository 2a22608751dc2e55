"""SolarNetwork pacing (issue 15): the client-side token bucket against the server's rule.

The simulator enforces a token bucket per security token (the shipped rule is a burst of
about 2, refilled at about 1 per second). 100 sequential ``whoami`` calls, then 100
concurrent ones (8 slots), with the client paced to the rule (the default) and unpaced
(``rate=None``, only the concurrency limit and the 429 pauses), side by side in one run.
The rule is scaled in time (burst 2, 50 per second) so a round takes seconds, not minutes;
the tests check the documented rule itself on a virtual clock. Goal: 0 429s paced.

    python benchmarks/bench_pacing.py [--calls 100] [--per-second 50]
"""

from __future__ import annotations

import argparse
import time

import anyio
from _common import machine, table

from locus_async.simulator import RateRule, SolarNetSimulator
from locus_async.solarnetwork import RateLimit


async def run(calls: int, per_second: float, paced: bool, concurrent: bool) -> tuple[object, ...]:
    sim = SolarNetSimulator(rate=RateRule(burst=2, per_second=per_second))
    rate = RateLimit(burst=2, per_second=per_second) if paced else None
    async with sim.client(rate=rate, max_concurrency=8 if concurrent else 1) as client:
        started = time.perf_counter()
        if concurrent:
            async with anyio.create_task_group() as group:
                for _ in range(calls):
                    group.start_soon(client.whoami)
        else:
            for _ in range(calls):
                await client.whoami()
        elapsed = time.perf_counter() - started
        stats = client.stats
    ideal = max(0.0, (calls - 2) / per_second)
    return (
        "paced (default)" if paced else "unpaced (rate=None)",
        "concurrent, 8 slots" if concurrent else "sequential",
        calls,
        stats.requests,
        sim.stats.counters["rate_rule_429s"],
        f"{elapsed:.2f}",
        f"{ideal:.2f}",
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--per-second", type=float, default=50.0)
    args = parser.parse_args()
    print(f"Machine: {machine()}\n")
    print(f"Rule: burst 2, {args.per_second:g} per second per token (in process)\n")
    rows = [
        anyio.run(run, args.calls, args.per_second, paced, concurrent)
        for concurrent in (False, True)
        for paced in (True, False)
    ]
    print(
        table(
            ["client", "calls made", "calls", "requests", "429s", "seconds", "rule's minimum s"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
