"""Helpers shared by the benchmarks: a simulator in its own process, timing, tables."""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence

import anyio
import httpx

from locus_async.simulator import DEFAULT_ACCOUNT

TOKEN_FORM = DEFAULT_ACCOUNT.token_form()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def simulator_process(
    *, allowance: int = 1, latency: float = 0.02, solarnetwork: bool = False
) -> Iterator[str]:
    """``python -m locus_async.simulator`` on a free loopback port, in its own process."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "locus_async.simulator",
            "--port",
            str(port),
            "--allowance",
            str(allowance),
            "--latency",
            str(latency),
            *(["--solarnetwork"] if solarnetwork else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/", timeout=1)  # any answer: the server is up
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the simulator process did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def throughput_arguments(parser: argparse.ArgumentParser) -> None:
    """``--requests`` per round and ``--rounds``, as every throughput comparison takes."""
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)


async def rate_of(requests: int, call: Callable[[], Awaitable[object]]) -> float:
    """Requests per second of ``requests`` concurrent ``call()``s (the limiter decides)."""
    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for _ in range(requests):
            group.start_soon(call)
    return requests / (time.perf_counter() - started)


def alternate(
    rounds: int,
    bare: Callable[..., Awaitable[float]],
    ours: Callable[..., Awaitable[float]],
    *args: object,
) -> tuple[list[float], list[float]]:
    """Requests/s of ``bare`` and ``ours`` in alternated rounds (noise hits both alike)."""
    theirs_runs: list[float] = []
    ours_runs: list[float] = []
    for _ in range(rounds):
        theirs_runs.append(anyio.run(bare, *args))
        ours_runs.append(anyio.run(ours, *args))
    return theirs_runs, ours_runs


def machine() -> str:
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return f"{python}, {os.cpu_count()} cores, {platform.machine()}"


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def five_day_body() -> bytes:
    """The simulator's answer for 5 days of 1min of meter 54369 (7,199 rows x 2 fields),
    made in process, without a socket."""
    from locus_async.simulator import Simulator
    from locus_async.simulator._http import SimRequest

    core = Simulator().core
    token = core._issue(core.accounts["demo-client"], with_refresh=False)["access_token"]
    query = (
        "fields=W_avg,Wh_sum&start=2024-03-01T00:00:00&end=2024-03-05T23:59:00"
        "&tz=America/Los_Angeles&gran=1min"
    )
    request = SimRequest(
        "GET", "/v3/components/54369/data", query, {"authorization": f"Bearer {token}"}
    )
    body: bytes = core.handle(request).body
    return body
