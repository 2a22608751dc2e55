"""A fleet-sized dataset planned and resumed (issue 14): 5,000 components x 5 years of 5min
is 300,000 windows.

Goals: ``--plan`` (the CLI, a new process, explicit component ids) in under 5 s sending no
request at all; ``Backfill.plan()`` and a resume with everything done in under 5 s each,
the resume sending only its token request; memory that does not grow with the number of
finished windows (5 years against 1 year of the same fleet) beyond the index, which holds a
few numbers per entity.

The finished dataset's checkpoint is written by the benchmark (every window finished:
fetching 300,000 windows from the simulator would take hours); the runs then read it as
any run reads a dataset. Each measurement runs in a new process (its peak RSS is its own).

    python benchmarks/bench_scale.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

START = datetime(2020, 1, 1, tzinfo=UTC)


def build(out: Path, components: int, years: int) -> int:
    """Write a finished dataset's checkpoint; the number of windows it holds."""
    from locus_async._shell.store import open_store
    from locus_async.locus._core.freshness import dataset_windows
    from locus_async.locus._core.layout import Ranges
    from locus_async.locus._core.windows import DEFAULT_LIMITS, parse_granularity
    from locus_async.locus.checkpoint import Checkpoint, entity_key
    from locus_async.locus.dataset import DatasetFiles

    start = int(START.timestamp())
    end = int(START.replace(year=START.year + years).timestamp())
    gran = parse_granularity("5min")
    from zoneinfo import ZoneInfo

    windows = dataset_windows(
        [start], end, now=end, tz=ZoneInfo("UTC"), gran=gran, limit=DEFAULT_LIMITS[gran]
    )
    ids = list(range(1, components + 1))
    dataset = Checkpoint(
        fields=("W_avg",), gran="5min", tz="UTC", format="parquet", starts=[start], end=end,
        entities={"components": ids, "sites": [], "site_components": [], "partner_components": []},
        node_types=[], state="complete", found=[("components", i) for i in ids],
        available={entity_key("components", i): ["W_avg"] for i in ids},
        frontiers={entity_key("components", i): end - 300 for i in ids},
        done={entity_key("components", i): Ranges([(start, end)]) for i in ids},
        window_seconds=0.5,
    )  # fmt: skip
    store = open_store(out)
    with store.lock():
        DatasetFiles(store).save(DatasetFiles.encode(dataset))
    return len(windows) * components


def child(kind: str, out: str, components: int, years: int) -> None:
    """One measurement in this process: prints a JSON line."""
    import anyio

    from locus_async import Backfill, BackfillSpec
    from locus_async.simulator import Simulator

    end = START.replace(year=START.year + years)
    spec = BackfillSpec(
        fields="W_avg", start=START, end=end, tz="UTC", gran="5min",
        components=tuple(range(1, components + 1)),
    )  # fmt: skip
    sim = Simulator()

    async def main() -> dict[str, object]:
        async with sim.client() as client:
            job = Backfill(client, spec, out, compact=False)
            began = time.perf_counter()
            if kind == "plan":
                plan = await job.plan()
                seconds = time.perf_counter() - began
                return {"seconds": seconds, "windows": plan.windows_total,
                        "done": plan.windows_done, "requests_planned": plan.requests}  # fmt: skip
            result = await job.run()
            seconds = time.perf_counter() - began
            return {"seconds": seconds, "windows": result.windows_total,
                    "done": result.windows_skipped, "written": result.windows_done}  # fmt: skip

    found = anyio.run(main)
    found["requests_sent"] = len(sim.stats.log)
    found["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(found))


def measure(kind: str, out: Path, components: int, years: int) -> dict[str, object]:
    line = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(out), str(components), str(years)],
        capture_output=True, text=True, check=True,
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    result: dict[str, object] = json.loads(line)
    return result


def cli_plan(out: Path, components: int, years: int) -> dict[str, object]:
    """``locus-async backfill ... --plan --json`` in a new process, against a served
    simulator (which counts what it was sent)."""
    from locus_async.simulator import Simulator

    sim = Simulator()
    end = START.replace(year=START.year + years)
    args = [sys.executable, "-m", "locus_async", "backfill", "--fields", "W_avg",
            "--start", START.isoformat(), "--end", end.isoformat(), "--tz", "UTC",
            "--gran", "5min", "--out", str(out), "--plan", "--json"]  # fmt: skip
    for ident in range(1, components + 1):
        args += ["--component", str(ident)]
    with sim.serve() as server:
        env = {**os.environ, **Simulator.environment(server.url)}
        began = time.perf_counter()
        process = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
        seconds = time.perf_counter() - began
    plan = json.loads(process.stdout)
    return {"seconds": seconds, "windows": plan["windows_total"], "done": plan["windows_done"],
            "requests_planned": plan["requests"], "requests_sent": len(sim.stats.log)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--components", type=int, default=5000)
    parser.add_argument("--years", type=int, default=5)
    args = parser.parse_args()
    print(f"# bench_scale: Python {platform.python_version()}, {os.cpu_count()} CPUs")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for years in (1, args.years):
            out = Path(tmp) / f"fleet-{years}y"
            windows = build(out, args.components, years)
            for kind in ("plan", "resume"):
                found = measure(kind, out, args.components, years)
                rows.append((f"{kind} (Python API)", years, windows, found))
            rows.append(
                ("--plan (CLI, new process)", years, windows, cli_plan(out, args.components, years))
            )
    print(f"\n{args.components} components, 5min, every window finished\n")
    print("| run | years | windows | done | seconds | requests sent | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, years, windows, found in rows:
        rss = found.get("peak_rss_mb")
        print(
            f"| {name} | {years} | {windows:,} | {found['done']:,} | {found['seconds']:.2f} | "
            f"{found['requests_sent']} | {'' if rss is None else f'{rss:.0f}'} |"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        main()
