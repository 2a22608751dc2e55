"""Throughput of LocusClient through its limiter vs a bare httpx + anyio.CapacityLimiter loop.

Both fetch the same ``GET /v3/components/54369`` N times, concurrently, from one simulator
process over loopback (20 ms latency, allowance 1 or 4), alternating rounds so machine noise
hits both alike. Target (issue 2): our throughput >= 0.95 of the bare loop's.

    python benchmarks/bench_client.py [--requests 200] [--rounds 5]
"""

from __future__ import annotations

import argparse

import anyio
import httpx
from _common import (
    TOKEN_FORM,
    alternate,
    machine,
    median,
    rate_of,
    simulator_process,
    table,
    throughput_arguments,
)

from locus_async import LocusClient
from locus_async.simulator import DEFAULT_ACCOUNT


async def bare(url: str, requests: int, allowance: int) -> float:
    """What a careful hand-written script does: httpx, a token, a CapacityLimiter."""
    limiter = anyio.CapacityLimiter(allowance)
    async with httpx.AsyncClient(base_url=url) as http:
        token = (await http.post("/oauth/token", data=TOKEN_FORM)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

        async def one() -> None:
            async with limiter:
                response = await http.get("/v3/components/54369", headers=headers)
            response.raise_for_status()
            response.json()

        return await rate_of(requests, one)


async def ours(url: str, requests: int, allowance: int) -> float:
    auth = DEFAULT_ACCOUNT.provider()
    async with LocusClient(auth=auth, base_url=url, max_concurrency=allowance) as client:
        await client.sites.get(3393714)  # token and connection, as the bare loop gets them
        rate = await rate_of(requests, lambda: client.components.get(54369))
        assert client.stats.rate_limited == 0
        return rate


def main() -> None:
    parser = argparse.ArgumentParser()
    throughput_arguments(parser)
    parser.add_argument("--latency", type=float, default=0.02)
    args = parser.parse_args()
    rows = []
    for allowance in (1, 4):
        with simulator_process(allowance=allowance, latency=args.latency) as url:
            theirs_runs, ours_runs = alternate(
                args.rounds, bare, ours, url, args.requests, allowance
            )
            a, b = median(theirs_runs), median(ours_runs)
            rows.append(
                (
                    allowance,
                    f"{a:.1f}",
                    f"{b:.1f}",
                    f"{b / a:.3f}",
                    f"{1 / args.latency * allowance:.0f}",
                )
            )
    print(
        f"Machine: {machine()}; {args.requests} requests x {args.rounds} rounds; "
        f"latency {args.latency * 1000:.0f} ms"
    )
    print(
        table(
            [
                "allowance",
                "bare httpx + CapacityLimiter (req/s)",
                "LocusClient (req/s)",
                "ratio",
                "ideal (req/s)",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
