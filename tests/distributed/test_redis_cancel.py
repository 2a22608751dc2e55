"""RedisLimiter under cancellation at every await point (asyncio: redis-py is asyncio-only).

The same sweep as ``tests/reliability/test_cancel_points.py``: a call cancelled after 0, 1,
2, ... scheduler turns, against a real redis-server. After each cancellation no ticket is
left queued, the slot is free in Redis (at once, or when the hold of an exchange abandoned
on the wire ends), and the next call goes through.
"""

from __future__ import annotations

import anyio
import pytest

from locus_async import RedisLimiter, RetryPolicy
from locus_async.simulator import DEFAULT_ACCOUNT, Simulator
from tests.reliability.test_cancel_points import SteppingTransport, _cancel_after

pytestmark = pytest.mark.asyncio

HOLD = 0.05


async def _tickets(limiter: RedisLimiter) -> tuple[int, int]:
    """(holders, queued) in Redis right now, expired leases not counted."""
    queued = int(await limiter._redis.zcard(f"{limiter.key}:queue"))
    return await limiter.holders(), queued


@pytest.mark.parametrize("capacity", [1, 2])
async def test_a_call_cancelled_at_every_await_point_leaves_redis_clean(
    redis_server: str, redis_key: str, capacity: int
) -> None:
    """Every turn of a call through RedisLimiter cancelled in order: no leaked lease, no
    stale ticket, the next call goes through; the sweep reached the wire."""
    abandoned_seen = False
    finished_in_a_row = 0
    for ticks in range(400):
        sim = Simulator()
        limiter = RedisLimiter(redis_server, key=f"{redis_key}:{ticks}", capacity=capacity)
        try:
            async with sim.client(
                strict=True,
                limiter=limiter,
                retry=RetryPolicy(wire_hold=HOLD),
                transport=SteppingTransport(sim.transport()),
            ) as client:
                done = await _cancel_after(ticks, lambda: client.components.get(54369))
                abandoned_seen |= client.stats.abandoned > 0
                assert (limiter.in_use, limiter.waiting) == (0, 0)
                with anyio.fail_after(10):  # a hang guard: a hold ends within HOLD x 1.5
                    while await _tickets(limiter) != (0, 0):  # noqa: ASYNC110 - Redis state
                        await anyio.sleep(0.01)
                assert sim.stats.in_flight[DEFAULT_ACCOUNT.client_id] == 0
                with anyio.fail_after(10):
                    assert (await client.components.get(54369)).id == 54369
                assert await _tickets(limiter) == (0, 0)
                assert sim.stats.max_in_flight <= capacity
        finally:
            await limiter.reset()
            await limiter.aclose()
        finished_in_a_row = finished_in_a_row + 1 if done else 0
        if finished_in_a_row == 3:
            break
    else:
        raise AssertionError("the call never finished")
    assert abandoned_seen


async def test_a_hold_keeps_the_slot_busy_for_every_process(
    redis_server: str, redis_key: str
) -> None:
    """A slot given back with a hold stays counted in Redis until the hold ends, so a
    second limiter (another process) cannot take it before then, and can right after."""
    first = RedisLimiter(redis_server, key=redis_key, capacity=1)
    second = RedisLimiter(redis_server, key=redis_key, capacity=1)
    try:
        async with first.slot() as slot:
            slot.hold_for(60)
        assert await first.holders() == 1  # still counted after release
        with anyio.move_on_after(0.2) as scope:
            async with second.slot():
                raise AssertionError("the held slot was handed out")
        assert scope.cancelled_caught
        assert (second.in_use, await _tickets(second)) == (0, (1, 0))
        await first.reset()
        third = RedisLimiter(redis_server, key=redis_key, capacity=1)
        async with third.slot() as slot:
            slot.hold_for(0.2)
        with anyio.fail_after(10):  # a hang guard; the hold itself is 0.2 s
            async with second.slot():
                assert await second.holders() == 1
        assert await third.holders() == 0
        await third.aclose()
    finally:
        await first.reset()
        await first.aclose()
        await second.aclose()
