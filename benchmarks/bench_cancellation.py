"""A storm of random cancellations against a strict one-at-a-time server (issue 11).

The simulator runs in its own process over loopback with a fixed latency and allowance 1:
a request arriving while another is being worked on gets a 429. Callers arrive in a
stream and give up after a random patience, so some are cancelled while queued and some
while their request is on the wire (the server goes on working on those). Side by side in
one run, rounds alternated: the client as shipped (a slot abandoned on the wire is held
for the learnt drain interval) and the same client with the hold switched off.

    python benchmarks/bench_cancellation.py --requests 200 --rounds 3
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import machine, simulator_process, table

from locus_async import LocusClient, set_testing
from locus_async._core.retrying import WireHold
from locus_async.simulator import DEFAULT_ACCOUNT


class NoHold(WireHold):
    """The behaviour before issue 11: the slot is free the moment the caller gives up."""

    def hold(self, elapsed: float) -> float:
        return 0.0


async def storm(
    url: str, *, requests: int, latency: float, hold: bool, seed: int
) -> dict[str, float]:
    rng = random.Random(seed)
    client = LocusClient(auth=DEFAULT_ACCOUNT.provider(), base_url=url)
    if not hold:
        client._session.wire_hold = NoHold()
    finished = cancelled = 0
    async with client:
        await client.components.get(54369)  # token and a first latency observation
        before = client.stats.snapshot()
        started = time.perf_counter()

        async def caller() -> None:
            nonlocal finished, cancelled
            with anyio.move_on_after(rng.uniform(0.0, 3.0 * latency)) as scope:
                await client.components.get(54369)
                finished += 1
            if scope.cancelled_caught:
                cancelled += 1

        async with anyio.create_task_group() as group:
            for _ in range(requests):
                group.start_soon(caller)
                await anyio.sleep(rng.uniform(0.0, 1.5 * latency))
        # the last hold ends before we count: one more call, through the limiter
        await client.components.get(54369)
        elapsed = time.perf_counter() - started
        stats = client.stats
    return {
        "sent": stats.requests - before["requests"],
        "finished": finished,
        "cancelled": cancelled,
        "abandoned": stats.abandoned,
        "r429": stats.rate_limited,
        "elapsed": elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.02)
    args = parser.parse_args()
    set_testing(False)  # real backoff and pauses: a 429 costs what it costs in production
    totals: dict[bool, dict[str, float]] = {True: {}, False: {}}
    with simulator_process(allowance=1, latency=args.latency) as url:
        for round_ in range(args.rounds):
            for hold in (True, False):
                result = anyio.run(
                    lambda h=hold, r=round_: storm(  # type: ignore[misc]
                        url, requests=args.requests, latency=args.latency, hold=h, seed=r
                    )
                )
                for key, value in result.items():
                    totals[hold][key] = totals[hold].get(key, 0.0) + value
    print(
        f"Machine: {machine()}; {args.requests} callers x {args.rounds} rounds; "
        f"latency {args.latency * 1000:g} ms, allowance 1"
    )
    rows = []
    for hold, label in ((True, "hold after an abandoned exchange (shipped)"), (False, "no hold")):
        t = totals[hold]
        rows.append(
            (
                label,
                int(t["sent"]),
                int(t["finished"]),
                int(t["cancelled"]),
                int(t["abandoned"]),
                int(t["r429"]),
                f"{t['elapsed']:.2f}",
            )
        )
    print(
        table(
            [
                "client",
                "requests sent",
                "finished",
                "cancelled",
                "cancelled on the wire",
                "429s",
                "seconds",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
