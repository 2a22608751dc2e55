"""Backfill to Parquet: peak memory, and whether writing ever starves the allowed slot.

A year (2024) of 1min data, two fields, for 10 components, from one simulator process over
loopback (20 ms latency, allowance 1). Each run happens in its own process so its peak
RSS is its own. Target (issue 5): peak RSS < 300 MB, and the slot as busy when writing
Parquet as when the same engine fetches the same windows and keeps nothing.

    python benchmarks/bench_backfill.py [--components 10] [--days 366]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import anyio
from _common import machine, simulator_process, table

from locus_async import LocusClient
from locus_async.locus.backfill import Backfill, BackfillSpec
from locus_async.simulator import DEFAULT_ACCOUNT

COMPONENTS = (54369, 54370, 54371, 54372, 54380, 54381, 54382, 54400, 54401, 54402)


class Discarding(Backfill):
    """The same engine, keeping nothing: what a pure in-memory fetch costs the slot."""

    def _write(self, task: object, series: object) -> None:
        return None


async def child(url: str, mode: str, out: str, components: int, days: int) -> dict[str, object]:
    auth = DEFAULT_ACCOUNT.provider()
    start = datetime(2024, 1, 1)
    spec = BackfillSpec(
        fields=("W_avg", "Wh_sum"),
        start=start,
        end=start + timedelta(days=days),
        tz="UTC",
        gran="1min",
        components=COMPONENTS[:components],
    )
    engine = Backfill if mode == "parquet" else Discarding
    async with LocusClient(auth=auth, base_url=url) as client:
        result = await engine(client, spec, out).run()
    return {
        "mode": mode,
        "windows": result.windows_done,
        "rows": result.rows,
        "requests": result.requests,
        "slot_busy": result.slot_busy,
        "elapsed": result.elapsed,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--components", type=int, default=10)
    parser.add_argument("--days", type=int, default=366)
    parser.add_argument("--child", nargs=3, metavar=("URL", "MODE", "OUT"))
    args = parser.parse_args()
    if args.child:
        url, mode, out = args.child
        print(json.dumps(anyio.run(child, url, mode, out, args.components, args.days)))
        return
    rows = []
    with simulator_process(allowance=1, latency=0.02) as url:
        for mode in ("parquet", "discard"):  # parquet first: the discarding run gets warm caches
            out = tempfile.mkdtemp(prefix=f"bench-{mode}-")
            try:
                done = subprocess.run(
                    [sys.executable, __file__, "--child", url, mode, out,
                     "--components", str(args.components), "--days", str(args.days)],
                    check=True, capture_output=True, text=True,
                )  # fmt: skip
                report = json.loads(done.stdout.strip().splitlines()[-1])
                size = sum(p.stat().st_size for p in Path(out).glob("*.parquet"))
            finally:
                shutil.rmtree(out, ignore_errors=True)
            rows.append(
                (
                    "write Parquet (atomic files)" if mode == "parquet" else "fetch and discard",
                    report["windows"],
                    f"{report['rows']:,}",
                    report["requests"],
                    f"{report['elapsed']:.1f}",
                    f"{report['slot_busy']:.1%}",
                    f"{report['peak_rss_mb']:.0f}",
                    f"{size / 2**20:.0f} MiB" if mode == "parquet" else "-",
                )
            )
    print(
        f"Machine: {machine()}; {args.components} components x {args.days} days of 1min, "
        "20 ms latency\n"
    )
    print(
        table(
            ["run", "windows", "rows", "requests", "wall s", "slot busy", "peak RSS MB", "on disk"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
