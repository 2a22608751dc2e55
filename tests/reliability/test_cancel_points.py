"""Cancellation at every await point of a call never leaks a slot, under asyncio and trio.

Each sweep starts a call and cancels it after 0, 1, 2, ... scheduler turns, until the call
finishes before the cancel lands: that walks the cancellation through every await point in
order (before acquire, acquire on an idle or a busy limiter, the token grant, the wire,
decoding). After every cancellation the limiter must be back at full capacity and the
next call must go through. Clocks and sleeps are fake: a hold left by a cancelled exchange
is waited out by moving the clock, never by real waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest

from locus_async import AdaptiveLimiter, LocalLimiter, LocusClient, Priority, RetryPolicy
from locus_async.simulator import DEFAULT_ACCOUNT, Simulator
from tests.conftest import FakeClock

BACKENDS = [pytest.param("asyncio", id="asyncio"), pytest.param("trio", id="trio")]
MAX_TICKS = 600


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class SteppingTransport(httpx.AsyncBaseTransport):
    """The simulator in process, with the await points a real network has: connecting and
    sending, waiting for the server, and each chunk of the body."""

    def __init__(self, inner: httpx.AsyncBaseTransport, steps: int = 3) -> None:
        self.inner = inner
        self.steps = steps

    async def _turns(self) -> None:
        for _ in range(self.steps):
            await anyio.lowlevel.checkpoint()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self._turns()  # connect, send
        response = await self.inner.handle_async_request(request)
        await self._turns()  # the server works, the head arrives
        body = await response.aread()
        chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)] or [b""]
        turns = self._turns

        class Stream(httpx.AsyncByteStream):
            async def __aiter__(self):  # type: ignore[no-untyped-def]
                for chunk in chunks:
                    await turns()
                    yield chunk

        headers = [(k, v) for k, v in response.headers.items() if k != "content-encoding"]
        return httpx.Response(response.status_code, headers=headers, stream=Stream())


def _client(sim: Simulator, clock: FakeClock, kind: str) -> LocusClient:
    options: dict[str, Any] = {
        "clock": clock.monotonic,
        "sleep": clock.sleep,
        "transport": SteppingTransport(sim.transport()),
    }
    if kind == "adaptive":
        options["limiter"] = AdaptiveLimiter(ceiling=4, clock=clock.monotonic, sleep=clock.sleep)
    elif kind == "local-2":
        options["limiter"] = LocalLimiter(2, clock=clock.monotonic, sleep=clock.sleep)
    return sim.client(strict=True, retry=RetryPolicy(wire_hold=0.5), **options)


async def _cancel_after(ticks: int, call: Callable[[], Awaitable[object]]) -> bool:
    """Run ``call`` and cancel it after ``ticks`` turns; True if it finished first."""
    finished = False

    async def run() -> None:
        nonlocal finished
        await call()
        finished = True

    async with anyio.create_task_group() as group:
        group.start_soon(run)
        for _ in range(ticks):
            await anyio.lowlevel.checkpoint()
        group.cancel_scope.cancel()
    return finished


def _assert_idle(client: LocusClient, sim: Simulator) -> None:
    limiter = client.limiter
    assert limiter.in_use == 0
    assert limiter.waiting == 0  # type: ignore[attr-defined]
    assert client.stats.in_flight == 0
    assert sim.stats.in_flight[DEFAULT_ACCOUNT.client_id] == 0


async def _sweep(
    kind: str, call: Callable[[LocusClient], Awaitable[object]], *, last_phase: bool = False
) -> set[tuple[int, int, int]]:
    """Cancel a fresh client's first call at every turn; returns the phases reached as
    (requests sent, tokens granted, exchanges abandoned on the wire). The sweep ends when
    the call finishes before the cancel three times in a row, or (``last_phase``: a decode
    in a worker thread, whose length in turns depends on the machine) when the cancel has
    landed after the answer three times in a row."""
    phases: set[tuple[int, int, int]] = set()
    finished_in_a_row = 0
    decoding_in_a_row = 0
    for ticks in range(MAX_TICKS):
        sim, clock = Simulator(), FakeClock()
        async with _client(sim, clock, kind) as client:
            done = await _cancel_after(ticks, lambda: call(client))
            stats = client.stats
            phase = (stats.requests, sum(stats.token_grants.values()), stats.abandoned)
            phases.add(phase)
            _assert_idle(client, sim)
            held_before = client.limiter.held  # type: ignore[attr-defined]
            with anyio.fail_after(30):  # a hang guard only: the clock is fake
                component = await client.components.get(54369)
            assert component.id == 54369
            assert held_before <= (1 if phase[2] else 0)
            _assert_idle(client, sim)
        finished_in_a_row = finished_in_a_row + 1 if done else 0
        after_answer = phase == (2, 1, 0)
        decoding_in_a_row = decoding_in_a_row + 1 if after_answer or done else 0
        if finished_in_a_row == 3 or (last_phase and decoding_in_a_row == 3):
            return phases
    raise AssertionError(f"the call never finished within {MAX_TICKS} turns")


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["local", "local-2", "adaptive"])
async def test_a_get_cancelled_at_every_await_point_leaks_nothing(kind: str) -> None:
    """A component get (token grant included) cancelled at each of its await points: the
    limiter is idle again every time, and the sweep reached every phase of the call."""
    phases = await _sweep(kind, lambda client: client.components.get(54369))
    assert (0, 0, 0) in phases  # before or during acquire
    assert (1, 0, 1) in phases  # during the token grant, on the wire
    assert (2, 1, 1) in phases  # the data request on the wire
    assert (2, 1, 0) in phases  # after the answer: deciphering, decoding


@pytest.mark.anyio
async def test_a_large_data_call_cancelled_at_every_await_point_leaks_nothing() -> None:
    """Five days of 1min data (decoded in a worker thread) cancelled at each await point."""

    window = {"start": datetime(2024, 6, 1), "end": datetime(2024, 6, 5), "tz": "UTC"}

    async def call(client: LocusClient) -> object:
        return await client.components.data(54369, fields="W_avg,Wh_sum", gran="1min", **window)

    phases = await _sweep("local", call, last_phase=True)
    assert (2, 1, 1) in phases
    assert (2, 1, 0) in phases


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["local", "adaptive"])
async def test_a_waiter_cancelled_on_a_busy_limiter_leaves_the_queue(kind: str) -> None:
    """A caller queued behind a request on the wire, cancelled at each turn of its wait:
    the queue empties, the holder finishes, and capacity is whole again."""
    clock = FakeClock()
    sim = Simulator()
    gate = anyio.Event()
    async with _client(sim, clock, kind) as client:
        await client.components.get(54369)  # the token is ready
        limiter = client.limiter
        for ticks in range(40):
            gate = anyio.Event()
            async with anyio.create_task_group() as group:

                async def hold(gate: anyio.Event = gate) -> None:
                    async with limiter.slot(Priority.INTERACTIVE):
                        await gate.wait()

                group.start_soon(hold)
                for _ in range(5):
                    await anyio.lowlevel.checkpoint()
                assert limiter.in_use == 1
                await _cancel_after(ticks, lambda: client.components.get(54369))
                assert limiter.waiting == 0  # type: ignore[attr-defined]
                gate.set()
            _assert_idle(client, sim)
        with anyio.fail_after(30):
            assert (await client.components.get(54370)).id == 54370


@pytest.mark.anyio
async def test_a_slot_holder_cancelled_during_a_pause_gives_the_slot_back() -> None:
    """Cancelled while waiting out a 429 pause inside its slot: the slot comes back."""
    clock = FakeClock()
    limiter = LocalLimiter(1, clock=clock.monotonic, sleep=anyio.sleep)
    await limiter.pause(3600)
    with anyio.move_on_after(0.01):
        async with limiter.slot():
            raise AssertionError("the pause must hold the caller back")
    assert (limiter.in_use, limiter.waiting) == (0, 0)


# -- native asyncio cancellation (not anyio's): the paths users of plain asyncio take ------


def _native(sim: Simulator) -> LocusClient:
    return sim.client(strict=True, transport=SteppingTransport(sim.transport()))


@pytest.mark.asyncio
async def test_asyncio_timeout_zero_on_an_idle_limiter_does_not_hang_the_client() -> None:
    """The P0: ``asyncio.timeout(0)`` around a call used to leave the slot taken for good."""
    sim = Simulator()
    async with _native(sim) as client:
        for _ in range(3):
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0):
                    await client.components.get(54369)
            _assert_idle(client, sim)
        async with asyncio.timeout(30):
            assert (await client.components.get(54369)).id == 54369


@pytest.mark.asyncio
async def test_a_failing_taskgroup_sibling_does_not_hang_the_client() -> None:
    """A sibling failing at once cancels the call at its first await: nothing leaks."""
    sim = Simulator()
    async with _native(sim) as client:

        async def fail() -> None:
            raise RuntimeError("sibling failed")

        for _ in range(3):
            with pytest.raises(ExceptionGroup):  # noqa: PT012 - the group is the statement
                async with asyncio.TaskGroup() as group:
                    group.create_task(client.components.get(54369))
                    group.create_task(fail())
            _assert_idle(client, sim)
        async with asyncio.timeout(30):
            assert (await client.components.get(54369)).id == 54369


@pytest.mark.asyncio
@pytest.mark.parametrize("capacity", [1, 3])
async def test_task_cancel_after_each_loop_tick_leaks_nothing(capacity: int) -> None:
    """``task.cancel()`` after 0, 1, 2, ... event-loop ticks, through the whole call: every
    time the limiter's capacity is whole again and the next call goes through."""
    finished_in_a_row = 0
    for ticks in range(MAX_TICKS):
        sim, clock = Simulator(), FakeClock()
        client = sim.client(
            strict=True,
            max_concurrency=capacity,
            clock=clock.monotonic,
            sleep=clock.sleep,
            retry=RetryPolicy(wire_hold=0.5),
            transport=SteppingTransport(sim.transport()),
        )
        async with client:
            task = asyncio.create_task(client.components.get(54369))
            for _ in range(ticks):
                await asyncio.sleep(0)
            task.cancel()
            try:
                await task
                finished_in_a_row += 1
            except asyncio.CancelledError:
                finished_in_a_row = 0
            _assert_idle(client, sim)
            async with asyncio.timeout(30):
                assert (await client.components.get(54369)).id == 54369
            assert client.limiter.in_use == 0
        if finished_in_a_row == 3:
            return
    raise AssertionError("the call never finished")
