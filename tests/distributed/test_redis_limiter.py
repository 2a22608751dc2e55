"""RedisLimiter and RedisTokenStore against a real redis-server, across OS processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import anyio
import pytest
import redis.asyncio

from locus_async import LocusClient, RedisLimiter, UsageError
from locus_async.simulator import DEFAULT_ACCOUNT, Faults, ServedSimulator, Simulator

pytestmark = pytest.mark.sockets


@pytest.fixture
def served() -> Iterator[tuple[Simulator, ServedSimulator]]:
    sim = Simulator(faults=Faults(latency=0.003))
    with sim.serve() as server:
        yield sim, server


def _worker(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.distributed.worker", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )


@pytest.mark.asyncio
async def test_one_process_many_callers(redis_server: str, redis_key: str, sim: Simulator) -> None:
    """In one process: 100 concurrent calls through Redis, never two in flight."""
    sim.faults = Faults(latency=0.001)
    limiter = RedisLimiter(redis_server, key=redis_key, capacity=1)
    async with sim.client(limiter=limiter) as client, anyio.create_task_group() as group:
        for _ in range(100):
            group.start_soon(client.components.get, 54369)
    assert sim.stats.max_in_flight == 1
    assert sim.stats.by_status[429] == 0
    assert await limiter.holders() == 0
    await limiter.aclose()


@pytest.mark.asyncio
async def test_four_processes_share_one_allowance(
    redis_server: str, redis_key: str, served: tuple[Simulator, ServedSimulator]
) -> None:
    """4 OS processes x 50 calls, allowance 1: zero 429s, never more than one in flight,
    every call answered, and no process starved."""
    sim, server = served
    workers = [_worker("calls", server.url, redis_server, redis_key, "50") for _ in range(4)]
    reports = []
    for worker in workers:
        stdout, stderr = worker.communicate(timeout=120)
        assert worker.returncode == 0, stderr
        reports.append(json.loads(stdout.strip().splitlines()[-1]))
    assert sim.stats.max_in_flight == 1
    assert sim.stats.by_status[429] == 0
    assert sum(r["stats"]["responses"].get("200", 0) for r in reports) == 4 * 51
    longest = max(r["elapsed"] for r in reports)
    assert all(r["max_wait"] < longest for r in reports)  # everybody got through before the end


@pytest.mark.asyncio
async def test_a_killed_holder_frees_its_slot_within_the_lease(
    redis_server: str, redis_key: str, served: tuple[Simulator, ServedSimulator]
) -> None:
    """SIGKILL a process holding the only slot: the others go on once the lease runs out."""
    sim, server = served
    lease = 1.5
    holder = _worker("hold", server.url, redis_server, redis_key, str(lease))
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "holding"
    limiter = RedisLimiter(redis_server, key=redis_key, capacity=1, lease=5)
    with anyio.move_on_after(0.5) as blocked:  # while the holder lives, nobody gets in
        async with limiter.slot():
            pass
    assert blocked.cancelled_caught
    redis_client = redis.asyncio.from_url(redis_server)
    seconds, micros = await redis_client.time()
    killed_ms = seconds * 1000 + micros // 1000
    holder.send_signal(signal.SIGKILL)
    holder.wait(30)
    ((_, expiry_ms),) = await redis_client.zrange(f"{redis_key}:holders", 0, -1, withscores=True)
    assert expiry_ms <= killed_ms + lease * 1000  # the dead holder's slot ends within a lease
    with anyio.fail_after(60):  # a hang guard; the verdict is on Redis's own clock
        async with sim.client(limiter=limiter) as client:
            await client.components.get(54369)
    seconds, micros = await redis_client.time()
    assert seconds * 1000 + micros // 1000 >= expiry_ms  # it was the lease that freed it
    await redis_client.aclose()
    assert await limiter.holders() == 0
    await limiter.aclose()


@pytest.mark.asyncio
async def test_cancelled_waiters_leave_no_ticket(redis_server: str, redis_key: str) -> None:
    """Waiters cancelled while queued withdraw: the queue is empty, the slot usable."""
    limiter = RedisLimiter(redis_server, key=redis_key, capacity=1)
    release = anyio.Event()

    async def hold() -> None:
        async with limiter.slot():
            await release.wait()

    async def impatient() -> None:
        with anyio.move_on_after(0.05):
            async with limiter.slot():
                pass

    async with anyio.create_task_group() as group:
        group.start_soon(hold)
        await anyio.sleep(0.02)
        for _ in range(20):
            group.start_soon(impatient)
        await anyio.sleep(0.2)
        release.set()
    client = redis.asyncio.from_url(redis_server)
    assert await client.zcard(f"{redis_key}:queue") == 0
    assert await client.zcard(f"{redis_key}:holders") == 0
    await client.aclose()
    with anyio.fail_after(30):  # a hang guard: the slot is free at once
        async with limiter.slot():
            pass
    await limiter.aclose()


@pytest.mark.asyncio
async def test_a_pause_holds_every_process_back(redis_server: str, redis_key: str) -> None:
    """After pause(0.3) from one limiter, another (another process) waits it out."""
    first = RedisLimiter(redis_server, key=redis_key, capacity=1)
    second = RedisLimiter(redis_server, key=redis_key, capacity=1)
    await first.pause(0.3)
    started = time.monotonic()
    with anyio.fail_after(60):  # a hang guard; the claim is the lower bound
        async with second.slot():
            waited = time.monotonic() - started
    assert waited >= 0.25  # the pause was waited out (less a little clock granularity)
    await first.aclose()
    await second.aclose()


@pytest.mark.asyncio
async def test_shared_token_one_password_grant_for_the_fleet(
    redis_server: str, redis_key: str
) -> None:
    """4 processes, 2-second tokens, 5 seconds of calls: one password grant in total, and
    refreshes shared (far fewer than one per process per lifetime)."""
    sim = Simulator(token_lifetime=2, faults=Faults(latency=0.003))
    with sim.serve() as server:
        workers = [
            _worker(
                "calls",
                server.url,
                redis_server,
                redis_key,
                "20",
                "--store",
                f"{redis_key}:token",
                "--seconds",
                "5",
            )
            for _ in range(4)
        ]
        for worker in workers:
            _, stderr = worker.communicate(timeout=120)
            assert worker.returncode == 0, stderr
    assert sim.stats.grants["password"] == 1
    assert 1 <= sim.stats.grants["refresh_token"] <= 6
    assert sim.stats.by_status[401] == 0
    assert sim.stats.max_in_flight == 1


def test_bad_configuration() -> None:
    """Bad URLs, keys and leases are refused before connecting."""
    with pytest.raises(UsageError, match="must start with redis://"):
        RedisLimiter("http://127.0.0.1:6379", key="k")
    with pytest.raises(UsageError, match="key must be a non-empty string"):
        RedisLimiter("redis://127.0.0.1:6379/0", key="")
    with pytest.raises(UsageError, match=r"lease must be more than 0\.2"):
        RedisLimiter("redis://127.0.0.1:6379/0", key="k", lease=0.1)
    with pytest.raises(UsageError, match="at least 1"):
        RedisLimiter("redis://127.0.0.1:6379/0", key="k", capacity=0)


@pytest.mark.asyncio
async def test_the_contract(redis_server: str, redis_key: str, sim: Simulator) -> None:
    """The documented use: RedisLimiter(url, key=..., capacity=1) passed to LocusClient."""
    limiter = RedisLimiter(redis_server, key=redis_key, capacity=1)
    auth = DEFAULT_ACCOUNT.provider()
    async with LocusClient(
        auth=auth, base_url="http://localhost", transport=sim.transport(), limiter=limiter
    ) as client:
        assert (await client.sites.get(3393714)).id == 3393714
    assert repr(limiter) == f"RedisLimiter(key='{redis_key}', capacity=1, lease=10)"
    await limiter.aclose()
