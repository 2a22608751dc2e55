"""Requests one sync sends every 5 minutes for a 100-component partner (issue 13).

Goal: the data requests of a sync are exactly its new windows plus its provisional ones;
the only other requests are the partner's component listing (new components are picked
up) and, for a new process as cron starts it, one token grant. A dataset of 5min data over
the last 3 days is started with ``backfill --end now``, then synced 12 times, the
simulated clock moving 5 minutes each time (the simulator in process: this counts
requests, it does not time them).

    python benchmarks/bench_sync.py --syncs 12
"""

from __future__ import annotations

import argparse
import platform
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio

from locus_async import Backfill, BackfillSpec
from locus_async.simulator import (
    ClientSpec,
    Fleet,
    PartnerSpec,
    SimClock,
    Simulator,
    Timeline,
)
from locus_async.simulator._fleet import _site

T0 = datetime(2024, 6, 10, 12, tzinfo=UTC).timestamp()


def _fleet(sites: int) -> Fleet:
    place = ("San Francisco", "California", "CA", "94105", "US", "657 Mission St")
    built = tuple(
        _site(
            5_000_000 + index,
            f"Site {index}",
            "America/Los_Angeles",
            37.7,
            -122.4,
            place,
            100.0,
            700_000 + index * 10,
            inverters=3,
            weather=False,
        )
        for index in range(sites)
    )
    return Fleet(
        [PartnerSpec(111, (ClientSpec(900, "Bench", "Fleet", "b@x.example", "UTC", built),))]
    )


async def main(syncs: int) -> list[dict[str, int]]:
    clock = SimClock(T0)
    fleet = _fleet(25)  # 25 sites x (1 meter + 3 inverters) = 100 components
    ids = sorted(fleet.components)
    timeline = Timeline(
        lags={ids[i]: 3 * 3600.0 for i in range(0, 100, 10)}, default_lag=120, upload_every=300
    )
    sim = Simulator(fleet=fleet, clock=clock, timeline=timeline)
    spec = BackfillSpec(
        fields="W_avg,Wh_sum", start=datetime.fromtimestamp(T0, UTC) - timedelta(days=3),
        end="now", tz="UTC", gran="5min", partner_components=(111,),
    )  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ds"
        async with sim.client() as client:
            await Backfill(client, spec, out, clock=clock).run()
        for _ in range(syncs):
            clock.advance(300)
            sim.reset_stats()
            async with sim.client() as client:  # a new process each time, as cron runs it
                plan = await Backfill.sync(client, out, clock=clock).plan()
            sim.reset_stats()
            async with sim.client() as client:
                result = await Backfill.sync(client, out, clock=clock).run()
            log = [path for _, path, _ in sim.stats.log]
            rows.append(
                {
                    "data": len(sim.stats.data_windows),
                    "new": plan.windows_new,
                    "provisional": plan.windows_provisional,
                    "listing": log.count("/v3/partners/111/components"),
                    "token": log.count("/oauth/token"),
                    "other": len(log)
                    - len(sim.stats.data_windows)
                    - log.count("/v3/partners/111/components")
                    - log.count("/oauth/token"),
                    "total": len(log),
                    "final_after": result.windows_total - result.windows_provisional,
                }
            )
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--syncs", type=int, default=12)
    args = parser.parse_args()
    results = anyio.run(main, args.syncs)
    print(f"Machine: CPython {platform.python_version()}, {platform.machine()}; 100 components")
    print("| sync | data requests | new windows | provisional windows | listing | token | other "
          "| total |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for index, row in enumerate(results, 1):
        print(
            f"| {index} | {row['data']} | {row['new']} | {row['provisional']} | {row['listing']} "
            f"| {row['token']} | {row['other']} | {row['total']} |"
        )
    assert all(r["data"] == r["new"] + r["provisional"] for r in results)
    assert all(r["other"] == 0 for r in results)
