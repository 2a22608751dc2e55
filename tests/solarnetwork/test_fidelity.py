"""What real SolarUser servers (and SolarNetwork's own JS client) do, which the client and
the simulator now both handle: paged or flat event lists, lists without totals, the
optional node of datum auxiliary lists, any legal header name in SignedHeaders, the path
forms of datum auxiliary view/delete and instr/add/{topic}, and both sort-key spellings."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from locus_async.simulator import SolarNetSimulator
from locus_async.solarnetwork import DatumAuxiliary
from tests.conftest import FakeClock
from tests.solarnetwork.conftest import START
from tests.solarnetwork.test_simulator_auth import PREFIX, _headers, _send

pytestmark = pytest.mark.anyio

CREATED = datetime(2024, 2, 1, 12, 30, 5, 250_000, tzinfo=UTC)


def _record(node_id: int, source: str, created: datetime = CREATED) -> DatumAuxiliary:
    return DatumAuxiliary(
        created=created,
        node_id=node_id,
        source_id=source,
        type="Reset",
        final={"a": {"wattHours": 100}},
        start={"a": {"wattHours": 1}},
    )


@pytest.mark.parametrize("paged", [False, True])
async def test_user_events_are_read_flat_or_paged(paged: bool) -> None:
    """The reference shows /user/events flat and describes it paged: both are read, every
    event once, under a page cap below the page size."""
    clock = FakeClock(START)
    sim = SolarNetSimulator(clock=clock.time, events=23, page_cap=5, paged_events=paged)
    async with sim.client(clock=clock.monotonic, sleep=clock.sleep, strict=True) as client:
        events = await client.events.list(page_size=10)
        requests = client.stats.requests
    expected = sorted(e["eventId"] for e in sim.world.events if e["userId"] == 147)
    assert sorted(e.event_id for e in events) == expected
    assert len(events) == len(expected) > 20
    pages = -(-len(expected) // 5)
    # 5 per page. Flat (no total): the list ends at a page shorter than the ones before,
    # or at an empty one when the count is a multiple of the cap.
    assert requests == (pages if paged else pages + (len(expected) % 5 == 0))


async def test_datum_auxiliary_without_nodes_and_without_totals() -> None:
    """No node named lists every visible node's records; without_total_count sends
    withoutTotalResultsCount and pages to the end all the same."""
    clock = FakeClock(START)
    sim = SolarNetSimulator(clock=clock.time, page_cap=2)
    async with sim.client(clock=clock.monotonic, sleep=clock.sleep, strict=True) as client:
        for node, source in [(177, "/a"), (178, "/b"), (179, "/c"), (177, "/d"), (178, "/e")]:
            await client.datum_auxiliary.store(_record(node, source))
        everything = await client.datum_auxiliary.list()
        counted = await client.datum_auxiliary.list(without_total_count=True, page_size=2)
        one = await client.datum_auxiliary.list(178)
    assert sorted(r.source_id for r in everything) == ["/a", "/b", "/c", "/d", "/e"]
    assert counted == everything
    assert sorted(r.source_id for r in one) == ["/b", "/e"]
    with pytest.raises(ValueError, match="without_total_count"):
        client.datum_auxiliary.iter(without_total_count="yes")  # type: ignore[arg-type]


async def test_signed_header_names_with_underscores_and_dots(
    sn_sim: SolarNetSimulator, sn_clock: FakeClock
) -> None:
    """Header names are RFC 9110 tokens: a signed x-sn-trace_id or x-sn-req.id verifies;
    a name that is no token is refused as malformed."""
    extra = {"X-SN-Trace_Id": "7", "X-SN-Req.Id": "8"}
    async with sn_sim.client(headers=extra, clock=sn_clock.monotonic) as client:
        assert (await client.whoami()).token == "demo-sn-token"
    headers = _headers(sn_clock)
    headers["Authorization"] = headers["Authorization"].replace(
        "SignedHeaders=host;x-sn-date", "SignedHeaders=host;x-sn-date;a=b"
    )
    refused = await _send(sn_sim, "GET", PREFIX + "/whoami", headers)
    assert refused.status_code == 401
    assert "RFC 9110" in refused.headers["x-sn-errormessage"]


async def test_datum_auxiliary_path_forms(sn_sim: SolarNetSimulator, sn_clock: FakeClock) -> None:
    """GET and DELETE /datum/auxiliary/{type}/{nodeId}/{date}/{sourceId}, as SolarNetwork's
    JS client sends them, reach the same record as the query form."""
    async with sn_sim.client(clock=sn_clock.monotonic) as client:
        await client.datum_auxiliary.store(_record(177, "Foo"))
    date = "2024-02-01 12:30:05.250Z"
    target = f"{PREFIX}/datum/auxiliary/Reset/177/{quote(date)}/Foo"
    path = target  # signed as sent: the canonical request has the encoded path
    viewed = await _send(sn_sim, "GET", target, _headers(sn_clock, path=path))
    assert viewed.status_code == 200, viewed.text
    assert viewed.json()["data"]["sourceId"] == "Foo"
    assert viewed.json()["data"]["final"]["a"] == {"wattHours": 100}
    deleted = await _send(sn_sim, "DELETE", target, _headers(sn_clock, method="DELETE", path=path))
    assert deleted.status_code == 200, deleted.text
    assert sn_sim.world.auxiliary == {}


async def test_instruction_add_with_the_topic_in_the_path(
    sn_sim: SolarNetSimulator, sn_clock: FakeClock
) -> None:
    """POST /instr/add/{topic}?nodeId=...&parameters[0].name=... queues one instruction."""
    query = [("nodeId", "177"), ("parameters[0].name", "/switch/1"), ("parameters[0].value", "1")]
    path = f"{PREFIX}/instr/add/SetControlParameter"
    target = path + "?" + "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in query)
    response = await _send(
        sn_sim, "POST", target, _headers(sn_clock, method="POST", path=path, query=query)
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert (data["topic"], data["nodeId"], data["state"]) == ("SetControlParameter", 177, "Queued")
    assert data["parameters"] == [{"name": "/switch/1", "value": "1"}]
    assert [i.topic for i in sn_sim.world.instructions.values()] == ["SetControlParameter"]


async def test_both_sort_key_spellings(sn_sim: SolarNetSimulator, sn_clock: FakeClock) -> None:
    """sorts[0].sortKey orders the list; sorts[0].key (one public client's spelling) is
    accepted and ignored, as the server ignores it."""
    async with sn_sim.client(clock=sn_clock.monotonic) as client:
        for source in ("/b", "/a", "/c"):
            await client.datum_auxiliary.store(_record(177, source))
    results = {}
    for name in ("sortKey", "key"):
        query = [
            ("nodeId", "177"),
            (f"sorts[0].{name}", "source"),
            ("sorts[0].descending", "true"),
        ]
        path = f"{PREFIX}/datum/auxiliary"
        target = path + "?" + "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in query)
        response = await _send(sn_sim, "GET", target, _headers(sn_clock, path=path, query=query))
        assert response.status_code == 200, response.text
        results[name] = [r["sourceId"] for r in response.json()["data"]["results"]]
    assert results["sortKey"] == ["/c", "/b", "/a"]
    assert results["key"] == ["/a", "/b", "/c"]  # the default order: created, node, source
