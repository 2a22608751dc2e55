"""Lifecycle errors: a closed client, or one used in a second event loop, says so in one
line (a ``LocusError``) and sends nothing, for both providers and under asyncio and trio."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest
import trio

from locus_async import ClientClosed, EventLoopChanged, LocusError, UsageError
from locus_async.simulator import Simulator, SolarNetSimulator

pytestmark = pytest.mark.anyio


def _locus() -> tuple[Any, Any, Callable[[Any], Awaitable[Any]]]:
    sim = Simulator()
    return sim, sim.client(), lambda client: client.sites.get(3393714)


def _solarnet() -> tuple[Any, Any, Callable[[Any], Awaitable[Any]]]:
    sim = SolarNetSimulator()
    return sim, sim.client(), lambda client: client.whoami()


PROVIDERS = {"locus": _locus, "solarnetwork": _solarnet}


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_closed_client_says_so_and_sends_nothing(provider: str) -> None:
    """After its ``async with`` block, a call raises ClientClosed naming the client and
    what to do; the server sees no request."""
    sim, client, call = PROVIDERS[provider]()
    async with client:
        await call(client)
    sent = sim.stats.requests
    with pytest.raises(ClientClosed) as caught:
        await call(client)
    name = type(client).__name__
    assert str(caught.value) == (
        f"this {name} is closed: make a new one, or call it inside its 'async with' block"
    )
    assert isinstance(caught.value, LocusError)
    assert isinstance(caught.value, UsageError)
    assert sim.stats.requests == sent


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("runner", ["asyncio", "trio"])
def test_a_client_used_in_a_second_event_loop_says_so(provider: str, runner: str) -> None:
    """A client made once and used by two ``asyncio.run`` (or ``trio.run``) calls works in
    the first and raises EventLoopChanged in the second, without sending anything."""
    sim, client, call = PROVIDERS[provider]()

    async def use() -> object:
        return await call(client)

    def run(function: Callable[[], Coroutine[Any, Any, object]]) -> object:
        if runner == "asyncio":
            return asyncio.run(function())
        return trio.run(function)

    assert run(use) is not None
    sent = sim.stats.requests
    with pytest.raises(EventLoopChanged, match=r"^this .* was first used in another event loop"):
        run(use)
    assert sim.stats.requests == sent
