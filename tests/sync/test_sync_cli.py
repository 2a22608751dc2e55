"""``locus-async backfill --end now`` and ``sync``: summaries, --plan, --every with SIGTERM,
and SIGKILLs between and during syncs over loopback."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from locus_async.cli import main
from locus_async.simulator import SimClock, Simulator, Timeline
from tests.datasets import checkpoint_path, snapshot, temporaries

T0 = datetime(2024, 6, 10, 12, tzinfo=UTC).timestamp()
BACKFILL = [
    "backfill", "--site-components", "3393714", "--fields", "W_avg,Wh_sum,POA_avg",
    "--start", "-12d", "--end", "now", "--tz", "UTC", "--gran", "15min",
]  # fmt: skip


def _now(clock: SimClock) -> list[str]:
    return ["--now", datetime.fromtimestamp(clock(), UTC).isoformat()]


def _cli(argv: list[str], sim: Simulator, clock: SimClock) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(
        [*argv, *_now(clock)], env=Simulator.environment("http://localhost"), stdout=out,
        stderr=err, transport=sim.transport(),
    )  # fmt: skip
    return code, out.getvalue(), err.getvalue()


def test_sync_needs_no_arguments_and_its_summary_adds_two_keys(tmp_path: Path) -> None:
    """backfill --start -12d --end now, then sync --out alone: same summary keys plus
    windows_provisional and windows_refreshed; no row past now is stored."""
    clock = SimClock(T0)
    sim = Simulator(clock=clock, timeline=Timeline(lags={54370: 7200}))
    out = tmp_path / "ds"
    code, stdout, err = _cli([*BACKFILL, "--out", str(out), "--json"], sim, clock)
    assert code == 0, err
    first = json.loads(stdout)
    clock.advance(900)
    code, stdout, err = _cli(["sync", "--out", str(out), "--json"], sim, clock)
    assert code == 0, err
    second = json.loads(stdout)
    assert set(first) | {"windows_provisional", "windows_refreshed"} <= set(second)
    assert second["windows_provisional"] >= 5
    assert second["windows_refreshed"] == second["windows_written"]
    assert "refreshed" in err
    table = pq.read_table(out)
    assert max(table.column("ts").to_pylist()).timestamp() < clock()


def test_plan_prints_the_run_and_sends_no_data_request(tmp_path: Path) -> None:
    """sync --plan: entities with their fields, windows by kind, requests and an estimate;
    the server sees no data request and the directory is unchanged."""
    clock = SimClock(T0)
    sim = Simulator(clock=clock)
    out = tmp_path / "ds"
    assert _cli([*BACKFILL, "--out", str(out)], sim, clock)[0] == 0
    clock.advance(3600)
    before = snapshot(out)
    sim.reset_stats()
    code, stdout, err = _cli(["sync", "--out", str(out), "--plan"], sim, clock)
    assert code == 0, err
    assert sim.stats.data_windows == []
    assert snapshot(out) == before
    assert "component 54373: POA_avg" in stdout
    assert "component 54369: W_avg,Wh_sum" in stdout
    assert "requests: 5 data requests, about" in stdout
    code, stdout, _ = _cli(["sync", "--out", str(out), "--plan", "--json"], sim, clock)
    assert json.loads(stdout)["windows_provisional"] == 5


def test_sync_without_a_dataset_says_how_to_start_one(tmp_path: Path) -> None:
    """sync into a directory with no checkpoint: exit 2 and one line naming backfill."""
    clock = SimClock(T0)
    code, _, err = _cli(["sync", "--out", str(tmp_path / "none")], Simulator(clock=clock), clock)
    assert code == 2
    assert "start one with backfill" in err
    assert len(err.strip().splitlines()) == 1


def test_bad_durations_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--every, --lookback and --max-lag take 5m, 7d...: anything else exits 2."""
    clock = SimClock(T0)
    for flag in ("--every", "--lookback", "--max-lag"):
        code, _, _ = _cli(["sync", "--out", str(tmp_path), flag, "5 min"], Simulator(), clock)
        assert code == 2
        assert "is not a duration such as" in capsys.readouterr().err


# -- over loopback, as cron and services run it ----------------------------------------


def _start(url: str, argv: list[str], clock: SimClock) -> subprocess.Popen[bytes]:
    env = {**os.environ, **Simulator.environment(url)}
    return subprocess.Popen(
        [sys.executable, "-m", "locus_async", *argv, *_now(clock)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _wait(process: subprocess.Popen[bytes], done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 300  # a hang guard only
    while not done():
        assert process.poll() is None, process.communicate()[1].decode()
        assert time.monotonic() < deadline, "no progress in 300 s"
        time.sleep(0.002)


def _wait_idle(sim: Simulator) -> None:
    deadline = time.monotonic() + 60  # a hang guard only
    while sum(sim.stats.in_flight.values()):
        assert time.monotonic() < deadline, "a request never ended"
        time.sleep(0.002)


def _rows(out: Path) -> list[tuple[object, ...]]:
    table = pq.read_table(out)
    names = ("id", "ts", "W_avg", "Wh_sum", "POA_avg")
    return sorted(zip(*(table.column(c).to_pylist() for c in names), strict=True))


def _truth(sim: Simulator, moment: float) -> list[tuple[object, ...]]:
    rows = []
    for ident in range(54369, 54374):
        fields = ["POA_avg"] if ident == 54373 else ["W_avg", "Wh_sum"]
        truth = sim.ground_truth(
            "components", ident, fields=fields, start=datetime(2024, 5, 29, 12, tzinfo=UTC),
            end=datetime(2024, 8, 1, tzinfo=UTC), tz="UTC", gran="15min", as_of=moment,
        )  # fmt: skip
        for row in truth:
            if any(row[f] is not None for f in fields):
                values = (row.get("W_avg"), row.get("Wh_sum"), row.get("POA_avg"))
                rows.append((row["id"], row["ts"].astimezone(UTC), *values))
    return sorted(rows)


@pytest.mark.sockets
def test_sigkills_between_and_during_syncs_leave_the_servers_data(tmp_path: Path) -> None:
    """Backfill, then syncs with the clock moved, lag, revisions and a late component,
    each killed at once, mid-run, or left to finish: a final sync's dataset equals the
    server's data as of then, without duplicates, temporaries or rows past now."""
    clock = SimClock(T0)
    timeline = Timeline(
        lags={54370: 4 * 3600}, default_lag=300, upload_every=900, revision_share=0.1,
        revision_delay=3 * 3600, appears={54372: T0 + 5 * 3600},
    )  # fmt: skip
    from locus_async.simulator import Faults

    sim = Simulator(clock=clock, timeline=timeline, faults=Faults(latency=0.05))
    out = tmp_path / "ds"
    with sim.serve() as server:
        first = _start(server.url, [*BACKFILL, "--out", str(out), "--lookback", "2d"], clock)
        assert first.wait(180) == 0, first.communicate()[1].decode()
        for step, kill in enumerate(["during", "between", "during", "finish", "during"]):
            clock.advance([1800, 3 * 3600, 6 * 3600, 900, 86_400][step])
            requests = len(sim.stats.data_windows)
            process = _start(server.url, ["sync", "--out", str(out), "--lookback", "2d"], clock)
            if kill == "during":
                _wait(process, lambda: len(sim.stats.data_windows) >= requests + 2)  # noqa: B023
                process.send_signal(signal.SIGKILL)
            elif kill == "between":
                process.send_signal(signal.SIGKILL)
            process.wait(180)
            # A killed run's last request may still be in progress on the server (one at
            # a time per account): the next run starts once it ended.
            _wait_idle(sim)
        final = _start(server.url, ["sync", "--out", str(out), "--lookback", "2d", "--json"], clock)
        stdout, stderr = final.communicate(timeout=180)
        assert final.returncode == 0, stderr.decode()
    rows = _rows(out)
    assert rows == _truth(sim, clock())
    assert len({(r[0], r[1]) for r in rows}) == len(rows)
    assert not temporaries(out)
    assert json.loads(stdout)["complete"] is True


@pytest.mark.sockets
def test_every_keeps_syncing_and_sigterm_stops_it_cleanly(tmp_path: Path) -> None:
    """sync --every 1s --json prints one JSON line per sync; SIGTERM stops it with 143 and
    a checkpoint that is not left "running"."""
    clock = SimClock(T0)
    sim = Simulator(clock=clock)
    out = tmp_path / "ds"
    with sim.serve() as server:
        first = _start(server.url, [*BACKFILL, "--out", str(out)], clock)
        assert first.wait(180) == 0
        checkpoint = checkpoint_path(out)
        process = _start(server.url, ["sync", "--out", str(out), "--every", "1s", "--json"], clock)
        stamps: set[str] = set()

        def three_syncs() -> bool:
            # The backfill's own write, then one per finished sync: once the third sync has
            # written its checkpoint, the first two have printed their lines.
            try:
                body = json.loads(checkpoint.read_text())
            except ValueError:
                return False
            if body["state"] != "running":
                stamps.add(body["updated"] + str(checkpoint.stat().st_mtime_ns))
            return len(stamps) >= 4

        _wait(process, three_syncs)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr.decode()
    lines = [json.loads(line) for line in stdout.decode().splitlines()]
    assert len(lines) >= 2
    assert all(line["complete"] for line in lines)
    assert "SIGTERM: stopping" in stderr.decode()
    assert json.loads(checkpoint.read_text())["state"] in ("complete", "interrupted")
