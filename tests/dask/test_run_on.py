"""Backfills on a Dask LocalCluster of worker processes: several credentials at once,
each inside its allowance across every worker, one password grant each, and a worker
killed mid-run costing only the partitions it held."""

from __future__ import annotations

import os
import pickle
import signal
from pathlib import Path
from typing import Any

import anyio
import pytest

from locus_async import Backfill, BackfillSpec, UsageError
from locus_async._shell.dask_plugin import PROFILER_CALLBACKS, profiler_deadlocks
from locus_async.distributed import Credential
from tests.dask.conftest import FLEET, SPEC, WORKERS, Rig, credentials, dataset, fleet_env, truth
from tests.dask.test_worker import profiling_callbacks


def _names_on_workers(dask_client: Any) -> dict[str, list[str]]:
    """Which credentials each worker process has a client of (it ran their partitions)."""

    def names() -> list[str]:
        from locus_async import distributed

        return sorted(c.name for c in distributed._CLIENTS)

    return dask_client.run(names)  # type: ignore[no-any-return]


@pytest.mark.anyio
async def test_four_credentials_on_four_workers_are_exact_and_inside_each_allowance(
    dask_client: Any, rig: Rig, tmp_path: Path
) -> None:
    """Four credentials' backfills at once on the cluster: every dataset equals the
    ground truth, no account ever had more than its one request in flight, each signed
    in once (the workers took the token from Redis), and no 429."""
    creds = credentials(rig.served, rig.redis)
    results: dict[str, Any] = {}

    async def one(credential: Credential) -> None:
        async with credential.client(fleet_env()) as client:
            backfill = Backfill(client, SPEC, tmp_path / credential.name)
            results[credential.name] = await backfill.run_on(
                dask_client, credential, partition_windows=2
            )

    async with anyio.create_task_group() as group:
        for credential in creds:
            group.start_soon(one, credential)
    expected = truth(rig.sim)
    assert len(expected) > 50_000
    for credential in creds:
        assert results[credential.name].complete
        assert results[credential.name].windows_done == results[credential.name].windows_total
        assert dataset(tmp_path / credential.name) == expected
    stats = rig.sim.stats
    assert {a.client_id: stats.max_in_flight_by[a.client_id] for _, a in FLEET} == {
        a.client_id: 1 for _, a in FLEET
    }
    assert stats.grants["password"] == len(FLEET)
    assert stats.by_status[429] == 0
    windows = sum(r.windows_total for r in results.values())
    assert windows == 10 * len(FLEET)  # 5 windows of the stable grid per component
    assert len(stats.data_windows) == windows  # each window asked once
    ran = _names_on_workers(dask_client)
    assert sum(1 for names in ran.values() if set(names) & {c.name for c in creds}) >= 2


@pytest.mark.anyio
async def test_a_worker_killed_mid_run_costs_only_its_partitions(
    dask_client: Any, rig: Rig, tmp_path: Path
) -> None:
    """SIGKILL of a worker process that holds a partition: Dask runs it again elsewhere;
    the dataset equals the ground truth, no window is written twice, and the windows
    asked again are at most those the lost worker held."""
    spec = BackfillSpec(
        fields=SPEC.fields, start="2024-01-01", end="2024-03-01", tz="UTC", gran="1min",
        components=[54369, 54370],
    )  # fmt: skip  # 12 or 13 windows of the grid per component
    (credential,) = credentials(rig.served, rig.redis, count=1)
    pids = dask_client.run(os.getpid)
    killed: list[str] = []

    async def kill_one_busy_worker() -> None:
        # Progress, not time: wait until the cluster has partitions in hand.
        while True:
            busy = [w for w, keys in dask_client.processing().items() if keys]
            if busy and len(rig.sim.stats.data_windows) >= 3:
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append(busy[0])
                return
            await anyio.sleep(0.005)

    async with credential.client(fleet_env()) as client:
        backfill = Backfill(client, spec, tmp_path / "ds")
        async with anyio.create_task_group() as group:
            group.start_soon(kill_one_busy_worker)
            result = await backfill.run_on(dask_client, credential, partition_windows=2)
    assert killed
    assert result.complete
    assert result.windows_done == result.windows_total >= 24
    assert dataset(tmp_path / "ds") == truth(rig.sim, spec)
    asked = len(rig.sim.stats.data_windows)
    # What the lost worker can have held: the partition out (the allowance's one) and
    # one finished but not yet gathered, two windows each.
    assert result.windows_total <= asked <= result.windows_total + 2 * 2
    assert rig.sim.stats.max_in_flight_by[FLEET[0][1].client_id] == 1
    dask_client.wait_for_workers(WORKERS, timeout=60)  # the nanny replaced it
    assert pids[killed[0]] not in dask_client.run(os.getpid).values()
    # Every worker, the replacement too, runs without the profiler that deadlocks 3.11.
    expected = [] if profiler_deadlocks() else sorted(PROFILER_CALLBACKS)
    assert set(map(tuple, dask_client.run(profiling_callbacks).values())) == {tuple(expected)}


@pytest.mark.anyio
async def test_a_cluster_run_needs_redis(dask_client: Any, rig: Rig) -> None:
    """Without Redis the workers could not share the allowance: refused before any work."""
    credential = Credential("lonely", env_prefix="CRED0_", base_url=rig.served.url)
    async with credential.client(fleet_env()) as client:
        with pytest.raises(UsageError, match=r"needs redis= \(--redis URL\) on a cluster"):
            await Backfill(client, SPEC, "unused").run_on(dask_client, credential)


def test_no_secret_travels_in_a_task() -> None:
    """What a task carries (the credential by name, the query, the windows) holds none of
    the credential's secrets: workers read them from their own environment."""
    credential = Credential("acme", env_prefix="CRED1_", redis="redis://127.0.0.1:1/0")
    payload = pickle.dumps((credential, SPEC))
    _, account = FLEET[1]
    for secret in (account.client_secret, account.password):
        assert secret is not None
        assert secret.encode() not in payload
    assert credential.environment(fleet_env())["LOCUS_PASSWORD"] == account.password


def test_credential_checks_each_field() -> None:
    """A credential's name, prefix, allowance, base URL and Redis URL are checked, one line
    each; a machine without its variables is told which are missing."""
    with pytest.raises(UsageError, match="must be letters"):
        Credential("has space")
    with pytest.raises(UsageError, match="must be upper case and end in '_'"):
        Credential("a", env_prefix="acme")
    with pytest.raises(UsageError, match="allowance"):
        Credential("a", allowance=0)
    with pytest.raises(UsageError, match="plain http to a non-loopback host"):
        Credential("a", base_url="http://api.example.com")
    with pytest.raises(UsageError, match="redis:// or rediss://"):
        Credential("a", redis="http://127.0.0.1:6379")
    with pytest.raises(UsageError, match=r"none of its variables is set on this machine \(NOPE_"):
        Credential("a", env_prefix="NOPE_").environment({})
