"""The server's rate limit (a burst of 2, then 1 per second per token): its 429s carry
``X-SN-Rate-Limit-Retry-After`` in epoch milliseconds, and the client pauses the whole
credential until exactly that instant, then carries on."""

from __future__ import annotations

import anyio
import pytest

from locus_async import set_testing
from locus_async.errors import RateLimited
from locus_async.simulator import RateRule, SolarNetSimulator
from tests.conftest import FakeClock

pytestmark = pytest.mark.anyio


class RecordingClock(FakeClock):
    def __init__(self, start: float) -> None:
        super().__init__(start)
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        await super().sleep(seconds)


@pytest.fixture
def real_waits() -> None:
    set_testing(False)  # waits must follow the server's instant; the clock is fake anyway


@pytest.mark.usefixtures("real_waits")
async def test_pauses_until_the_instant_the_server_names() -> None:
    """After a 429 the client waits exactly until the instant the server names."""
    clock = RecordingClock(1_709_251_200.0)
    sim = SolarNetSimulator(clock=clock.time, rate=RateRule(burst=2, per_second=1))
    async with sim.client(clock=clock.monotonic, sleep=clock.sleep) as client:
        start = clock.now
        for _ in range(10):
            assert (await client.whoami()).token == "demo-sn-token"
    assert sim.stats.counters["rate_rule_429s"] == 8
    assert client.stats.rate_limited == 8
    assert sim.stats.counters["signatures_verified"] == 10
    # each pause lasts until the instant named (the next token, rounded up to the next ms);
    # the zero waits between attempts are the retry policy's: a 429 is the limiter's business
    assert [s for s in clock.sleeps if s] == [1.001] + [1.0] * 7
    assert clock.now - start == pytest.approx(8.001, abs=1e-3)


@pytest.mark.usefixtures("real_waits")
async def test_concurrent_callers_share_one_pause() -> None:
    """Concurrent callers meeting 429s share one pause of the credential."""
    clock = RecordingClock(1_709_251_200.0)
    sim = SolarNetSimulator(clock=clock.time, rate=RateRule(burst=2, per_second=2))
    async with sim.client(clock=clock.monotonic, sleep=clock.sleep, max_concurrency=4) as client:
        results: list[str] = []

        async def call() -> None:
            results.append((await client.whoami()).token)

        async with anyio.create_task_group() as tasks:
            for _ in range(8):
                tasks.start_soon(call)
    assert results == ["demo-sn-token"] * 8
    assert sim.stats.counters["signatures_verified"] == 8
    assert clock.now - 1_709_251_200.0 < 4.0  # 2 at once, then 2 per second: about 3 s


async def test_rate_limited_after_the_attempts_run_out(sn_clock: FakeClock) -> None:
    """RateLimited is raised once the 429 attempts run out, with retry_after."""
    sim = SolarNetSimulator(clock=sn_clock.time, rate=RateRule(burst=1, per_second=0.001))
    async with sim.client() as client:
        await client.whoami()
        with pytest.raises(RateLimited) as caught:
            await client.whoami()
    assert caught.value.code == "WEB.10000"
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 900


@pytest.mark.usefixtures("real_waits")
async def test_queueing_an_instruction_after_a_429_happens_once() -> None:
    """A 429 means the server did nothing: the non-idempotent add is safely sent again."""
    clock = RecordingClock(1_709_251_200.0)
    sim = SolarNetSimulator(clock=clock.time, rate=RateRule(burst=1, per_second=1.0))
    async with sim.client(clock=clock.monotonic, sleep=clock.sleep) as client:
        await client.whoami()
        (instruction,) = await client.instructions.add(177, "Signal")
    assert [i.id for i in sim.world.instructions.values()] == [instruction.id]
    assert sim.stats.counters["rate_rule_429s"] == 1
