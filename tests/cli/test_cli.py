"""The locus-async CLI, in process and as a subprocess over loopback."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from locus_async.cli import main
from locus_async.simulator import Account, Faults, ServedSimulator, Simulator
from tests.datasets import checkpoint, data_files, finished_windows, state_dir

SECRET = "cli-s3cret-7f3a91"
PASSWORD = "cli-p4ssw0rd-c2e8"
ACCOUNT = Account(
    client_id="cli-client", client_secret=SECRET, username="cli@locus.example", password=PASSWORD
)
BACKFILL = [
    "backfill", "--component", "54369", "--component", "54370", "--fields", "W_avg,Wh_sum",
    "--start", "2024-10-01T00:00:00", "--end", "2024-12-01T00:00:00", "--tz", "America/Los_Angeles",
    "--gran", "5min",
]  # fmt: skip


def _env(base_url: str = "http://localhost", account: Account = ACCOUNT) -> dict[str, str]:
    return Simulator.environment(base_url, account)


def _run(
    argv: list[str], sim: Simulator | None = None, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(
        argv,
        env=_env() if env is None else env,
        stdout=out,
        stderr=err,
        transport=sim.transport() if sim is not None else None,
    )
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def cli_sim() -> Simulator:
    return Simulator(accounts=[ACCOUNT])


def _truth(
    sim: Simulator, components: tuple[int, ...] = (54369, 54370)
) -> list[tuple[int, datetime, float | None, float | None]]:
    rows = []
    for component in components:
        truth = sim.ground_truth(
            "components",
            component,
            fields=["W_avg", "Wh_sum"],
            start=datetime(2024, 10, 1),
            end=datetime(2024, 12, 1),
            tz="America/Los_Angeles",
            gran="5min",
        )
        # In UTC: PEP 495 makes times inside a repeated hour unequal across zones.
        rows.extend((r["id"], r["ts"].astimezone(UTC), r["W_avg"], r["Wh_sum"]) for r in truth)
    return sorted(rows, key=lambda r: (r[0], r[1]))


def _dataset(out: Path) -> list[tuple[int, datetime, float | None, float | None]]:
    table = pq.read_table(out)
    assert table.schema.field("ts").type.tz == "UTC"
    rows = zip(*(table.column(c).to_pylist() for c in ("id", "ts", "W_avg", "Wh_sum")), strict=True)
    return sorted(rows, key=lambda r: (r[0], r[1]))


# ------------------------------------------------------------------ help and usage


@pytest.mark.parametrize(
    "command",
    [[], ["check"], ["sites"], ["clients"], ["components"], ["site"], ["available"], ["data"],
     ["alerts"], ["backfill"], ["simulate"], ["demo"]],
)  # fmt: skip
def test_help_everywhere(command: list[str]) -> None:
    """--help works for the program and every subcommand, exit 0."""
    out = io.StringIO()
    saved = sys.stdout
    sys.stdout = out
    try:
        code = main([*command, "--help"], env={})
    finally:
        sys.stdout = saved
    assert code == 0
    assert "usage: locus-async" in out.getvalue()


def test_missing_credentials_exit_2() -> None:
    """No LOCUS_* credentials: exit 2 naming the variables, values never shown."""
    code, _, err = _run(["sites", "--partner", "111"], env={"LOCUS_CLIENT_ID": "x"})
    assert code == 2
    assert "LOCUS_CLIENT_SECRET" in err


def test_wrong_password_exits_3(cli_sim: Simulator) -> None:
    """Authentication failures: exit 3, one line, the password nowhere."""
    env = {**_env(), "LOCUS_PASSWORD": "wrong-password-123"}
    code, out, err = _run(["check"], cli_sim, env)
    assert code == 3
    assert err.startswith("locus-async: authentication failed:")
    assert "wrong-password-123" not in out + err
    assert "Traceback" not in err


def test_api_errors_exit_1_in_one_line(cli_sim: Simulator) -> None:
    """A 404 is one line and exit 1."""
    code, _, err = _run(["site", "1"], cli_sim)
    assert code == 1
    assert err.strip() == "locus-async: NotFound: HTTP 404: Site 1 not found (GET /v3/sites/1)"


# ------------------------------------------------------------------ commands


def test_check(cli_sim: Simulator) -> None:
    """check obtains a token, says who signed in how, what each partner given holds and
    the allowance, without a secret; a partner it cannot reach is named, exit 1."""
    with cli_sim.sync_client(ACCOUNT) as client:
        sites, components = client.partners.sites(111), client.partners.components(111)
    code, out, _ = _run(["check", "--partner", "111"], cli_sim)
    assert code == 0
    assert out.splitlines() == [
        f"credentials accepted: password grant for {ACCOUNT.username} (API client "
        f"{ACCOUNT.client_id})",
        "host: http://localhost",
        "allowance: 1 request at a time (the API's documented); observed 0 x 429 in 4 requests",
        f"partner 111: {len(sites)} sites, 2 clients, {len(components)} components",
    ]
    assert cli_sim.stats.grants["password"] == 2  # the count above, then the check
    assert ACCOUNT.password not in out
    assert ACCOUNT.client_secret not in out
    code, out, _ = _run(["check", "--partner", "999", "--json", "--max-concurrency", "2"], cli_sim)
    summary = json.loads(out)
    assert code == 1
    assert summary["partners"] == [{"partner": 999, "error": summary["partners"][0]["error"]}]
    assert "404" in summary["partners"][0]["error"]
    assert (summary["allowance"], summary["allowance_source"]) == (2, "--max-concurrency")


def test_list_commands(cli_sim: Simulator) -> None:
    """sites, clients, components as tables and as JSON."""
    code, out, _ = _run(["sites", "--partner", "111", "--format", "table"], cli_sim)
    assert code == 0
    assert "Sydney Depot" in out
    assert out.splitlines()[0].split()[:2] == ["id", "name"]
    code, out, _ = _run(["clients", "--partner", "111", "--json"], cli_sim)
    assert sorted(c["id"] for c in json.loads(out)) == [456, 419010]
    code, out, _ = _run(
        ["components", "--partner", "111", "--node-id", "OB.001EC1%", "--json"], cli_sim
    )
    assert {c["node_type"] for c in json.loads(out)} == {"METER"}


def test_site_and_available(cli_sim: Simulator) -> None:
    """site shows the site and its components; available lists fields and granularities."""
    code, out, _ = _run(["site", "3393714"], cli_sim)
    assert code == 0
    assert out.startswith("site 3393714: Test Site")
    assert "WEATHERSTATION" in out
    code, out, _ = _run(["available", "--component", "54373", "--json"], cli_sim)
    assert {b["base_field"] for b in json.loads(out)} == {"POA", "POAh", "TmpAmb"}


def test_data_as_csv_and_json(cli_sim: Simulator) -> None:
    """data prints rows: CSV with a header, JSON with ISO timestamps."""
    args = ["data", "--component", "54369", "--fields", "Wh_sum", "--start", "2024-06-01T00:00:00",
            "--end", "2024-06-02T00:00:00", "--tz", "Europe/Berlin", "--gran", "hourly"]  # fmt: skip
    code, out, _ = _run([*args, "--format", "csv"], cli_sim)
    lines = out.strip().splitlines()
    assert code == 0
    assert lines[0] == "id,ts,Wh_sum"
    assert len(lines) == 25
    assert lines[1].startswith("54369,2024-06-01T00:00:00+02:00,")
    code, out, _ = _run([*args, "--format", "json"], cli_sim)
    assert json.loads(out)[13]["ts"] == "2024-06-01T13:00:00+02:00"


def test_alerts(cli_sim: Simulator) -> None:
    """alerts for a component, filtered."""
    code, out, _ = _run(
        ["alerts", "--component", "54370", "--type", "Device Fault", "--json"], cli_sim
    )
    alerts = json.loads(out)
    assert code == 0
    assert alerts
    assert {a["alert_type"] for a in alerts} == {"Device Fault"}


# ------------------------------------------------------------------ backfill


def test_backfill_writes_the_ground_truth_and_resumes(cli_sim: Simulator, tmp_path: Path) -> None:
    """The contract command: Parquet equal to the ground truth; a rerun sends no data request."""
    out = tmp_path / "out"
    code, stdout, err = _run([*BACKFILL, "--out", str(out), "--json"], cli_sim)
    summary = json.loads(stdout)
    assert code == 0, err
    assert summary["complete"] is True
    assert summary["windows_written"] == 4
    assert _dataset(out) == _truth(cli_sim)
    windows = len(cli_sim.stats.data_windows)
    code, stdout, _ = _run([*BACKFILL, "--out", str(out), "--json"], cli_sim)
    assert code == 0
    assert json.loads(stdout)["windows_skipped"] == 4
    assert len(cli_sim.stats.data_windows) == windows
    assert _dataset(out) == _truth(cli_sim)
    body = checkpoint(out)
    assert body["state"] == "complete"
    assert body["dataset"]["fields"] == ["W_avg", "Wh_sum"]


def test_failed_windows_exit_4_and_are_retried(tmp_path: Path) -> None:
    """Windows that keep failing: exit 4 and listed; the next run fetches only those."""
    sim = Simulator(accounts=[ACCOUNT], faults=Faults(server_errors=1.0, paths=("/v3/",)))
    out = tmp_path / "out"
    code, stdout, err = _run([*BACKFILL, "--out", str(out), "--json"], sim)
    assert code == 4
    assert json.loads(stdout)["windows_failed"] == 4
    assert "run again to retry" in err
    assert len(checkpoint(out)["failed"]) == 4
    sim.faults = Faults()
    code, stdout, _ = _run([*BACKFILL, "--out", str(out), "--json"], sim)
    assert code == 0
    assert json.loads(stdout)["windows_written"] == 4
    assert _dataset(out) == _truth(sim)


def test_a_different_backfill_into_the_same_directory_is_refused(
    cli_sim: Simulator, tmp_path: Path
) -> None:
    """Other fields into the same --out would mix schemas and duplicate rows: exit 2."""
    out = tmp_path / "out"
    assert _run([*BACKFILL, "--out", str(out)], cli_sim)[0] == 0
    other = [a if a != "W_avg,Wh_sum" else "Wh_sum" for a in BACKFILL]
    code, _, err = _run([*other, "--out", str(out)], cli_sim)
    assert code == 2
    assert "holds a different backfill" in err


def test_csv_format(cli_sim: Simulator, tmp_path: Path) -> None:
    """--format csv writes one CSV per window piece, with the Parquet files' columns."""
    out = tmp_path / "csv"
    code, _, _ = _run([*BACKFILL, "--out", str(out), "--format", "csv"], cli_sim)
    files = data_files(out, ".csv")
    assert code == 0
    assert len({f.name for f in files}) == 4  # windows; those crossing a month: two pieces
    assert files[0].read_text().splitlines()[0] == "id,kind,ts,W_avg,Wh_sum"
    total = sum(len(f.read_text().splitlines()) - 1 for f in files)
    assert total == len(_truth(cli_sim))


def test_partner_backfill_filtered_by_node_type(cli_sim: Simulator, tmp_path: Path) -> None:
    """--partner with --node-type backfills only those components."""
    out = tmp_path / "out"
    code, stdout, _ = _run(
        ["backfill", "--partner", "111", "--node-type", "meter", "--fields", "Wh_sum", "--start", "2024-06-01",
         "--end", "2024-06-03", "--tz", "UTC", "--gran", "hourly", "--out", str(out), "--json"],
        cli_sim,
    )  # fmt: skip
    assert code == 0
    assert json.loads(stdout)["entities"] == 8
    assert set(pq.read_table(out).column("id").to_pylist()) == {
        54369,
        54380,
        54390,
        54400,
        54410,
        54420,
        54430,
        54440,
    }


# ------------------------------------------------------------------ subprocess over loopback


@pytest.fixture
def served(cli_sim: Simulator) -> Iterator[ServedSimulator]:
    with cli_sim.serve() as server:
        yield server


def _subprocess(argv: list[str], url: str, **kwargs: object) -> subprocess.Popen[bytes]:
    env = {**os.environ, **_env(url), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "locus_async", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )  # type: ignore[call-overload]


@pytest.mark.sockets
def test_subprocess_backfill_with_debug_logs_leaks_no_secret(
    cli_sim: Simulator, served: ServedSimulator, tmp_path: Path
) -> None:
    """A whole backfill with -vv: no secret or token in stdout, stderr or any output file."""
    out = tmp_path / "out"
    process = _subprocess([*BACKFILL, "--out", str(out), "-vv", "--json"], served.url)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr.decode()
    assert b"DEBUG" in stderr
    assert _dataset(out) == _truth(cli_sim)
    secrets = [SECRET, PASSWORD, *cli_sim.core._tokens, *cli_sim.core._refresh]
    assert len(secrets) >= 4
    files = [*out.rglob("*"), *state_dir(out).rglob("*")]  # the data and the state
    produced = [stdout, stderr] + [p.read_bytes() for p in files if p.is_file()]
    for blob in produced:
        for secret in secrets:
            assert secret.encode() not in blob


def _finished(out: Path) -> int:
    """Windows with every piece on disk (a piece being written when killed does not count)."""
    return finished_windows(out, "America/Los_Angeles")


@pytest.mark.sockets
def test_sigkill_mid_backfill_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    """SIGKILL the CLI a few windows in, run it again: same dataset, no duplicate (id, ts)."""
    sim = Simulator(accounts=[ACCOUNT], faults=Faults(latency=0.15))
    args = [*BACKFILL[:-6], "--start", "2024-08-01T00:00:00", "--end", "2024-12-01T00:00:00",
            "--tz", "America/Los_Angeles", "--gran", "5min"]  # fmt: skip
    with sim.serve() as server:
        killed = tmp_path / "killed"
        process = _subprocess([*args, "--out", str(killed)], server.url)
        deadline = time.monotonic() + 60
        while _finished(killed) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        written_before = _finished(killed)
        assert 3 <= written_before < 10
        resumed = _subprocess([*args, "--out", str(killed), "--json"], server.url)
        stdout, stderr = resumed.communicate(timeout=120)
        assert resumed.returncode == 0, stderr.decode()
        assert json.loads(stdout)["windows_skipped"] >= written_before
        clean = tmp_path / "clean"
        straight = _subprocess([*args, "--out", str(clean)], server.url)
        straight.communicate(timeout=120)
        assert straight.returncode == 0
    resumed_rows, clean_rows = _dataset(killed), _dataset(clean)
    assert resumed_rows == clean_rows
    assert len({(r[0], r[1]) for r in resumed_rows}) == len(resumed_rows)
    assert not list(killed.glob(".tmp-*"))


# ------------------------------------------------------------------ the demo


@pytest.mark.sockets
def test_demo_runs_offline(tmp_path: Path) -> None:
    """The README's main job: exit 0, both backfills complete, one request in flight at most."""
    code, out, err = _run(
        ["demo", "--out", str(tmp_path / "demo"), "--latency", "0", "--json"], env={}
    )
    summary = json.loads(out)
    assert code == 0, err
    assert summary["server_max_in_flight"] == 1
    assert summary["rate_limited"] == 0
    assert summary["backfills"]["5min"]["windows_written"] == 46
    assert summary["backfills"]["daily"]["windows_written"] == 46
    assert (
        pq.read_table(tmp_path / "demo" / "daily").num_rows == summary["backfills"]["daily"]["rows"]
    )
