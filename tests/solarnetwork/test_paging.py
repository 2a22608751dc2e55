"""Paging: both list shapes iterated to the end without losing or repeating an item, even
when the server caps pages below what was asked."""

from __future__ import annotations

import pytest

from locus_async.errors import ResponseDecodeError
from locus_async.simulator import SolarNetSimulator
from tests.conftest import FakeClock

pytestmark = pytest.mark.anyio

EXPECTED_NODES = [177, 178, 179, *range(1000, 1250)]


def _requests(sim: SolarNetSimulator, suffix: str) -> int:
    return sum(1 for entry in sim.stats.log if entry[1].endswith(suffix))


async def test_nodes_page_to_the_end(sn_clock: FakeClock) -> None:
    """Paging walks every node in order with the fewest requests."""
    sim = SolarNetSimulator(clock=sn_clock.time, extra_nodes=250)
    async with sim.client(strict=True) as client:
        ids = [n.id async for n in client.nodes.iter(page_size=100)]
    assert ids == EXPECTED_NODES
    assert _requests(sim, "/nodes") == 3


async def test_a_server_cap_below_the_page_size_loses_nothing(sn_clock: FakeClock) -> None:
    """A server capping pages below the page size loses no node."""
    sim = SolarNetSimulator(clock=sn_clock.time, extra_nodes=250, page_cap=40)
    async with sim.client() as client:
        ids = [n.id for n in await client.nodes.list(page_size=100)]
    assert ids == EXPECTED_NODES
    assert _requests(sim, "/nodes") == 7  # ceil(253 / 40)


async def test_exact_multiple_of_the_page_size(sn_clock: FakeClock) -> None:
    """An exact multiple of the page size ends on the total, without an empty page."""
    sim = SolarNetSimulator(clock=sn_clock.time, extra_nodes=97)  # 100 nodes
    async with sim.client() as client:
        ids = [n.id for n in await client.nodes.list(page_size=50)]
    assert len(ids) == len(set(ids)) == 100
    assert _requests(sim, "/nodes") == 2  # the total says there is no third page


async def test_nodes_with_metadata_asks_once_per_page(sn_clock: FakeClock) -> None:
    """nodes_with_metadata asks for metadata once per page of nodes."""
    sim = SolarNetSimulator(clock=sn_clock.time, extra_nodes=150)
    sim.world.node_meta[1100] = {"created": 0.0, "updated": 0.0, "m": {"row": 7}}
    async with sim.client(strict=True) as client:
        pairs = [(n.id, m) async for n, m in client.nodes_with_metadata(page_size=100)]
    assert [n for n, _ in pairs] == [177, 178, 179, *range(1000, 1150)]
    with_meta = {n: m.m for n, m in pairs if m is not None}
    assert with_meta == {
        177: {"hardware": "raspberry-pi", "os": "debian", "os-version": 12},
        178: {"hardware": "x86", "os": "debian", "os-version": 11},
        1100: {"row": 7},
    }
    assert _requests(sim, "/nodes") == 2
    assert _requests(sim, "/nodes/meta") == 2


async def test_flat_event_lists_page_by_offset(sn_clock: FakeClock) -> None:
    """Event lists page by offset to the end, each event once."""
    sim = SolarNetSimulator(clock=sn_clock.time, events=247)
    async with sim.client(strict=True) as client:
        events = [e async for e in client.events.iter(page_size=100)]
    assert len(events) == 250
    assert len({e.event_id for e in events}) == 250
    assert _requests(sim, "/user/events") == 3  # 100, 100, 50: the short page is the end


async def test_flat_event_lists_under_a_server_cap(sn_clock: FakeClock) -> None:
    """Event lists under a server cap lose nothing and cost ceil(total / cap) pages."""
    sim = SolarNetSimulator(clock=sn_clock.time, events=247, page_cap=60)
    async with sim.client() as client:
        events = await client.events.list(page_size=100)
    assert len({e.event_id for e in events}) == 250
    assert _requests(sim, "/user/events") == 5  # 60, 60, 60, 60, 10


async def test_a_few_events_cost_one_confirming_request(sn_clock: FakeClock) -> None:
    """A short event list costs one page and one request that confirms the end."""
    sim = SolarNetSimulator(clock=sn_clock.time)
    async with sim.client() as client:
        assert len(await client.events.list(page_size=100)) == 3
    assert _requests(sim, "/user/events") == 2


async def test_a_server_that_ignores_the_offset_is_caught(sn_clock: FakeClock) -> None:
    """A server that ignores the offset is caught instead of repeating items."""
    sim = SolarNetSimulator(clock=sn_clock.time, extra_nodes=20)
    original = sim.core._page

    def ignore_offset(call, items):  # type: ignore[no-untyped-def]
        call.params = [(k, v) for k, v in call.params if k != "offset"]
        return original(call, items)

    sim.core._page = ignore_offset  # type: ignore[method-assign]
    async with sim.client() as client:
        with pytest.raises(ResponseDecodeError, match="asked for offset 10"):
            await client.nodes.list(page_size=10)
