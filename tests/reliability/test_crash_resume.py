"""Crash and resume: SIGKILL the CLI at 10 random moments; the dataset still comes out exact."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from locus_async.simulator import Faults, Simulator
from tests.datasets import finished_windows, temporaries

pytestmark = pytest.mark.sockets

ARGS = [
    "backfill", "--component", "54369", "--component", "54370", "--component", "54380",
    "--component", "54400", "--fields", "W_avg,Wh_sum", "--start", "2024-01-01T00:00:00",
    "--end", "2024-10-01T00:00:00",
    "--tz", "Europe/Berlin", "--gran", "5min",
]  # fmt: skip


def _start(url: str, out: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, **Simulator.environment(url)}
    return subprocess.Popen(
        [sys.executable, "-m", "locus_async", *ARGS, "--out", str(out), *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _finished(out: Path) -> int:
    return finished_windows(out, "Europe/Berlin")


def _wait(process: subprocess.Popen[bytes], done: Callable[[], bool]) -> None:
    """Poll for progress; fail (not hang) if the run ends first or never gets there."""
    deadline = time.monotonic() + 300  # a hang guard only, far beyond any run
    while not done():
        assert process.poll() is None, "the run ended before the kill point"
        assert time.monotonic() < deadline, "no progress in 300 s"
        time.sleep(0.002)


def _rows(out: Path) -> list[tuple[object, ...]]:
    table = pq.read_table(out)
    return sorted(
        zip(*(table.column(c).to_pylist() for c in ("id", "ts", "W_avg", "Wh_sum")), strict=True)
    )


def test_ten_sigkills_then_resume_equal_an_uninterrupted_run(tmp_path: Path) -> None:
    """Killed at 10 random moments of its work and resumed each time: identical rows, no
    duplicates, no temporary file left, every run skipping what was already written."""
    rng = random.Random(20241103)
    sim = Simulator(faults=Faults(latency=0.2))
    crashed, clean = tmp_path / "crashed", tmp_path / "clean"
    kills = []
    with sim.serve() as server:
        for kill in range(10):
            files, requests = _finished(crashed), len(sim.stats.data_windows)
            process = _start(server.url, crashed)
            # Kill on observed progress, never on a timer: even kills once 1-2 more windows
            # are on disk (mid-write of the next), odd ones once 1-3 more data requests
            # reached the server (mid-exchange).
            if kill % 2 == 0:
                target = files + rng.randint(1, 2)
                _wait(process, lambda: _finished(crashed) >= target)  # noqa: B023
            else:
                target = requests + rng.randint(1, 3)
                _wait(process, lambda: len(sim.stats.data_windows) >= target)  # noqa: B023
            process.send_signal(signal.SIGKILL)
            process.wait(30)
            kills.append(_finished(crashed))
        finish = _start(server.url, crashed, "--json")
        stdout, stderr = finish.communicate(timeout=180)
        assert finish.returncode == 0, stderr.decode()
        summary = json.loads(stdout)
        straight = _start(server.url, clean)
        straight.communicate(timeout=180)
        assert straight.returncode == 0
    total = summary["windows_total"]
    assert kills == sorted(kills)  # progress is never lost
    assert 0 < kills[-1] < total  # the last kill still interrupted real work
    assert summary["windows_skipped"] == kills[-1]
    assert summary["windows_written"] == total - kills[-1]
    crashed_rows = _rows(crashed)
    assert crashed_rows == _rows(clean)
    assert len({(r[0], r[1]) for r in crashed_rows}) == len(crashed_rows)
    assert not list(crashed.glob(".tmp-*"))
    assert not temporaries(crashed)
