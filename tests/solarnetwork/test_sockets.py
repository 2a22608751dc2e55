"""Over real loopback sockets: the signed Host carries the port, exec holds the connection."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from locus_async.simulator import ServedSimulator, SolarNetSimulator
from locus_async.solarnetwork import Snws2Credentials, SolarNetClient

pytestmark = [pytest.mark.asyncio, pytest.mark.sockets]


@pytest.fixture
def served() -> Iterator[tuple[SolarNetSimulator, ServedSimulator]]:
    sim = SolarNetSimulator(instruction_step=0.02)
    with sim.serve() as server:
        yield sim, server


async def test_every_kind_of_request_over_sockets(
    served: tuple[SolarNetSimulator, ServedSimulator],
) -> None:
    """Every kind of request signs and verifies over real loopback sockets."""
    sim, server = served
    assert server.port != 80
    creds = Snws2Credentials("demo-sn-token", token_secret="demo-sn-secret")
    # The served simulator has no rate rule (none was given): no pacing, no real waits.
    async with SolarNetClient(
        credentials=creds, base_url=server.url, strict=True, rate=None
    ) as client:
        assert (await client.whoami()).token == "demo-sn-token"
        assert [n.id for n in await client.nodes.list()] == [177, 178, 179]
        await client.node_metadata.add(177, {"m": {"over": "sockets ✓"}})
        meta = await client.node_metadata.get(177)
        assert meta is not None
        assert meta.m is not None
        assert meta.m["over"] == "sockets ✓"
        (done,) = await client.instructions.exec(177, "Signal", result_max_wait=5)
        assert done.state == "Completed"
        await client.instructions.update_state(done.id, "Completed")
    assert sim.stats.counters["signatures_verified"] == 6
    assert sim.stats.counters["auth_rejected"] == 0
