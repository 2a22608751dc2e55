"""The adaptive limit finds an unknown allowance without a 429 storm."""

from __future__ import annotations

import anyio
import pytest

from locus_async import AdaptiveLimiter, UsageError
from locus_async.simulator import Faults, Simulator


async def _drive(
    sim: Simulator, limiter: AdaptiveLimiter, requests: int, callers: int = 32
) -> None:
    remaining = requests
    async with sim.client(limiter=limiter) as client:

        async def caller() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await client.components.get(54369)

        async with anyio.create_task_group() as group:
            for _ in range(callers):
                group.start_soon(caller)


@pytest.mark.anyio
@pytest.mark.parametrize("allowance", [1, 4, 6])
async def test_finds_an_unknown_allowance(allowance: int) -> None:
    """From 1 to the true allowance within 100 requests; 429s at most 2% of all requests."""
    sim = Simulator(allowance=allowance, faults=Faults(latency=0.004))
    limiter = AdaptiveLimiter(ceiling=16)
    await _drive(sim, limiter, 600)
    reached = next(i for i, c in enumerate(limiter.history) if c >= 0.9 * allowance)
    assert reached < 100
    requests = sim.stats.requests
    assert sim.stats.by_status[429] <= 0.02 * requests
    assert sim.stats.max_in_flight <= allowance
    assert sum(limiter.history[-200:]) / 200 >= 0.9 * allowance  # it stays there


@pytest.mark.anyio
async def test_never_above_the_ceiling() -> None:
    """With a generous server, the limit stops at the configured ceiling."""
    sim = Simulator(allowance=50, faults=Faults(latency=0.002))
    limiter = AdaptiveLimiter(ceiling=5)
    await _drive(sim, limiter, 200)
    assert max(limiter.history) == 5
    assert sim.stats.by_status[429] == 0


def test_halves_on_429_and_probes_again_later() -> None:
    """AIMD by the book: +1/limit per saturated success, halve on a 429 once per
    congestion, stay one below the level that failed, probe it after calm."""
    limiter = AdaptiveLimiter(ceiling=8, probe_after=10)
    for _ in range(6):
        limiter.record(rate_limited=False, saturated=True, level=limiter.capacity)
    assert (limiter.capacity, round(limiter.limit, 2)) == (3, 3.83)
    limiter.record(rate_limited=False, saturated=True, level=3)
    assert limiter.capacity == 4
    limiter.record(rate_limited=True, saturated=True, level=4)
    assert (limiter.capacity, round(limiter.limit, 2)) == (2, 2.05)
    limiter.record(rate_limited=True, saturated=True, level=4)  # a late echo: sent at 4
    assert limiter.capacity == 2  # not halved twice for one congestion
    for _ in range(8):
        limiter.record(rate_limited=False, saturated=True, level=limiter.capacity)
    assert limiter.capacity == 3  # regrows to one below the level that failed, no further
    for _ in range(5):
        limiter.record(rate_limited=False, saturated=True, level=3)
    assert limiter.capacity == 4  # after 10 calm successes it probes the failed level
    limiter.record(rate_limited=False, saturated=False, level=1)
    assert limiter.capacity == 4  # idle slots are no reason to grow


def test_bad_settings() -> None:
    """Ceiling and initial must be positive and ordered."""
    with pytest.raises(UsageError):
        AdaptiveLimiter(ceiling=0)
    with pytest.raises(UsageError, match="must not exceed ceiling"):
        AdaptiveLimiter(ceiling=2, initial=3)
