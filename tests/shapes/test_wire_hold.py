"""A request abandoned on the wire keeps its slot busy while the server may still work on it."""

from __future__ import annotations

import anyio
import httpx
import pytest
import respx

from locus_async import BearerToken, LocalLimiter, LocusClient, RetryPolicy
from locus_async._core.retrying import WireHold
from tests import reference_examples as ex
from tests.conftest import FakeClock

BASE = "https://api.locusenergy.com"


class RecordingClock(FakeClock):
    """A fake clock whose sleeps are recorded (each one moves the clock)."""

    def __init__(self) -> None:
        super().__init__()
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await super().sleep(seconds)


def test_the_hold_is_learnt_from_observed_latency() -> None:
    """Before any exchange: the configured initial hold; then 1.5 x the slowest recent
    exchange + 50 ms, less the time already spent, never under half of that estimate."""
    hold = WireHold(initial=0.8)
    assert hold.hold(0.0) == 0.8
    for seconds in (0.1, 0.3, 0.2):
        hold.observe(seconds)
    assert hold.estimate() == pytest.approx(0.5)
    assert hold.hold(0.1) == pytest.approx(0.4)
    assert hold.hold(10.0) == pytest.approx(0.25)  # slower than ever seen: half the estimate
    for _ in range(WireHold.WINDOW):
        hold.observe(0.02)  # the slow one has left the window
    assert hold.estimate() == pytest.approx(0.08)
    hold.observe(1000.0)
    assert hold.estimate() == WireHold.CEILING


def _client(clock: RecordingClock, *, wire_hold: float) -> LocusClient:
    """A client on ``clock`` whose hold before any observed exchange is ``wire_hold``."""
    return LocusClient(
        auth=BearerToken("tok-123456"),
        clock=clock.monotonic,
        sleep=clock.sleep,
        retry=RetryPolicy(wire_hold=wire_hold),
    )


async def _held(capacity: int, seconds: float) -> tuple[RecordingClock, LocalLimiter]:
    """A limiter on a recording clock, one of whose slots was given back with a hold."""
    clock = RecordingClock()
    limiter = LocalLimiter(capacity, clock=clock.monotonic, sleep=clock.sleep)
    async with limiter.slot() as slot:
        slot.hold_for(seconds)
    return clock, limiter


@pytest.mark.anyio
async def test_the_next_holder_waits_out_a_hold_to_the_instant() -> None:
    """A slot given back with hold_for(2) at t: the next holder sends at t + 2, not before."""
    clock, limiter = await _held(1, 2.0)
    released = clock.now
    assert limiter.held == 1
    async with limiter.slot():
        assert clock.now == released + 2.0
    assert clock.slept == [2.0]
    assert limiter.held == 0


@pytest.mark.anyio
async def test_a_clean_slot_is_taken_before_a_held_one() -> None:
    """Capacity 2, one slot held: a newcomer takes the clean one at once."""
    clock, limiter = await _held(2, 5.0)
    async with limiter.slot():
        assert clock.slept == []
        async with limiter.slot():  # the second one now must wait out the hold
            assert clock.slept == [5.0]


@pytest.mark.anyio
async def test_a_holder_cancelled_while_waiting_out_a_hold_passes_it_on() -> None:
    """Cancelled before the hold ended, a holder gives the slot back with the same hold:
    the next one still waits until the hold's end."""
    clock = FakeClock()
    limiter = LocalLimiter(1, clock=clock.monotonic, sleep=anyio.sleep)  # real waits here
    async with limiter.slot() as slot:
        slot.hold_for(3600.0)
    with anyio.move_on_after(0.01):
        async with limiter.slot():
            raise AssertionError("the hold must keep it back")
    assert (limiter.in_use, limiter.waiting, limiter.held) == (0, 0, 1)
    clock.advance(3600.0)
    with anyio.fail_after(30):  # a hang guard: the hold has ended on the fake clock
        async with limiter.slot():
            pass


@pytest.mark.anyio
async def test_a_request_cancelled_on_the_wire_holds_the_slot_then_the_next_one_waits() -> None:
    """Cancelled while the server works: counted as abandoned, and the next request is sent
    only after the hold (the initial one: nothing was observed yet)."""
    clock = RecordingClock()
    arrived = anyio.Event()
    release = anyio.Event()
    sent: list[float] = []

    async def slow(request: httpx.Request) -> httpx.Response:
        sent.append(clock.now)
        arrived.set()
        await release.wait()
        return httpx.Response(200, json=ex.GET_COMPONENT)

    async def fast(request: httpx.Request) -> httpx.Response:
        sent.append(clock.now)
        return httpx.Response(200, json=ex.GET_COMPONENT)

    with respx.mock(base_url=BASE, assert_all_called=False) as router:  # one is cancelled
        router.get("/v3/components/54369").mock(side_effect=slow)
        router.get("/v3/components/54370").mock(side_effect=fast)
        async with _client(clock, wire_hold=1.5) as client:
            async with anyio.create_task_group() as group:
                group.start_soon(client.components.get, 54369)
                await arrived.wait()
                group.cancel_scope.cancel()
            assert client.stats.abandoned == 1
            assert client.limiter.in_use == 0
            await client.components.get(54370)
    assert sent[1] - sent[0] == pytest.approx(1.5)
    assert clock.slept == [pytest.approx(1.5)]


@pytest.mark.anyio
async def test_a_read_timeout_holds_the_slot_a_connect_failure_does_not() -> None:
    """After a read timeout the server may still be at it: the retry waits out a hold. A
    connection that never opened reached nobody: no hold."""
    clock = RecordingClock()
    with respx.mock(base_url=BASE) as router:
        router.get("/v3/components/54369").mock(
            side_effect=[httpx.ReadTimeout("slow"), httpx.Response(200, json=ex.GET_COMPONENT)]
        )
        router.get("/v3/components/54370").mock(
            side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json=ex.GET_COMPONENT)]
        )
        async with _client(clock, wire_hold=2.0) as client:
            await client.components.get(54370)
            assert max(clock.slept, default=0.0) == 0.0  # no hold, only a zero backoff
            clock.slept.clear()
            await client.components.get(54369)
    # One exchange was observed (0 s on the fake clock): the hold is the learnt estimate.
    learnt = WireHold(initial=2.0)
    learnt.observe(0.0)
    assert max(clock.slept) == pytest.approx(learnt.estimate())
