"""Over real loopback sockets: the one-at-a-time rule, cut-off bodies and timeouts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import anyio
import pytest

from locus_async import LocusClient, RetryPolicy, Timeouts, set_testing
from locus_async.simulator import DEFAULT_ACCOUNT, Faults, ServedSimulator, Simulator

pytestmark = [pytest.mark.asyncio, pytest.mark.sockets]


@pytest.fixture
def served(sim: Simulator) -> Iterator[ServedSimulator]:
    with sim.serve() as server:
        yield server


def _client(url: str, **kwargs: object) -> LocusClient:
    auth = DEFAULT_ACCOUNT.provider()
    return LocusClient(auth=auth, base_url=url, strict=True, **kwargs)  # type: ignore[arg-type]


async def test_concurrent_calls_over_sockets_never_overlap(
    sim: Simulator, served: ServedSimulator
) -> None:
    """50 concurrent calls through real connections: zero 429s, one in flight at most."""
    sim.faults = Faults(latency=0.002)
    async with _client(served.url) as client, anyio.create_task_group() as group:
        for _ in range(50):
            group.start_soon(client.components.get, 54369)
    assert sim.stats.by_status[429] == 0
    assert sim.stats.max_in_flight == 1
    assert sim.stats.by_status[200] == 51


async def test_cut_off_bodies_are_retried_to_exact_data(
    sim: Simulator, served: ServedSimulator
) -> None:
    """Connections dropped mid-body: retried until the data equals the ground truth."""
    sim.faults = Faults(seed=3, drops=0.4)
    args = {
        "fields": ["W_avg", "Wh_sum"],
        "start": datetime(2024, 5, 1),
        "end": datetime(2024, 6, 15),
        "tz": "America/Los_Angeles",
        "gran": "15min",
    }
    async with _client(served.url) as client:
        series = await client.components.data(54369, **args)  # type: ignore[arg-type]
        assert client.stats.transport_errors + client.stats.retries >= 1
    assert sim.stats.faults["drops"] >= 1
    truth = sim.ground_truth("components", 54369, **args)  # type: ignore[arg-type]
    assert list(series) == truth


async def test_slow_answers_time_out_and_are_retried(
    sim: Simulator, served: ServedSimulator
) -> None:
    """An answer slower than the read timeout is abandoned and asked again.

    The server is still working on the abandoned request, so its one slot stays taken and
    the retry meets 429s until it finishes: the credential-wide pause waits that out. This
    needs real (small) waits, so the test switch is off here.
    """
    set_testing(False)
    sim.faults = Faults(seed=5, slow=0.5, slow_seconds=0.6)
    policy = RetryPolicy(initial=0.02, maximum=0.4, rate_limit_initial=0.05)
    async with _client(served.url, timeouts=Timeouts(read=0.2, total=5), retry=policy) as client:
        for _ in range(4):
            assert (await client.sites.get(3393714)).id == 3393714
        assert client.stats.retries >= 1
        assert client.stats.transport_errors >= 1
    assert sim.stats.faults["slow"] >= 1


async def test_gzip_over_the_wire(sim: Simulator, served: ServedSimulator) -> None:
    """Real compressed responses decode transparently."""
    async with _client(served.url) as client:
        components = await client.partners.components(111)
    assert len(components) > 20
