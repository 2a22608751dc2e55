"""Cancellation under load: no slot and no connection is ever lost."""

from __future__ import annotations

import random

import anyio
import pytest

from locus_async import LocusClient
from locus_async.simulator import DEFAULT_ACCOUNT, Faults, Simulator

pytestmark = [pytest.mark.asyncio, pytest.mark.sockets]


def _pool(client: LocusClient):  # type: ignore[no-untyped-def]
    """httpcore's connection pool behind our one httpx client (for leak accounting)."""
    return client._session.transport._client._transport._pool


@pytest.mark.parametrize("allowance", [1, 3])
async def test_a_thousand_random_cancellations(allowance: int) -> None:
    """1,000 calls cancelled at random points (queued, holding a slot, mid-exchange): the
    limiter ends at full capacity, the pool holds no active or leaked connection, the
    server sees nothing in flight, and the client still works."""
    rng = random.Random(4242 + allowance)
    sim = Simulator(allowance=allowance, faults=Faults(latency=0.002, jitter=0.004))
    auth = DEFAULT_ACCOUNT.provider()
    finished = cancelled = 0
    with sim.serve() as server:
        async with LocusClient(auth=auth, base_url=server.url, max_concurrency=allowance) as client:
            await client.components.get(54369)

            async def caller() -> None:
                nonlocal finished, cancelled
                patience = rng.uniform(0, 0.02) if rng.random() < 0.5 else rng.uniform(0, 1.0)
                with anyio.move_on_after(patience) as scope:
                    await client.components.get(54369)
                    finished += 1
                if scope.cancelled_caught:
                    cancelled += 1

            async with anyio.create_task_group() as group:
                for _ in range(1000):
                    group.start_soon(caller)
                    if rng.random() < 0.2:
                        await anyio.sleep(0.001)
            limiter = client.limiter
            assert (limiter.in_use, limiter.waiting) == (0, 0)  # type: ignore[attr-defined]
            pool = _pool(client)
            assert pool._requests == []
            assert all(c.is_idle() or c.is_closed() for c in pool.connections)
            assert len(pool.connections) <= 100
            with anyio.fail_after(30):  # a hang guard: capacity is whole again
                async with anyio.create_task_group() as group:
                    for _ in range(allowance * 3):
                        group.start_soon(client.components.get, 54369)
            assert client.stats.in_flight == 0
        assert sim.stats.in_flight[DEFAULT_ACCOUNT.client_id] == 0
    # How many finish depends on the machine's speed; that both kinds happened does not
    # (half the callers wait up to 1 s for answers that take a few milliseconds).
    assert cancelled > 0
    assert finished > 0
    assert finished + cancelled == 1000
