"""Shared fixtures: zero retry waits, a simulator, a strict client wired to it, clocks."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest

from locus_async import LocusClient, set_testing
from locus_async.simulator import Simulator


@pytest.fixture(autouse=True)
def _zero_waits() -> Iterator[None]:
    """Every test runs retries without real backoff (the library's own test switch)."""
    set_testing(True)
    yield
    set_testing(False)


class FakeClock:
    """A controllable clock: ``monotonic()`` and ``time()`` advance only when told."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        """A sleep that only moves the clock (used where waits must be observable)."""
        self.now += max(0.0, seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim() -> Simulator:
    return Simulator()


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Tests marked ``anyio`` run under asyncio and under trio (the client claims both)."""
    return str(request.param)


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[LocusClient]:
    async with sim.client(strict=True) as c:
        yield c


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog
