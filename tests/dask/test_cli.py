"""The command line past one process: ``backfill --dask --redis``, ``sync --config
FLEET.toml`` keeping several credentials current in one command (progress and a summary
per credential), and the refusals, one line each."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from locus_async.distributed import load_fleet
from locus_async.errors import UsageError
from locus_async.simulator import ServedSimulator
from tests.dask.conftest import FLEET, SPEC, Rig, dataset, fleet_env, truth


def _run(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """``locus-async ARGV`` in a process of its own, as a cron job runs it (its one Dask
    client the only one in the process); a hang fails the test instead of stalling it."""
    done = subprocess.run(
        [sys.executable, "-m", "locus_async", *argv],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def _scheduler(dask_client: Any) -> str:
    return str(dask_client.scheduler.address)


SPEC_ARGS = [
    "--component", "54369", "--component", "54370", "--fields", "W_avg,Wh_sum",
    "--start", "2024-03-01T00:00:00", "--end", "2024-03-21T00:00:00", "--tz", "UTC",
    "--gran", "1min",
]  # fmt: skip


def test_backfill_on_the_cluster_from_the_command_line(
    dask_client: Any, rig: Rig, tmp_path: Path
) -> None:
    """``backfill ... --dask ADDRESS --redis URL``: the workers read LOCUS_* from their
    own environment; the dataset is exact, one request at a time, one sign-in."""
    env = {**fleet_env(), "LOCUS_BASE_URL": rig.served.url}
    argv = ["backfill", *SPEC_ARGS, "--out", str(tmp_path / "ds"), "-q", "--json"]
    argv += ["--dask", _scheduler(dask_client), "--redis", rig.redis]
    argv += ["--credential", "cli-default", "--partition-windows", "3"]
    code, out, err = _run(argv, env)
    assert (code, err) == (0, "")
    assert json.loads(out)["complete"] is True
    assert dataset(tmp_path / "ds") == truth(rig.sim)
    assert rig.sim.stats.max_in_flight_by[FLEET[0][1].client_id] == 1
    assert rig.sim.stats.grants["password"] == 1
    for secret in (FLEET[0][1].client_secret, FLEET[0][1].password):
        assert str(secret) not in out + err


def _fleet_file(tmp_path: Path, served: ServedSimulator, redis: str, count: int) -> Path:
    lines = [f'redis = "{redis}"', ""]
    for n in range(count):
        prefix, _ = FLEET[n]
        lines += [
            f"[credentials.owner{n}]",
            f'env_prefix = "{prefix}"',
            "allowance = 1",
            f'base_url = "{served.url}"',
            "",
        ]
    for n in range(count):
        lines += [
            "[[datasets]]",
            f'credential = "owner{n}"',
            f'out = "{tmp_path / f"owner{n}"}"',
            'fields = ["W_avg", "Wh_sum"]',
            f'start = "{SPEC.start}"',
            f'end = "{SPEC.end}"',
            f'tz = "{SPEC.tz}"',
            f'gran = "{SPEC.gran}"',
            "components = [54369, 54370]",
            "",
        ]
    path = tmp_path / "fleet.toml"
    path.write_text("\n".join(lines), "utf-8")
    return path


def test_one_command_keeps_every_credential_current(
    dask_client: Any, rig: Rig, tmp_path: Path
) -> None:
    """``sync --config FLEET.toml --dask``: three credentials' datasets created in one
    command, each exact and inside its own allowance, a line per credential; run again,
    nothing is fetched twice."""
    fleet = _fleet_file(tmp_path, rig.served, rig.redis, count=3)
    argv = ["sync", "--config", str(fleet), "--dask", _scheduler(dask_client), "--json"]
    code, out, err = _run(argv, fleet_env())
    assert code == 0, err
    summary = json.loads(out)["credentials"]
    assert sorted(summary) == ["owner0", "owner1", "owner2"]
    expected = truth(rig.sim)
    for n in range(3):
        assert summary[f"owner{n}"]["complete"] is True
        assert summary[f"owner{n}"]["windows_written"] == 10
        assert dataset(tmp_path / f"owner{n}") == expected
        assert rig.sim.stats.max_in_flight_by[FLEET[n][1].client_id] == 1
        assert f"credential owner{n}: 1 dataset, 10 windows written, " in err
    assert rig.sim.stats.grants["password"] == 3
    asked = len(rig.sim.stats.data_windows)
    code, out, err = _run([*argv[:-1], "--json"], fleet_env())
    assert code == 0, err
    assert all(s["windows_written"] == 0 for s in json.loads(out)["credentials"].values())
    assert len(rig.sim.stats.data_windows) == asked


def test_a_refused_credential_does_not_stop_the_others(rig: Rig, tmp_path: Path) -> None:
    """``sync --config`` without Dask: a credential whose password is wrong gets its own
    one-line error and exit 3; the other credential's dataset is made all the same."""
    env = {**fleet_env(), "CRED1_PASSWORD": "not-the-password"}
    fleet = _fleet_file(tmp_path, rig.served, "redis://127.0.0.1:1/0", count=2)
    text = fleet.read_text("utf-8").replace('redis = "redis://127.0.0.1:1/0"', "")
    fleet.write_text(text, "utf-8")
    code, _, err = _run(["sync", "--config", str(fleet), "-q"], env)
    assert code == 3
    assert dataset(tmp_path / "owner0") == truth(rig.sim)
    assert not (tmp_path / "owner1").exists()
    (line,) = [ln for ln in err.splitlines() if ln.startswith("sync owner1:")]
    assert line.startswith("sync owner1: AuthenticationError: HTTP 401")
    assert "not-the-password" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["backfill", *SPEC_ARGS, "--out", "x", "--dask", "tcp://127.0.0.1:1"],
         "--dask needs --redis URL: it keeps every worker inside the allowance"),
        (["sync", "--config", "fleet.toml", "--every", "5m"],
         "--config runs each dataset once; leave out --every and --plan"),
        (["sync", "--config", "missing.toml"],
         "cannot read the fleet file 'missing.toml': No such file or directory"),
    ],
)  # fmt: skip
def test_refusals_are_one_line(argv: list[str], message: str) -> None:
    """Usage problems of the cluster options: exit 2, one line, before any request."""
    code, _, err = _run(argv, fleet_env())
    assert code == 2
    assert err.strip() == f"locus-async: error: {message}"


def test_fleet_file_mistakes_are_named(tmp_path: Path) -> None:
    """A fleet file's unknown keys, undefined credentials and missing tables are named."""
    path = tmp_path / "fleet.toml"
    cases = {
        "": "fleet.toml: no [credentials.NAME] table",
        "[credentials.a]\nenv_prefix = 'A_'\npassword = 'x'\n": (
            "fleet.toml: credentials.a: unknown key 'password'"
        ),
        "[credentials.a]\n": "fleet.toml: no [[datasets]] entry",
        "[credentials.a]\n[[datasets]]\ncredential = 'b'\nout = 'x'\n": (
            "fleet.toml: datasets #1: credential 'b' is not defined"
        ),
        "[credentials.a]\n[[datasets]]\ncredential = 'a'\nout = 'x'\ncolour = 1\n": (
            "fleet.toml: datasets #1: unknown key 'colour'"
        ),
        "not toml = = 1": "the fleet file",
    }
    for text, message in cases.items():
        path.write_text(text, "utf-8")
        with pytest.raises(UsageError, match=re.escape(message)):
            load_fleet(path)
    path.write_text("[credentials.a]\nallowance = 2\n[[datasets]]\ncredential = 'a'\nout = 'x'\n")
    (only,) = load_fleet(path, redis="redis://127.0.0.1:6379/0")
    assert (only.credential.name, only.credential.allowance, only.out, only.spec) == (
        "a", 2, "x", None
    )  # fmt: skip
    assert only.credential.redis == "redis://127.0.0.1:6379/0"
