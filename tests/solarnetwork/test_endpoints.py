"""Every SolarUser endpoint end to end against the simulator, every signature verified.

The client is strict (unknown response fields fail), runs on the simulator's fake clock, and
after each test the simulator must have verified a signature for every request it answered.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from locus_async.errors import NotFound, PermissionDenied, UsageError, ValidationFailed
from locus_async.simulator import SolarNetSimulator
from locus_async.solarnetwork import DatumAuxiliary, Metadata, SolarNetClient

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _every_request_was_signed(sn_sim: SolarNetSimulator) -> Iterator[None]:
    yield
    stats = sn_sim.stats
    assert stats.counters["internal_errors"] == 0, sn_sim.core.last_error
    signed = [entry for entry in stats.log if entry[1] != "/solaruser/associate.json"]
    assert stats.counters["auth_rejected"] == 0
    assert stats.counters["signatures_verified"] == len(signed)


async def test_whoami(sn: SolarNetClient) -> None:
    """whoami returns the token id and its type."""
    who = await sn.whoami()
    assert (who.token, who.token_type) == ("demo-sn-token", "User")


async def test_nodes_list_page_and_archived(sn: SolarNetClient) -> None:
    """Nodes come back typed (names, zones, locations), paged and archived lists included."""
    nodes = await sn.nodes.list()
    assert [n.id for n in nodes] == [177, 178, 179]
    home = nodes[0]
    assert home.name == "Home"
    assert home.id_and_name == "177 - Home"
    assert home.node is not None
    assert home.node.time_zone == "Pacific/Auckland"
    assert home.node_location is not None
    assert home.node_location.country == "NZ"
    assert home.user is not None
    assert home.user.email == "demo@solarnetwork.example"
    assert home.created == datetime(2024, 1, 1, tzinfo=UTC)
    page = await sn.nodes.page(offset=1, page_size=1)
    assert (page.total_results, page.starting_offset, [n.id for n in page.results]) == (3, 1, [178])
    assert [n.id for n in await sn.nodes.archived()] == [180]


async def test_archive_and_restore(sn: SolarNetClient) -> None:
    """Archiving hides nodes from the list and restoring brings them back; another's node is 403."""
    await sn.nodes.set_archived([178, 179])
    assert [n.id for n in await sn.nodes.list()] == [177]
    assert [n.id for n in await sn.nodes.archived()] == [178, 179, 180]
    await sn.nodes.set_archived(178, archived=False)
    assert [n.id for n in await sn.nodes.list()] == [177, 178]
    with pytest.raises(PermissionDenied):
        await sn.nodes.set_archived(300)


async def test_create_and_download_certificate(
    sn: SolarNetClient, sn_sim: SolarNetSimulator
) -> None:
    """A created node certificate carries the node, its location and the certificate."""
    info = await sn.nodes.create_certificate(
        time_zone="Pacific/Auckland", country="nz", keystore_password="keystore-pass-1"
    )
    assert info.node is not None
    assert info.node.time_zone == "Pacific/Auckland"
    assert info.node_location is not None
    assert info.node_location.country == "NZ"
    assert info.certificate is not None
    assert info.certificate["status"] == "v"
    node_id = info.node.id
    assert node_id in sn_sim.world.nodes
    cert = await sn.nodes.certificate(node_id)
    assert cert.filename == f"solarnode-{node_id}.p12"
    assert cert.content[:2] == b"\x30\x82"
    assert len(cert.content) == 4 + 256
    assert "keystore-pass-1" not in repr(sn_sim.stats.log)
    with pytest.raises(PermissionDenied):
        await sn.nodes.certificate(300)
    with pytest.raises(UsageError, match="time zone"):
        await sn.nodes.create_certificate(
            time_zone="Mars/Base", country="NZ", keystore_password="x"
        )


async def test_associate_uses_no_token(sn_sim: SolarNetSimulator) -> None:
    """associate works without credentials and returns the association."""
    async with SolarNetClient(
        credentials=None, base_url="http://localhost", transport=sn_sim.transport(), strict=True
    ) as anonymous:
        association = await anonymous.associate(
            username="demo@solarnetwork.example",
            confirmation_key="invite-177-key",
            keystore_password="node-pass",
        )
        assert association.network_certificate_status == "Active"
        assert association.network_certificate_subject_dn == (
            f"UID={association.network_id},O=SolarNetwork"
        )
        assert sn_sim.world.nodes[association.network_id].user_id == 147
        with pytest.raises(ValidationFailed, match="already used"):
            await anonymous.associate(
                username="demo@solarnetwork.example",
                confirmation_key="invite-177-key",
                keystore_password="node-pass",
            )
        with pytest.raises(UsageError, match="needs credentials"):
            await anonymous.whoami()


async def test_node_metadata_get_add_store_delete(sn: SolarNetClient) -> None:
    """Node metadata: add merges, store replaces, delete removes, get reads each state."""
    meta = await sn.node_metadata.get(177)
    assert meta is not None
    assert meta.m == {"hardware": "raspberry-pi", "os": "debian", "os-version": 12}
    assert meta.pm == {"room": {"foo": "bar"}}
    assert meta.t == ("green", "special")
    assert meta.node_id == 177
    await sn.node_metadata.add(
        177, {"m": {"extra": True}, "pm": {"room": {"n": 1}}, "t": ["new", "green"]}
    )
    merged = await sn.node_metadata.get(177)
    assert merged is not None
    assert merged.m == {"hardware": "raspberry-pi", "os": "debian", "os-version": 12, "extra": True}
    assert merged.pm == {"room": {"foo": "bar", "n": 1}}
    assert merged.t == ("green", "special", "new")
    await sn.node_metadata.store(177, Metadata(m={"only": 1}))
    stored = await sn.node_metadata.get(177)
    assert stored is not None
    assert (stored.m, stored.pm, stored.t) == ({"only": 1}, None, ())
    await sn.node_metadata.delete(177)
    assert await sn.node_metadata.get(177) is None
    with pytest.raises(PermissionDenied):
        await sn.node_metadata.get(300)
    with pytest.raises(NotFound):
        await sn.node_metadata.add(999, {"m": {}})


async def test_node_metadata_list_and_filters(sn: SolarNetClient) -> None:
    """Metadata lists filter by LDAP-style metadata filters and sort by node."""
    all_meta = await sn.node_metadata.list()
    assert [m.node_id for m in all_meta] == [177, 178]
    debian = await sn.node_metadata.list(metadata_filter="(&(/m/os=debian)(/m/os-version>=12))")
    assert [m.node_id for m in debian] == [177]
    tagged = await sn.node_metadata.list([177, 178], metadata_filter="(t=yellow)")
    assert [m.node_id for m in tagged] == [178]
    newest_first = await sn.node_metadata.list(sort="-node")
    assert [m.node_id for m in newest_first] == [178, 177]
    with pytest.raises(UsageError, match="filter"):
        await sn.node_metadata.list(metadata_filter="(/m/os=debian")


async def test_user_metadata(sn: SolarNetClient) -> None:
    """User metadata reads, merges on add, is replaced on store and removed on delete."""
    meta = await sn.user_metadata.get()
    assert meta is not None
    assert meta.user_id == 147
    assert meta.m == {"plan": "pro"}
    await sn.user_metadata.add({"m": {"seats": 3}})
    added = await sn.user_metadata.get()
    assert added is not None
    assert added.m == {"plan": "pro", "seats": 3}
    await sn.user_metadata.store({"t": ["fresh"]})
    stored = await sn.user_metadata.get()
    assert stored is not None
    assert (stored.m, stored.t) == (None, ("fresh",))
    await sn.user_metadata.delete()
    assert await sn.user_metadata.get() is None


async def test_datum_and_location_metadata(sn: SolarNetClient, sn_sim: SolarNetSimulator) -> None:
    """Datum and location source metadata merge, replace and delete per source."""
    world = sn_sim.world
    await sn.datum_metadata.add(177, "/power/1", {"m": {"unit": "W"}})
    await sn.datum_metadata.add(177, "/power/1", {"m": {"phase": "A"}})
    assert {k: v for k, v in world.datum_meta[(177, "/power/1")].items() if k == "m"} == {
        "m": {"unit": "W", "phase": "A"}
    }
    await sn.datum_metadata.store(177, "/power/1", {"t": ["x"]})
    assert "m" not in world.datum_meta[(177, "/power/1")]
    await sn.datum_metadata.delete(177, "/power/1")
    assert (177, "/power/1") not in world.datum_meta
    with pytest.raises(PermissionDenied):
        await sn.datum_metadata.add(300, "/power/1", {"m": {}})
    await sn.location_metadata.store(11532079, "/weather/1", {"m": {"station": "WLG"}})
    assert world.location_meta[(11532079, "/weather/1")]["m"] == {"station": "WLG"}
    await sn.location_metadata.delete(11532079, "/weather/1")
    assert world.location_meta == {}


async def test_location_metadata_prefix_is_a_setting(sn_clock) -> None:  # type: ignore[no-untyped-def]
    """The location metadata prefix is a client setting matching the server's mapping."""
    sim = SolarNetSimulator(clock=sn_clock.time, location_metadata_prefix="/location/meta")
    async with sim.client() as documented:
        with pytest.raises(NotFound):
            await documented.location_metadata.add(1, "/w", {"m": {"a": 1}})
    async with sim.client(location_metadata_prefix="/location/meta") as configured:
        await configured.location_metadata.add(1, "/w", {"m": {"a": 1}})
    assert sim.world.location_meta[(1, "/w")]["m"] == {"a": 1}


REC = DatumAuxiliary(
    created=datetime(2024, 2, 6, 18, 37, 28, 244000, tzinfo=UTC),
    node_id=177,
    source_id="/power/1",
    type="Reset",
    final={"a": {"wattHours": 12345}},
    start={"a": {"wattHours": 123}},
    notes="Meter replaced.",
    meta={"m": {"foo": "bar"}},
)


async def test_datum_auxiliary_store_get_list_move_delete(sn: SolarNetClient) -> None:
    """Datum auxiliary records round-trip through store, get, list, move and delete."""
    await sn.datum_auxiliary.store(REC)
    got = await sn.datum_auxiliary.get(
        type="Reset", node_id=177, created=REC.created, source_id="/power/1"
    )
    assert got.created == REC.created
    assert got.notes == "Meter replaced."
    assert got.final == {"a": {"wattHours": 12345}, "t": ["final", "Reset"]}
    assert got.start == {"a": {"wattHours": 123}, "t": ["start", "Reset"]}
    assert (got.local_date, got.local_time) == ("2024-02-07", "07:37")
    assert got.meta == {"m": {"foo": "bar"}}
    listed = await sn.datum_auxiliary.list(
        177,
        source_ids="/power/*",
        start=datetime(2024, 2, 1, tzinfo=UTC),
        end=datetime(2024, 3, 1, tzinfo=UTC),
    )
    assert [(r.source_id, r.type) for r in listed] == [("/power/1", "Reset")]
    assert await sn.datum_auxiliary.list(177, source_ids=["/meter/**", "/x"]) == []
    new_time = datetime(2024, 2, 7, 1, 0, tzinfo=UTC)
    moved = await sn.datum_auxiliary.move(
        type="Reset",
        node_id=177,
        created=REC.created,
        source_id="/power/1",
        to=DatumAuxiliary(
            created=new_time,
            node_id=177,
            source_id="/meter/main",
            type="Reset",
            final={"a": {"wattHours": 1}},
            start={"a": {}},
        ),
    )
    assert moved is True
    assert (
        await sn.datum_auxiliary.move(
            type="Reset", node_id=177, created=REC.created, source_id="/power/1", to=REC
        )
        is False
    )
    with pytest.raises(NotFound):
        await sn.datum_auxiliary.get(
            type="Reset", node_id=177, created=REC.created, source_id="/power/1"
        )
    await sn.datum_auxiliary.delete(
        type="Reset", node_id=177, created=new_time, source_id="/meter/main"
    )
    assert await sn.datum_auxiliary.list(177) == []
    with pytest.raises(UsageError, match="final and start"):
        await sn.datum_auxiliary.store(
            DatumAuxiliary(created=new_time, node_id=177, source_id="/x", type="Reset")
        )


async def test_stale_aggregates_mark_and_list(
    sn: SolarNetClient, sn_sim: SolarNetSimulator
) -> None:
    """Marking a range stale lists one stale aggregate per hour, filtered by kind."""
    await sn.stale_aggregates.mark(
        177,
        "/power/1",
        start=datetime(2024, 2, 1, 0, tzinfo=UTC),
        end=datetime(2024, 2, 1, 3, tzinfo=UTC),
    )
    stale = await sn.stale_aggregates.list(177)
    assert [(s.source_id, s.kind, s.start_date.hour) for s in stale] == [
        ("/power/1", "h", 0),
        ("/power/1", "h", 1),
        ("/power/1", "h", 2),
    ]
    await sn.stale_aggregates.mark(
        [177, 178],
        ["/meter/**"],
        local_start=date(2024, 2, 1),
        local_end=datetime(2024, 2, 1, 2, 0),
    )
    by_node = await sn.stale_aggregates.list(
        [177, 178], source_ids="/meter/main", sort=["-node", "start"]
    )
    assert [s.node_id for s in by_node] == [178, 178, 177, 177]
    # node-local: Berlin midnight is 23:00 UTC the day before, Auckland's is 11:00 UTC
    assert by_node[0].start_date == datetime(2024, 1, 31, 23, tzinfo=UTC)
    assert by_node[2].start_date == datetime(2024, 1, 31, 11, tzinfo=UTC)
    only_day = await sn.stale_aggregates.list(177, kind="d")
    assert only_day == []
    with pytest.raises(UsageError, match="one pair"):
        await sn.stale_aggregates.mark(177, "/x")
    with pytest.raises(UsageError, match="whole minutes"):
        await sn.stale_aggregates.mark(
            177,
            "/x",
            start=datetime(2024, 1, 1, 0, 0, 5, tzinfo=UTC),
            end=datetime(2024, 1, 2, tzinfo=UTC),
        )


async def test_stream_metadata(sn: SolarNetClient, sn_sim: SolarNetSimulator) -> None:
    """Stream metadata reads by stream id and updates by patch."""
    stream_id = sn_sim.world.stream_id(177, "/power/1")
    meta = await sn.streams.get(stream_id)
    assert (meta.object_id, meta.source_id, meta.kind, meta.zone) == (
        177,
        "/power/1",
        "n",
        "Pacific/Auckland",
    )
    assert (meta.i, meta.a, meta.s) == (("watts", "current", "voltage"), ("wattHours",), ("phase",))
    updated = await sn.streams.update(stream_id, instantaneous=["W", "A", "V", "Hz"])
    assert updated is not None
    assert updated.i == ("W", "A", "V", "Hz")
    with pytest.raises(UsageError, match="non-empty property names"):
        await sn.streams.update(stream_id, accumulating=[])
    shrunk = await sn.streams.update(stream_id, instantaneous=["W"])
    assert shrunk is None
    ids = await sn.streams.update_ids(stream_id, source_id="/power/renamed")
    assert (ids.object_id, ids.source_id) == (177, "/power/renamed")
    moved = await sn.streams.update_ids(stream_id, node_id=178, source_id="/power/9")
    assert (moved.object_id, moved.source_id) == (178, "/power/9")
    assert (await sn.streams.get(stream_id)).zone == "Europe/Berlin"
    with pytest.raises(NotFound):
        await sn.streams.get("00000000-0000-0000-0000-000000000000")
    with pytest.raises(PermissionDenied):
        await sn.streams.get(sn_sim.world.stream_id(300, "/power/1"))


async def test_security_tokens(sn: SolarNetClient, sn_sim: SolarNetSimulator) -> None:
    """Tokens list, generate (secret returned once), change status, take policies and delete."""
    tokens = await sn.tokens.list()
    assert [(t.id, t.type) for t in tokens] == [
        ("demo-sn-reader", "ReadNodeData"),
        ("demo-sn-token", "User"),
    ]
    new = await sn.tokens.generate("ReadNodeData", name="Reader", description="for graphs")
    assert new.auth_secret is not None
    assert new.auth_secret in sn_sim.core.issued_secrets
    assert new.auth_secret not in repr(new)
    await sn.tokens.update_info(new.id, name="Renamed", description="d2")
    await sn.tokens.set_status(new.id, "Disabled")
    after = {t.id: t for t in await sn.tokens.list()}[new.id]
    assert (after.name, after.description, after.status, after.auth_secret) == (
        "Renamed",
        "d2",
        "Disabled",
        None,
    )
    merged = await sn.tokens.add_policy(new.id, {"nodeIds": [1, 2], "sourceIds": ["/foo"]})
    merged = await sn.tokens.add_policy(new.id, {"nodeIds": [2, 3], "minAggregation": "Hour"})
    assert merged.policy == {"nodeIds": [1, 2, 3], "sourceIds": ["/foo"], "minAggregation": "Hour"}
    stored = await sn.tokens.store_policy(new.id, {"nodeIds": [9]})
    assert stored.policy == {"nodeIds": [9]}
    await sn.tokens.delete(new.id)
    assert new.id not in {t.id for t in await sn.tokens.list()}
    with pytest.raises(NotFound):
        await sn.tokens.delete(new.id)
    with pytest.raises(PermissionDenied):
        await sn.tokens.set_status("other-sn-token", "Disabled")
    with pytest.raises(UsageError):
        await sn.tokens.generate("Admin")  # type: ignore[arg-type]


async def test_user_events(sn: SolarNetClient) -> None:
    """User events list typed, and search filters select by nested fields."""
    events = await sn.events.list()
    assert len(events) == 3
    assert events[1].data is not None
    assert events[1].data["messageId"].startswith("rukjys")
    assert events[0].created == datetime(2024, 1, 1, 0, 0, 0, 533452, tzinfo=UTC)
    found = await sn.events.list(search_filter="(&(cp=1234ZY)(options.duration<=60))")
    assert [e.event_id for e in found] == [events[1].event_id]
    assert await sn.events.list(search_filter="(status>1)") == []
    tagged = await sn.events.list(tags=["ocpp", "received"])
    assert len(tagged) == 2
    later = await sn.events.list(start=datetime(2024, 1, 1, 0, 1, 30, tzinfo=UTC))
    assert [e.tags for e in later] == [("datum", "import")]


async def test_read_node_data_tokens_are_refused_beyond_whoami(sn_sim: SolarNetSimulator) -> None:
    """A ReadNodeData token may call whoami but gets 403 on user endpoints."""
    from locus_async.simulator import SN_READ_TOKEN

    async with sn_sim.client(SN_READ_TOKEN) as reader:
        assert (await reader.whoami()).token_type == "ReadNodeData"
        with pytest.raises(PermissionDenied):
            await reader.nodes.list()


async def test_other_users_nodes_are_denied(sn: SolarNetClient, sn_sim: SolarNetSimulator) -> None:
    """Another user's nodes are 403 for instructions and metadata alike."""
    from locus_async.simulator import SN_OTHER_TOKEN

    with pytest.raises(PermissionDenied):
        await sn.instructions.add(300, "Signal")
    async with sn_sim.client(SN_OTHER_TOKEN) as other:
        assert [n.id for n in await other.nodes.list()] == [300]
        with pytest.raises(PermissionDenied):
            await other.node_metadata.get(177)


async def test_validation_errors_come_back_as_validation_failed(sn: SolarNetClient) -> None:
    """A missing required parameter comes back as ValidationFailed with its VAL code."""
    with pytest.raises(ValidationFailed, match="A node ID is required: nodeId: ") as caught:
        await sn._requester.call("GET", "/datum/maint/agg/stale", lambda r: r)
    assert caught.value.code == "VAL.00003"
