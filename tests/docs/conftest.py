"""The servers the documentation's code runs against: both simulators on loopback
sockets and a private Redis, started once for the session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from locus_async.simulator import Simulator, SolarNetSimulator
from tests.distributed.conftest import redis_server  # noqa: F401 - the shared fixture


@pytest.fixture(scope="session")
def doc_servers(
    redis_server: str,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, str]]:
    """The environment a reader sets: ``LOCUS_*`` and ``SN_*`` pointing at served
    simulators (SolarNetwork's nodes answering instructions within tens of ms), and
    ``REDIS_URL``; dlt kept at home and quiet."""
    locus, solarnet = Simulator(), SolarNetSimulator(instruction_step=0.02)
    with locus.serve() as lserver, solarnet.serve() as sserver:
        env = {**Simulator.environment(lserver.url), **SolarNetSimulator.environment(sserver.url)}
        env["REDIS_URL"] = redis_server
        # dlt's home in a temporary directory, and none of its telemetry (loopback only).
        env["DLT_DATA_DIR"] = str(tmp_path_factory.mktemp("dlt-home"))
        env["RUNTIME__DLTHUB_TELEMETRY"] = "false"
        yield env


@pytest.fixture(scope="session")
def doc_dataset(doc_servers: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small dataset made by ``locus-async backfill`` as the README shows it (``out``
    and ``out.locus`` in the returned directory)."""
    root = tmp_path_factory.mktemp("dataset")
    command = [sys.executable, "-m", "locus_async", "backfill", "--component", "54369"]
    command += ["--component", "54370", "--fields", "W_avg,Wh_sum", "--gran", "hourly"]
    command += ["--start", "2024-10-01T00:00:00", "--end", "2024-12-01T00:00:00"]
    command += ["--tz", "America/Los_Angeles", "--out", "out"]
    env = {**os.environ, **doc_servers}
    subprocess.run(command, cwd=root, env=env, check=True, capture_output=True)
    return root


def copy_dataset(source: Path, into: Path) -> None:
    """``out`` and its state into ``into`` (each snippet gets its own copy)."""
    for name in ("out", "out.locus"):
        shutil.copytree(source / name, into / name)
