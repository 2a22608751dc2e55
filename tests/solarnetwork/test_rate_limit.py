"""The server's rate limit (a burst of 2, then 1 per second per token). Without pacing
(``rate=None``, or another process spending the token), its 429s carry
``X-SN-Rate-Limit-Retry-After`` in epoch milliseconds, and the client pauses the whole
credential until exactly that instant, then carries on. With pacing (the default), the
client spaces its requests so that the server never refuses one."""

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
    async with sim.client(clock=clock.monotonic, sleep=clock.sleep, rate=None) as client:
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
    async with sim.client(
        clock=clock.monotonic, sleep=clock.sleep, max_concurrency=4, rate=None
    ) as client:
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
    async with sim.client(rate=None) as client:
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
    async with sim.client(clock=clock.monotonic, sleep=clock.sleep, rate=None) as client:
        await client.whoami()
        (instruction,) = await client.instructions.add(177, "Signal")
    assert [i.id for i in sim.world.instructions.values()] == [instruction.id]
    assert sim.stats.counters["rate_rule_429s"] == 1


@pytest.mark.usefixtures("real_waits")
async def test_paced_sequential_calls_meet_no_429() -> None:
    """Paced to the documented rule: 10 calls, 10 requests, no 429, a second apart after
    the burst of 2."""
    clock = RecordingClock(1_709_251_200.0)
    sim = SolarNetSimulator(clock=clock.time, rate=RateRule(burst=2, per_second=1))
    async with sim.client(clock=clock.monotonic, sleep=clock.sleep) as client:
        for _ in range(10):
            assert (await client.whoami()).token == "demo-sn-token"
        paced = client.stats.paced_seconds
    assert sim.stats.counters["rate_rule_429s"] == 0
    assert sim.stats.counters["signatures_verified"] == 10
    assert [s for s in clock.sleeps if s] == [1.0] * 8
    assert paced == pytest.approx(8.0)


@pytest.mark.usefixtures("real_waits")
async def test_paced_concurrent_callers_meet_no_429() -> None:
    """32 concurrent callers with 4 slots: spaced by the bucket, none refused, done in
    the time the rule allows (2 at once, then 2 per second: 15 s)."""
    clock = RecordingClock(1_709_251_200.0)
    sim = SolarNetSimulator(clock=clock.time, rate=RateRule(burst=2, per_second=2))
    async with sim.client(clock=clock.monotonic, sleep=clock.sleep, max_concurrency=4) as client:

        async def call() -> None:
            await client.whoami()

        async with anyio.create_task_group() as tasks:
            for _ in range(32):
                tasks.start_soon(call)
    assert sim.stats.counters["rate_rule_429s"] == 0
    assert sim.stats.counters["signatures_verified"] == 32
    assert clock.now - 1_709_251_200.0 == pytest.approx(15.0)


@pytest.mark.usefixtures("real_waits")
async def test_the_servers_remaining_count_is_believed() -> None:
    """Another process spent the token: the server's X-SN-Rate-Limit-Remaining lowers our
    bucket, so the next call waits instead of meeting a 429."""
    clock = RecordingClock(1_709_251_200.0)
    sim = SolarNetSimulator(clock=clock.time, rate=RateRule(burst=3, per_second=1))
    async with (
        sim.client(clock=clock.monotonic, sleep=clock.sleep) as ours,
        sim.client(clock=clock.monotonic, sleep=clock.sleep) as theirs,
    ):
        await ours.whoami()  # the server has 2 left, and says so; we think 2 too
        await theirs.whoami()  # the other process: the server has 1 left
        await ours.whoami()  # answered with "0 left": we believe it, not our 1
        await ours.whoami()
    assert sim.stats.counters["rate_rule_429s"] == 0
    assert [s for s in clock.sleeps if s] == [1.0]


@pytest.mark.usefixtures("real_waits")
async def test_a_call_cancelled_while_paced_sends_nothing_and_gives_its_turn_back() -> None:
    """Cancelled at the pacing wait (its only await before the wire): no request goes
    out, and its reserved turn is refunded, so the next call waits one interval only."""
    clock = RecordingClock(1_709_251_200.0)
    sim = SolarNetSimulator(clock=clock.time, rate=RateRule(burst=1, per_second=1))
    blocked = anyio.Event()

    async def sleep(seconds: float) -> None:
        if seconds and not blocked.is_set():
            blocked.set()
            await anyio.sleep_forever()  # the first pacing wait: cancelled below
        await clock.sleep(seconds)

    async with sim.client(clock=clock.monotonic, sleep=sleep) as client:
        await client.whoami()  # the burst of 1
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(client.whoami)
            await blocked.wait()
            tasks.cancel_scope.cancel()
        assert client.stats.requests == 1
        await client.whoami()
    assert sim.stats.counters["signatures_verified"] == 2
    assert sim.stats.counters["rate_rule_429s"] == 0
    assert [s for s in clock.sleeps if s] == [1.0]
