"""The limiter: within the allowance, FIFO, priorities, cancellation-safe, slot only on the wire."""

from __future__ import annotations

import math
import random

import anyio
import httpx
import pytest
import respx

from locus_async import BearerToken, LocalLimiter, LocusClient, Priority
from locus_async._core.http import Request
from tests import reference_examples as ex

pytestmark = pytest.mark.anyio

BASE = "https://api.locusenergy.com"


class Wire:
    """A respx side effect that measures how many requests are in flight at once."""

    def __init__(self, delay: float = 0.0) -> None:
        self.now = 0
        self.most = 0
        self.order: list[str] = []
        self.delay = delay

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.now += 1
        self.most = max(self.most, self.now)
        self.order.append(request.headers.get("x-caller", ""))
        await anyio.sleep(self.delay)
        self.now -= 1
        return httpx.Response(200, json=ex.GET_COMPONENT)


async def test_200_callers_never_two_in_flight() -> None:
    """200 concurrent calls at allowance 1: the server never sees two at once."""
    wire = Wire(delay=0.0005)
    with respx.mock(base_url=BASE) as router:
        router.get("/v3/components/54369").mock(side_effect=wire)
        async with LocusClient(auth=BearerToken("tok-1234")) as client:
            async with anyio.create_task_group() as group:
                for _ in range(200):
                    group.start_soon(client.components.get, 54369)
            assert client.stats.max_in_flight == 1
            assert client.stats.requests == 200
            assert client.limiter.in_use == 0  # type: ignore[attr-defined]
    assert wire.most == 1


@pytest.mark.parametrize("allowance", [2, 4])
async def test_allowance_n_allows_n_in_flight(allowance: int) -> None:
    """An allowance of N is used fully and never exceeded."""
    wire = Wire(delay=0.002)
    with respx.mock(base_url=BASE) as router:
        router.get("/v3/components/54369").mock(side_effect=wire)
        client = LocusClient(auth=BearerToken("tok-1234"), max_concurrency=allowance)
        async with client, anyio.create_task_group() as group:
            for _ in range(40):
                group.start_soon(client.components.get, 54369)
    assert wire.most == allowance


async def test_callers_are_served_in_arrival_order() -> None:
    """FIFO: the server sees requests in the order callers asked for a slot."""
    wire = Wire(delay=0.0005)
    with respx.mock(base_url=BASE) as router:
        router.get("/v3/components/54369").mock(side_effect=wire)
        async with LocusClient(auth=BearerToken("tok-1234")) as client:

            async def call(index: int) -> None:
                request = Request(
                    "GET", "/v3/components/54369", headers=(("X-Caller", str(index)),)
                )
                await client._session.call(request, lambda r: r)

            async with anyio.create_task_group() as group:
                for index in range(60):
                    group.start_soon(call, index)
                    await anyio.lowlevel.checkpoint()
    assert wire.order == [str(i) for i in range(60)]


async def test_interactive_calls_go_before_background_ones() -> None:
    """A waiting interactive caller is served before queued background work."""
    limiter = LocalLimiter(1)
    served: list[str] = []
    everybody_queued = anyio.Event()

    async def take(name: str, priority: Priority) -> None:
        async with limiter.slot(priority):
            served.append(name)
            if name == "bg0":  # holds the slot until every other caller has queued
                await everybody_queued.wait()

    async with anyio.create_task_group() as group:
        for index in range(5):
            group.start_soon(take, f"bg{index}", Priority.BACKGROUND)
            await anyio.lowlevel.checkpoint()
        group.start_soon(take, "ui", Priority.INTERACTIVE)
        await anyio.wait_all_tasks_blocked()
        assert limiter.waiting == 5
        everybody_queued.set()
    assert served[0] == "bg0"  # already holding the slot
    assert served[1] == "ui"
    assert served[2:] == ["bg1", "bg2", "bg3", "bg4"]


@pytest.mark.parametrize("capacity", [1, 3])
async def test_random_cancellations_leave_full_capacity(capacity: int) -> None:
    """1,000 callers cancelled at random moments (waiting, or holding): no slot is lost."""
    limiter = LocalLimiter(capacity)
    rng = random.Random(1234)
    completed = 0

    cancelled = 0

    async def caller(patience: float) -> None:
        nonlocal completed, cancelled
        with anyio.move_on_after(patience) as scope:
            async with limiter.slot(rng.choice(list(Priority))):
                assert limiter.in_use <= capacity
                await anyio.sleep(rng.random() * 0.001)
                completed += 1
        cancelled += scope.cancelled_caught

    async with anyio.create_task_group() as group:
        for index in range(1000):
            # every 10th caller waits as long as it takes, every 10th gives up at once:
            # both kinds happen whatever the machine's speed; the rest at random moments
            patience = (
                math.inf if index % 10 == 0 else 0.0 if index % 10 == 1 else rng.random() * 0.003
            )
            group.start_soon(caller, patience)
            if rng.random() < 0.3:
                await anyio.lowlevel.checkpoint()
    assert completed >= 100  # the patient ones
    assert cancelled >= 100  # the impatient ones
    assert completed + cancelled == 1000
    assert limiter.in_use == 0
    assert limiter.waiting == 0
    with anyio.fail_after(30):  # a hang guard: full capacity again, nobody waiting
        async with anyio.create_task_group() as group:
            held = anyio.Event()
            count = 0

            async def hold() -> None:
                nonlocal count
                async with limiter.slot():
                    count += 1
                    if count == capacity:
                        held.set()
                    await held.wait()

            for _ in range(capacity):
                group.start_soon(hold)


async def test_slot_is_free_while_decoding() -> None:
    """Parsing happens after the slot is released."""
    with respx.mock(base_url=BASE) as router:
        router.get("/v3/components/54369").mock(
            return_value=httpx.Response(200, json=ex.GET_COMPONENT)
        )
        async with LocusClient(auth=BearerToken("tok-1234")) as client:
            seen: list[int] = []

            def decode(response: object) -> None:
                seen.append(client.limiter.in_use)  # type: ignore[attr-defined]

            await client._session.call(Request("GET", "/v3/components/54369"), decode)
    assert seen == [0]


async def test_capacity_can_grow_and_shrink() -> None:
    """Raising capacity admits waiters at once; lowering it takes effect as slots free up."""
    limiter = LocalLimiter(1)
    inside = 0
    most = 0
    release = anyio.Event()

    async def worker() -> None:
        nonlocal inside, most
        async with limiter.slot():
            inside += 1
            most = max(most, inside)
            await release.wait()
            inside -= 1

    async with anyio.create_task_group() as group:
        for _ in range(4):
            group.start_soon(worker)
        await anyio.wait_all_tasks_blocked()
        assert (inside, limiter.waiting) == (1, 3)
        limiter.set_capacity(3)
        await anyio.wait_all_tasks_blocked()
        assert (inside, limiter.waiting) == (3, 1)
        limiter.set_capacity(1)
        release.set()
    assert most == 3
    assert limiter.in_use == 0
