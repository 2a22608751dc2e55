"""SolarNetwork under seeded faults: reads come back exact, instructions are never queued
twice, and neither the token secret nor a generated secret reaches a log line or an error."""

from __future__ import annotations

import argparse
import logging

import httpx
import pytest
import respx

from locus_async.errors import LocusError, ResponseDecodeError, ServerError, TransportError
from locus_async.simulator import Faults, SolarNetSimulator, describe_and_build
from locus_async.solarnetwork import Snws2Credentials, SolarNetClient
from tests.conftest import FakeClock

SECRET = "demo-sn-secret"


async def _snapshot(sim: SolarNetSimulator) -> list[object]:
    async with sim.client(strict=True) as client:
        return [
            [n.id for n in await client.nodes.list(page_size=7)],
            await client.node_metadata.list(),
            await client.user_metadata.get(),
            [t.id for t in await client.tokens.list()],
            [e.event_id for e in await client.events.list(page_size=5)],
            await client.streams.get(sim.world.stream_id(177, "/power/1")),
        ]


@pytest.mark.anyio
async def test_reads_under_faults_equal_reads_without(sn_clock: FakeClock) -> None:
    """Reads through seeded faults equal the same reads without faults."""
    calm = SolarNetSimulator(clock=sn_clock.time, extra_nodes=30, events=12)
    faults = Faults(seed=1, server_errors=0.2, html_errors=0.2, drops=0.15, rate_limits=0.15)
    stormy = SolarNetSimulator(clock=sn_clock.time, extra_nodes=30, events=12, faults=faults)
    assert await _snapshot(stormy) == await _snapshot(calm)
    injected = stormy.stats.faults
    assert injected["server_errors"] > 0
    assert injected["drops"] > 0
    assert injected["rate_limits"] > 0
    assert injected["html_errors"] > 0
    assert stormy.stats.counters["auth_rejected"] == 0  # every retry was signed afresh


@pytest.mark.anyio
async def test_instructions_are_never_queued_twice(sn_clock: FakeClock) -> None:
    """Under faults an instruction is queued at most once, never twice."""
    faults = Faults(seed=5, server_errors=0.25, drops=0.25, rate_limits=0.2)
    sim = SolarNetSimulator(clock=sn_clock.time, faults=faults)
    queued, refused, lost = 0, 0, 0
    async with sim.client() as client:
        for n in range(40):
            try:
                await client.instructions.add(177, "Signal", {"n": str(n)})
                queued += 1
            except ServerError:
                refused += 1  # the server did not act: nothing queued
            except (TransportError, ResponseDecodeError):
                lost += 1  # the answer was cut after the server acted: not sent again
    stored = sorted(int(dict(i.parameters)["n"]) for i in sim.world.instructions.values())
    assert len(stored) == len(set(stored)) == queued + lost
    assert refused > 0
    assert lost > 0
    assert sim.stats.faults["rate_limits"] > 0


@pytest.mark.anyio
async def test_no_secret_in_logs_or_errors(
    sn_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Under faults, no secret appears in DEBUG logs or in errors."""
    caplog.set_level(logging.DEBUG)
    faults = Faults(seed=3, server_errors=0.3, drops=0.2)
    sim = SolarNetSimulator(clock=sn_clock.time, faults=faults)
    errors: list[str] = []
    async with sim.client() as client:
        generated = None
        for _ in range(5):
            try:
                generated = await client.tokens.generate("User", name="rotating")
                break
            except LocusError as exc:
                errors.append(str(exc))
        for _ in range(20):
            try:
                await client.nodes.list()
            except LocusError as exc:
                errors.append(repr(exc))
        text = "\n".join([r.getMessage() for r in caplog.records] + errors + [repr(client)])
    assert generated is not None
    assert generated.auth_secret
    secrets = [SECRET, generated.auth_secret, *sim.core.issued_secrets]
    assert [s for s in secrets if s in text] == []
    assert any("retrying" in r.getMessage() for r in caplog.records)


def test_simulate_describes_the_solarnetwork_simulator() -> None:
    """simulate --solarnetwork builds the SolarNetwork simulator and describes it."""
    args = argparse.Namespace(
        host="127.0.0.1", port=9, latency=0.0, allowance=1, token_lifetime=3600.0, solarnetwork=True
    )
    sim, lines = describe_and_build(args)
    assert isinstance(sim, SolarNetSimulator)
    assert lines[0] == "SolarNetwork SolarUser simulator on http://127.0.0.1:9"
    assert SECRET not in "\n".join(lines)


@pytest.mark.asyncio
@pytest.mark.parametrize("strict", [False, True])
async def test_a_broken_node_is_dropped_or_raises_strictly(strict: bool) -> None:
    """SolarNetwork shares the forgiving decoder: a node with a string id leaves the list
    (lenient) or raises naming it (strict); neither retries."""
    page = {
        "success": True,
        "data": {
            "startingOffset": 0,
            "returnedResultCount": 2,
            "totalResults": 2,
            "results": [{"id": "x"}, {"id": 2, "name": "two"}],
        },
    }
    with respx.mock(base_url="https://data.solarnetwork.net") as router:
        route = router.get("/solaruser/api/v1/sec/nodes").mock(
            return_value=httpx.Response(200, json=page)
        )
        async with SolarNetClient(
            credentials=Snws2Credentials("tok-1", token_secret="sek-2"), strict=strict
        ) as client:
            if strict:
                with pytest.raises(ResponseDecodeError, match=r"results\[0\]\.id"):
                    await client.nodes.list()
            else:
                nodes = await client.nodes.list()
                assert [(n.id, n.name) for n in nodes] == [(2, "two")]
                assert client.stats.dropped == 1
    assert route.call_count == 1
