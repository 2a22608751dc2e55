"""--out is guarded: one run at a time, a checkpoint checked as a whole and repairable,
only our own temporary files touched, nothing created before the credentials and the
entities are known, and an interrupted run never marked complete."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pyarrow.parquet as pq
import pytest

from locus_async import Backfill, BackfillSpec, OutputLocked
from locus_async._shell.store import LOCK_NAME, OWNER_NAME, open_store
from locus_async.simulator import Account, Faults, Simulator
from tests.cli.test_cli import ACCOUNT, BACKFILL, _dataset, _env, _run, _truth
from tests.datasets import (
    checkpoint,
    checkpoint_path,
    data_names,
    finished_windows,
    state_dir,
    temporaries,
)


@pytest.fixture
def cli_sim() -> Simulator:
    return Simulator(accounts=[ACCOUNT])


# 11 months of 5min for two components: 22 windows, enough to be mid-run when signalled.
LONG = [a if a != "2024-10-01T00:00:00" else "2024-01-01T00:00:00" for a in BACKFILL]


def _await_first_window(process: subprocess.Popen[bytes], out: Path) -> None:
    """Wait (on progress, not on a timer) until the run has written a window."""
    while not _files(out):
        assert process.poll() is None, "the run ended before writing a window"
        time.sleep(0.005)


def _files(out: Path) -> list[str]:
    return data_names(out)


def _one_error_line(err: str) -> None:
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("locus-async")]) == 1


# -- one run at a time ------------------------------------------------------------------


def test_a_second_run_into_a_locked_directory_is_refused_naming_the_holder(
    tmp_path: Path,
) -> None:
    """While a backfill runs, a second one into the same --out (other fields even) exits 5
    at once, naming host, pid and start time, sends no data request and writes nothing;
    the first then completes exactly."""
    out = tmp_path / "out"
    first_sim, second_sim = Simulator(accounts=[ACCOUNT]), Simulator(accounts=[ACCOUNT])
    seen: dict[str, Any] = {}

    def second_run() -> None:
        other = [a if a != "W_avg,Wh_sum" else "W_avg" for a in BACKFILL]
        seen["checkpoint_before"] = checkpoint_path(out).read_bytes()
        seen["result"] = _run([*other, "--out", str(out)], second_sim)
        seen["checkpoint_after"] = checkpoint_path(out).read_bytes()

    calls = 0

    def progress(_: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:  # the first run holds the lock and has begun its windows
            thread = threading.Thread(target=second_run)
            thread.start()
            thread.join()

    spec = BackfillSpec(
        fields="W_avg,Wh_sum",
        start="2024-10-01T00:00:00",
        end="2024-12-01T00:00:00",
        tz="America/Los_Angeles",
        gran="5min",
        components=(54369, 54370),
    )

    async def first() -> None:
        async with first_sim.client(ACCOUNT) as client:
            result = await Backfill(client, spec, out, progress=progress).run()
            assert result.complete

    anyio.run(first)
    code, _, err = seen["result"]
    assert code == 5
    assert f"pid {os.getpid()} on {socket.gethostname()}, started 20" in err
    _one_error_line(err)
    assert second_sim.stats.data_windows == []  # refused before any data request
    assert seen["checkpoint_after"] == seen["checkpoint_before"]  # not touched
    assert _dataset(out) == _truth(first_sim)
    assert not (state_dir(out) / OWNER_NAME).exists()  # the holder record goes with the lock


def test_python_api_refuses_a_locked_directory_with_the_holder(tmp_path: Path) -> None:
    """``OutputLocked`` carries what the holder recorded."""
    out = tmp_path / "out"
    sim = Simulator()
    spec = BackfillSpec(
        fields=["Wh_sum"], start="2024-01-01", end="2024-01-03", tz="UTC", gran="hourly",
        components=[54369],
    )  # fmt: skip

    async def main() -> None:
        with open_store(out).lock():
            async with sim.client() as client:
                with pytest.raises(OutputLocked) as caught:
                    await Backfill(client, spec, out).run()
        assert caught.value.holder["pid"] == os.getpid()
        async with sim.client() as client:  # released: the same run now goes through
            assert (await Backfill(client, spec, out).run()).complete

    anyio.run(main)


@pytest.mark.sockets
def test_a_stale_lock_of_a_killed_run_never_blocks_the_resume(tmp_path: Path) -> None:
    """SIGKILL leaves the lock file and the holder record behind; the next run takes the
    lock at once and completes exactly."""
    sim = Simulator(accounts=[ACCOUNT], faults=Faults(latency=0.05))
    out = tmp_path / "out"
    with sim.serve() as server:
        env = {**os.environ, **_env(server.url)}
        process = subprocess.Popen(
            [sys.executable, "-m", "locus_async", *LONG, "--out", str(out)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _await_first_window(process, out)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        assert (state_dir(out) / LOCK_NAME).exists()
        assert json.loads((state_dir(out) / OWNER_NAME).read_text())["pid"] == process.pid
        # The killed run's last request is still in progress on the server (one at a time
        # per account): resume once it ended, as the retry backoff (zero in tests) would.
        deadline = time.monotonic() + 60  # a hang guard only
        while sum(sim.stats.in_flight.values()):
            assert time.monotonic() < deadline
            time.sleep(0.002)
        code, _, err = _run([*LONG, "--out", str(out)], sim)
    assert code == 0, err
    # 22 windows, final, compacted at the end: one file in each of the 11 months
    files = _files(out)
    assert len(files) == 11
    assert all(name.split("/")[1].startswith("part-") for name in files)
    assert checkpoint(out)["state"] == "complete"


# -- the checkpoint ---------------------------------------------------------------------

CORRUPT = [
    ("null", b"null"),
    ("a number", b"42"),
    ("a list", b"[1, 2]"),
    ("an empty object", b"{}"),
    ("cut JSON", b'{"version": 1, "state": "comp'),
    ("not UTF-8", b"\xff\xfe\x00garbage"),
    ("a future version", None),
    ("an unknown state", None),
    ("a dataset of the wrong shape", None),
    ("failed of the wrong shape", None),
    ("a wrong range type", None),
    ("a missing part", None),
]


def _corrupt(valid: dict[str, Any], case: str) -> bytes:
    body = json.loads(json.dumps(valid))
    if case == "a future version":
        body["version"] = 99
    elif case == "an unknown state":
        body["state"] = "done?"
    elif case == "a dataset of the wrong shape":
        body["dataset"] = ["fields"]
    elif case == "failed of the wrong shape":
        body["failed"] = [{"kind": "components"}]
    elif case == "a wrong range type":
        body["range"]["starts"] = ["yesterday"]
    elif case == "a missing part":
        del body["provisional"]
    return json.dumps(body).encode()


@pytest.mark.parametrize(("case", "raw"), CORRUPT, ids=[c for c, _ in CORRUPT])
def test_a_corrupt_checkpoint_is_one_line_then_repair_rebuilds_it(
    case: str, raw: bytes | None, cli_sim: Simulator, tmp_path: Path
) -> None:
    """Any broken checkpoint: exit 2 with one line pointing at --repair, nothing touched;
    --repair then keeps every finished file and fetches only what is missing."""
    out = tmp_path / "out"
    cli_sim.faults = Faults(server_errors=1.0, paths=("/v3/components/54370/",))
    code = _run([*BACKFILL, "--out", str(out), "--no-compact"], cli_sim)[0]
    assert code == 4  # 54370's windows failed
    cli_sim.faults = Faults()
    finished = _files(out)
    assert finished
    assert all("54369" in name for name in finished)
    path = checkpoint_path(out)
    path.write_bytes(raw if raw is not None else _corrupt(json.loads(path.read_text()), case))
    before = {name: (out / name).stat().st_mtime_ns for name in finished}
    code, _, err = _run([*BACKFILL, "--out", str(out)], cli_sim)
    assert code == 2
    assert "--repair" in err
    _one_error_line(err)
    assert {name: (out / name).stat().st_mtime_ns for name in finished} == before
    windows = len(cli_sim.stats.data_windows)
    repair = [*BACKFILL, "--out", str(out), "--repair", "--json", "--no-compact"]
    code, stdout, err = _run(repair, cli_sim)
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["windows_skipped"] == len({name.split("/")[1] for name in finished})
    assert len(cli_sim.stats.data_windows) - windows == summary["windows_written"]
    assert {name: (out / name).stat().st_mtime_ns for name in finished} == before
    assert _dataset(out) == _truth(cli_sim)
    assert json.loads(path.read_text())["state"] == "complete"


def test_a_lost_checkpoint_points_at_repair_which_adopts_the_files(
    cli_sim: Simulator, tmp_path: Path
) -> None:
    """Data files without a checkpoint: exit 2 naming --repair (not "throw it all away");
    with --repair nothing is fetched again."""
    out = tmp_path / "out"
    assert _run([*BACKFILL, "--out", str(out)], cli_sim)[0] == 0
    checkpoint_path(out).unlink()
    code, _, err = _run([*BACKFILL, "--out", str(out)], cli_sim)
    assert code == 2
    assert "--repair" in err
    windows = len(cli_sim.stats.data_windows)
    code, stdout, _ = _run([*BACKFILL, "--out", str(out), "--repair", "--json"], cli_sim)
    assert code == 0
    assert json.loads(stdout)["windows_written"] == 0
    assert len(cli_sim.stats.data_windows) == windows


def test_repair_refetches_a_damaged_piece(cli_sim: Simulator, tmp_path: Path) -> None:
    """--repair removes a piece that does not read back (its window is fetched again) and
    keeps the rest."""
    out = tmp_path / "out"
    assert _run([*BACKFILL, "--out", str(out), "--no-compact"], cli_sim)[0] == 0
    checkpoint_path(out).unlink()
    damaged = out / _files(out)[0]
    damaged.write_bytes(b"PAR1 not really")
    code, stdout, err = _run([*BACKFILL, "--out", str(out), "--repair", "--json"], cli_sim)
    assert code == 0, err
    assert json.loads(stdout)["windows_written"] == 1
    assert _dataset(out) == _truth(cli_sim)


# -- our own temporary files only; nothing before authentication -----------------------


def test_only_our_own_temporary_files_are_removed(cli_sim: Simulator, tmp_path: Path) -> None:
    """A user's ``notes.txt`` in the state's tmp/ survives; temporary files a crash of ours
    left there go."""
    out = tmp_path / "out"
    tmp = state_dir(out) / "tmp"
    tmp.mkdir(parents=True)
    mine = tmp / "notes.txt"
    mine.write_text("keep me")
    ours = tmp / ("a" * 32 + ".tmp")
    ours.write_bytes(b"half")
    assert _run([*BACKFILL, "--out", str(out)], cli_sim)[0] == 0
    assert mine.read_text() == "keep me"
    assert not ours.exists()


def test_nothing_is_created_when_authentication_fails(tmp_path: Path) -> None:
    """A refused password: exit 3 and no --out, no checkpoint."""
    sim = Simulator(accounts=[ACCOUNT])
    wrong = Account(
        client_id=ACCOUNT.client_id, client_secret=ACCOUNT.client_secret,
        username=ACCOUNT.username, password="not-the-password",
    )  # fmt: skip
    out = tmp_path / "out"
    code, _, err = _run([*BACKFILL, "--out", str(out)], sim, env=_env(account=wrong))
    assert code == 3
    _one_error_line(err)
    assert not out.exists()
    assert sim.stats.data_windows == []


def test_nothing_is_created_when_a_static_bearer_token_is_refused(tmp_path: Path) -> None:
    """A caller's own (wrong) bearer token can only be checked by a request: the first
    window is fetched before --out is made, so a 401 leaves nothing behind, exit 3."""
    sim = Simulator(accounts=[ACCOUNT])
    out = tmp_path / "out"
    env = {"LOCUS_ACCESS_TOKEN": "not-a-token-of-this-server", "LOCUS_BASE_URL": "http://localhost"}
    code, _, err = _run([*BACKFILL, "--out", str(out)], sim, env=env)
    assert code == 3
    _one_error_line(err)
    assert not out.exists()
    assert "not-a-token-of-this-server" not in err


def test_the_first_window_fetched_before_out_exists_is_kept(
    cli_sim: Simulator, tmp_path: Path
) -> None:
    """The window fetched to prove the credentials is written, not fetched twice."""
    out = tmp_path / "out"
    code, stdout, _ = _run([*BACKFILL, "--out", str(out), "--json"], cli_sim)
    assert code == 0
    summary = json.loads(stdout)
    assert summary["windows_written"] == summary["windows_total"] == 4
    assert len(cli_sim.stats.data_windows) == 4  # one request per window, none twice
    assert _dataset(out) == _truth(cli_sim)


def test_a_first_window_that_fails_is_not_fetched_twice(tmp_path: Path) -> None:
    """On a new --out the first window proves the credentials; if it fails for another
    reason it is recorded as that window's failure, not fetched (and retried) again."""
    sim = Simulator(
        accounts=[ACCOUNT], faults=Faults(server_errors=1.0, paths=("/v3/components/54369/",))
    )
    out = tmp_path / "out"
    code, stdout, _ = _run([*BACKFILL, "--out", str(out), "--json"], sim)
    assert code == 4
    summary = json.loads(stdout)
    assert summary["windows_failed"] == 2
    # 1 token grant; dataavailable: 54369's 6 attempts, 54370's 1; 54370's 2 windows;
    # 54369's 2 windows x 6 attempts each
    assert summary["requests"] == 1 + 6 + 1 + 2 + 2 * 6


def test_nothing_is_created_when_no_component_matches(cli_sim: Simulator, tmp_path: Path) -> None:
    """A site whose components are all filtered out: exit 2 saying so, and no --out."""
    out = tmp_path / "out"
    argv = [
        "backfill", "--site-components", "3393714", "--node-type", "NO-SUCH-TYPE",
        "--fields", "Wh_sum", "--start", "2024-01-01T00:00:00", "--end", "2024-01-02T00:00:00",
        "--tz", "UTC", "--gran", "hourly", "--out", str(out),
    ]  # fmt: skip
    code, _, err = _run(argv, cli_sim)
    assert code == 2
    assert "site 3393714 has no components of node type NO-SUCH-TYPE" in err
    assert not out.exists()


def test_an_unwritable_out_is_refused_before_any_request(
    cli_sim: Simulator, tmp_path: Path
) -> None:
    """--out inside a directory nobody may write (immutable for root, read-only for
    others): exit 2, one line, no request sent, nothing created."""
    parent = tmp_path / "locked-parent"
    parent.mkdir()
    as_root = os.geteuid() == 0
    if as_root:
        subprocess.run(["chattr", "+i", str(parent)], check=True)
    else:
        parent.chmod(0o555)
    try:
        code, _, err = _run([*BACKFILL, "--out", str(parent / "out")], cli_sim)
    finally:
        if as_root:
            subprocess.run(["chattr", "-i", str(parent)], check=True)
        else:
            parent.chmod(0o755)
    assert code == 2, err
    assert "is not writable" in err
    _one_error_line(err)
    assert list(parent.iterdir()) == []
    assert cli_sim.stats.data_windows == []


@pytest.mark.parametrize(
    ("out", "words"),
    [("", "must name a directory; it is empty"), ("   ", "it is empty"), (None, "is a file")],
    ids=["empty", "blank", "a file"],
)
def test_an_unusable_out_is_refused_before_any_request(
    out: str | None, words: str, cli_sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--out '' (which would mean the current directory) or a file: exit 2, one line,
    nothing written anywhere, no request."""
    monkeypatch.chdir(tmp_path)
    if out is None:
        (tmp_path / "a-file").write_text("mine")
        out = "a-file"
    code, _, err = _run([*BACKFILL, "--out", out], cli_sim)
    assert code == 2
    assert words in err
    _one_error_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["a-file"] if out == "a-file" else [])
    assert cli_sim.stats.data_windows == []


# -- an interrupted run ------------------------------------------------------------------


def test_a_cancelled_backfill_is_marked_interrupted_and_resumes(tmp_path: Path) -> None:
    """Cancelled after its second window (what Ctrl-C does to the task): the checkpoint
    says interrupted, never complete, and the next run finishes the rest exactly."""
    sim = Simulator()
    out = tmp_path / "out"
    spec = BackfillSpec(
        fields="W_avg,Wh_sum", start="2024-01-01T00:00:00", end="2024-12-01T00:00:00",
        tz="America/Los_Angeles", gran="5min", components=[54369, 54370],
    )  # fmt: skip

    async def main() -> None:
        async with sim.client() as client:
            with anyio.CancelScope() as scope:

                def progress(p: Any) -> None:
                    if p.windows_done == 2:
                        scope.cancel()

                await Backfill(client, spec, out, progress=progress).run()
            assert scope.cancelled_caught
            assert json.loads(checkpoint_path(out).read_text())["state"] == "interrupted"
            # 2, plus at most one more per other worker (3 workers) whose write was under
            # way: a file being written is finished, never left half
            written = finished_windows(out, "America/Los_Angeles")
            assert 2 <= written <= 4
            assert not temporaries(out)
            result = await Backfill(client, spec, out).run()
            assert result.complete
            assert result.windows_skipped == written

    anyio.run(main)
    assert len(_files(out)) == 11  # 22 windows, compacted: one file per month
    table = pq.read_table(out)
    assert (
        len(set(zip(table.column("id").to_pylist(), table.column("ts").to_pylist(), strict=True)))
        == table.num_rows
    )


@pytest.mark.sockets
def test_ctrl_c_exits_130_and_leaves_the_checkpoint_interrupted(tmp_path: Path) -> None:
    """SIGINT to the CLI once a window is written: exit 130, state interrupted."""
    sim = Simulator(accounts=[ACCOUNT], faults=Faults(latency=0.05))
    out = tmp_path / "out"
    with sim.serve() as server:
        process = subprocess.Popen(
            [sys.executable, "-m", "locus_async", *LONG, "--out", str(out)],
            env={**os.environ, **_env(server.url)},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        _await_first_window(process, out)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err.decode()
    assert json.loads(checkpoint_path(out).read_text())["state"] == "interrupted"
