"""The worker side of a cluster run: the Python 3.11 profiler deadlock kept off every
worker (restarts included), and the clients a worker keeps, bounded."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import pytest

from locus_async import distributed
from locus_async._shell.dask_plugin import PROFILER_CALLBACKS, ProfilerOff, profiler_deadlocks
from locus_async.distributed import Credential
from tests.dask.conftest import fleet_environment


def profiling_callbacks(dask_worker: Any) -> list[str]:
    """The worker's profiling callbacks still registered (run on each worker)."""
    return sorted(name for name in PROFILER_CALLBACKS if name in dask_worker.periodic_callbacks)


def test_the_deadlocking_pythons_are_those_before_3_12() -> None:
    """CPython gh-106883 (a GC inside sys._current_frames) is fixed from 3.12 only."""
    assert profiler_deadlocks((3, 11, 7)) is True
    assert profiler_deadlocks((3, 11, 14, "final", 0)) is True
    assert profiler_deadlocks((3, 12, 0)) is False
    assert profiler_deadlocks((3, 13, 1)) is False


class _Callback:
    def __init__(self) -> None:
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True


class _Worker:
    def __init__(self) -> None:
        self.periodic_callbacks: dict[str, _Callback] = {
            name: _Callback() for name in (*PROFILER_CALLBACKS, "heartbeat", "keep-alive")
        }


def test_the_plugin_stops_only_the_profiling_callbacks() -> None:
    """On a deadlocking Python, setup stops and removes the two profiling callbacks and
    leaves the worker's others (heartbeat...) running; on a later Python, nothing."""
    worker = _Worker()
    profile = worker.periodic_callbacks["profile"]
    heartbeat = worker.periodic_callbacks["heartbeat"]
    ProfilerOff().setup(worker)
    if profiler_deadlocks():
        assert sorted(worker.periodic_callbacks) == ["heartbeat", "keep-alive"]
        assert profile.stopped
    else:
        assert sorted(worker.periodic_callbacks) == sorted(
            (*PROFILER_CALLBACKS, "heartbeat", "keep-alive")
        )
        assert not profile.stopped
    assert not heartbeat.stopped
    ProfilerOff().setup(worker)  # again (a second run registers it again): harmless
    assert "heartbeat" in worker.periodic_callbacks


def test_a_worker_keeps_its_idle_clients_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_IDLE_CLIENTS idle clients, the least recently used are closed; a client in
    use by a partition is never closed under it, and the one just used is kept."""
    for name, value in fleet_environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(distributed, "MAX_IDLE_CLIENTS", 1)
    monkeypatch.setattr(distributed, "_CLIENTS", OrderedDict())
    creds = [
        Credential(f"lru{n}", env_prefix=f"CRED{n}_", base_url="http://127.0.0.1:9")
        for n in range(3)
    ]
    made = []
    with distributed._worker_client(creds[0]) as busy:
        made.append(busy)
        for credential in creds[1:]:
            with distributed._worker_client(credential) as client:
                made.append(client)
        assert list(distributed._CLIENTS) == [creds[0], creds[2]]  # lru1 retired
        assert made[1].closed
        assert not busy.closed
        assert not made[2].closed
        with distributed._worker_client(creds[2]) as again:
            assert again is made[2]  # reused, not rebuilt
    # lru0 is idle now: two idle, one kept (the one used last).
    assert list(distributed._CLIENTS) == [creds[0]]
    assert made[2].closed
    assert not busy.closed
    busy.close()
    assert not distributed._IN_USE  # nothing counted as in use
