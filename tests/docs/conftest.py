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

from locus_async.simulator import DEFAULT_ACCOUNT, Simulator, SolarNetSimulator
from tests.cognito.conftest import make_pool
from tests.distributed.conftest import redis_server  # noqa: F401 - the shared fixture
from tests.moto import moto_server

#: The docs' Cognito pool takes the demo account's password as it is.
_LENIENT = {
    "MinimumLength": 6,
    "RequireUppercase": False,
    "RequireLowercase": False,
    "RequireNumbers": False,
    "RequireSymbols": False,
}


@pytest.fixture(scope="session")
def doc_servers(
    redis_server: str,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, str]]:
    """The environment a reader sets: ``LOCUS_*`` and ``SN_*`` pointing at served
    simulators (SolarNetwork's nodes answering instructions within tens of ms), the
    ``LOCUS_COGNITO_*`` of a pool on moto where the demo user also signs in, and
    ``REDIS_URL``; dlt kept at home and quiet."""
    with moto_server() as cognito:
        pool = make_pool(cognito, **_LENIENT)
        assert DEFAULT_ACCOUNT.password is not None
        pool.user(name=DEFAULT_ACCOUNT.username, password=DEFAULT_ACCOUNT.password)
        locus = Simulator(cognito=pool.trust())
        solarnet = SolarNetSimulator(instruction_step=0.02)
        with locus.serve() as lserver, solarnet.serve() as sserver:
            env = {
                **Simulator.environment(lserver.url),
                **SolarNetSimulator.environment(sserver.url),
            }
            env["LOCUS_COGNITO_ENDPOINT"] = pool.endpoint
            env["LOCUS_COGNITO_CLIENT_ID"] = pool.client_id
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
