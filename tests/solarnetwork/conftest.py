"""SolarNetwork fixtures: a simulator on a fake clock and a strict client wired to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from locus_async.simulator import SolarNetSimulator
from locus_async.solarnetwork import SolarNetClient
from tests.conftest import FakeClock

#: 2024-03-01T00:00:00Z: after the default world was created.
START = 1_709_251_200.0


@pytest.fixture
def sn_clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def sn_sim(sn_clock: FakeClock) -> SolarNetSimulator:
    """The server's clock and waits are the fake clock: exec holds and node steps take no
    real time, and dates are checked against the same clock the client signs with."""
    return SolarNetSimulator(clock=sn_clock.time, sleep=sn_clock.sleep, extra_nodes=0)


@pytest.fixture
async def sn(sn_sim: SolarNetSimulator, sn_clock: FakeClock) -> AsyncIterator[SolarNetClient]:
    async with sn_sim.client(strict=True, clock=sn_clock.monotonic, sleep=sn_clock.sleep) as client:
        yield client
