"""Forgiving by default, strict on request: the lenient decoder reads what real servers send
(nulls and wrong types where the reference promises a value), drops only items whose key
is broken, and notes each thing it forgave; the strict one raises on all of it."""

from __future__ import annotations

import copy
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from locus_async import ResponseDecodeError, models
from locus_async._core.converter import (
    forgiving,
    is_strict,
    make_converter,
    structure,
    summarise,
    wire_name,
)
from locus_async.locus._core.endpoints import (
    AlertList,
    BaseFieldList,
    ClientList,
    ComponentList,
    SiteList,
)
from locus_async.locus._core.series import parse_data_body
from locus_async.solarnetwork import models as sn
from tests import reference_examples as ex
from tests.reliability.test_bad_server_data import (
    _DELETE,
    JSON,
    PARSERS,
    _paths,
    _replace,
    _steps,
)

LENIENT = make_converter()
STRICT = make_converter(strict=True)

# The SolarUser reference's own example bodies (their "data" part).
SN_AUXILIARY_PAGE: dict[str, Any] = {
    "totalResults": 1,
    "startingOffset": 0,
    "returnedResultCount": 1,
    "results": [
        {
            "created": "2019-02-06 18:37:28.244Z",
            "nodeId": 11,
            "sourceId": "Foo",
            "type": "Reset",
            "localDate": "2019-02-07",
            "localTime": "07:37",
            "updated": "2019-02-06 18:37:28.437Z",
            "notes": "Meter replaced.",
            "final": {"a": {"wattHours": 12345}, "t": ["final", "Reset"]},
            "start": {"a": {"wattHours": 123}, "t": ["start", "Reset"]},
            "meta": {"m": {"foo": "bar"}},
        }
    ],
}
SN_INSTRUCTION: dict[str, Any] = {
    "id": 4316548,
    "created": "2015-02-26 21:00:00.000Z",
    "topic": "SetControlParameter",
    "instructionDate": "2015-02-26 21:00:00.000Z",
    "state": "Queued",
    "statusDate": "2015-02-26 21:00:00.000Z",
    "parameters": [{"name": "/switch/1", "value": "1"}],
    "nodeId": 123,
}
SN_EVENTS: list[dict[str, Any]] = [
    {
        "userId": 123,
        "created": "2022-08-09 03:03:28.533452Z",
        "eventId": "0182808e-a615-7712-bd86-80acee3b28cd",
        "tags": ["ocpp", "message", "received"],
        "data": {"cp": "1234ZY", "action": "Heartbeat", "status": 1},
    }
]

EXAMPLES: list[tuple[Any, Any]] = [
    *PARSERS,  # every Locus reference example
    (AlertList, ex.ALERTS_OLD_SHAPE),
    (sn.Page[sn.DatumAuxiliary], SN_AUXILIARY_PAGE),
    (sn.Instruction, SN_INSTRUCTION),
    (list[sn.UserEvent], SN_EVENTS),
]


def _key_wires() -> set[str]:
    """The wire names of every key field of every model (and of the list envelopes)."""
    found = {"id"}
    for module in (models, sn):
        for value in vars(module).values():
            if isinstance(value, type) and attrs.has(value):
                found |= {wire_name(a) for a in attrs.fields(value) if a.metadata.get("key")}
    for envelope in (ComponentList, SiteList, ClientList, AlertList, BaseFieldList):
        found |= {wire_name(a) for a in attrs.fields(envelope)}
    return found


KEY_WIRES = _key_wires()


def _items(value: Any) -> list[Any] | None:
    """The list a parsed body holds (an envelope's, a page's, or the body itself)."""
    if isinstance(value, list):
        return value
    if isinstance(value, sn.Page):
        return list(value.results)
    for name in ("components", "sites", "clients", "alerts", "base_fields"):
        if hasattr(value, name):
            return list(getattr(value, name))
    return None


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(range(len(EXAMPLES))), st.data())
def test_every_field_of_every_documented_example_mutated(which: int, data: st.DataObject) -> None:
    """One value of a documented example replaced (any JSON) or deleted: the lenient decoder
    returns the rest intact, dropping at most the damaged item; it raises only when the
    damage is to a key, and strict mode raises then too."""
    cls, body = EXAMPLES[which]
    good = structure(LENIENT, body, cls)
    path = data.draw(st.sampled_from(_paths(body)[1:]))
    new = data.draw(st.just(_DELETE) | JSON)
    broken = _replace(body, path, new)
    with forgiving() as notes:
        try:
            got = structure(LENIENT, broken, cls)
        except ResponseDecodeError as exc:
            assert not exc.garbled
            assert _steps(exc.path)[-1] in KEY_WIRES, (exc.path, path)
            with pytest.raises(ResponseDecodeError):
                structure(STRICT, broken, cls)
            return
    assert len(summarise(notes)) <= len(notes)
    before, after = _items(good), _items(got)
    if before is None or after is None:
        return
    # The item the damage is in: the first list index on the path (the body's own list).
    index = next((step for step in path if isinstance(step, int)), None)
    if index is None:  # the list itself was replaced: any list it became is legal
        return
    others = [item for i, item in enumerate(before) if i != index]
    if len(after) == len(before) - 1:
        assert after == others
        # Left out by the decoder (noted), unless the mutation deleted the item itself.
        assert any(n.dropped for n in notes) or (new is _DELETE and path[-1] == index)
    else:
        assert len(after) == len(before)
        assert [item for i, item in enumerate(after) if i != index] == others


def test_a_null_address_keeps_every_site() -> None:
    """The reported failure: one site's null address1 no longer empties partners.sites()."""
    body = copy.deepcopy(ex.SITES)
    body["sites"][0]["address1"] = None
    with forgiving() as notes:
        sites = structure(LENIENT, body, SiteList).sites
    assert [s.id for s in sites] == [s["id"] for s in ex.SITES["sites"]]
    assert sites[0].address1 == ""
    assert sites[1].address1 == ex.SITES["sites"][1]["address1"]
    assert summarise(notes) == [
        "Site.address1: 1 value unreadable (expected a string, got null), read as ''"
    ]
    with pytest.raises(ResponseDecodeError, match=r"\$\.sites\[0\]\.address1"):
        structure(STRICT, body, SiteList)


def test_wrong_types_become_none_and_broken_keys_drop_the_item() -> None:
    """A wrong type in a non-key field is None, a missing one its empty value; an item
    whose id is broken is left out; one summary line per field, with counts."""
    body = copy.deepcopy(ex.COMPONENTS)
    body["components"][0]["siteId"] = "3393714"
    body["components"][1]["siteId"] = True
    del body["components"][1]["oem"]
    body["components"].append({**ex.COMPONENT, "id": None})
    body["components"].append("not an object")
    with forgiving() as notes:
        parsed = structure(LENIENT, body, ComponentList).components
    assert [c.site_id for c in parsed] == [None, None]
    assert parsed[1].oem == ""
    assert parsed[0].name == ex.COMPONENT["name"]
    assert summarise(notes) == [
        "Component.siteId: 2 values unreadable (expected an integer, got a string), read as None",
        "Component.oem: 1 value unreadable (required field missing), read as ''",
        "Component: 1 item dropped (id: expected an integer, got null)",
        "Component: 1 item dropped (expected an object, got a string)",
    ]


def test_a_broken_key_of_a_single_object_raises_and_is_not_garbled() -> None:
    """No id, no component: a single object with a broken key is an error, never retried."""
    with pytest.raises(ResponseDecodeError) as caught:
        structure(LENIENT, {**ex.GET_COMPONENT, "id": "54369"}, models.Component)
    assert caught.value.path == "$.id"
    assert not caught.value.garbled


def test_nested_items_are_forgiven_in_place() -> None:
    """An aggregation without its short name is dropped from its base field; the field
    itself and its other aggregations stay."""
    body = copy.deepcopy(ex.DATA_AVAILABLE)
    first = body["baseFields"][0]
    first["aggregations"][0]["shortName"] = None
    first["granularities"].append(None)
    with forgiving() as notes:
        fields = structure(LENIENT, body, BaseFieldList).base_fields
    original = ex.DATA_AVAILABLE["baseFields"][0]
    assert fields[0].base_field == original["baseField"]
    assert [a.short_name for a in fields[0].aggregations] == [
        a["shortName"] for a in original["aggregations"][1:]
    ]
    assert fields[0].granularities == tuple(original["granularities"])
    assert {n.where for n in notes} == {"Aggregation", "str"}


def test_solarnetwork_pages_drop_only_the_broken_item() -> None:
    """SolarNetwork bodies share the converter: a node with a string id leaves the page,
    the paging numbers (keys) must hold."""
    page = {
        "startingOffset": 0,
        "returnedResultCount": 2,
        "results": [{"id": "x"}, {"id": 2, "name": 5}],
    }
    with forgiving() as notes:
        parsed = structure(LENIENT, page, sn.Page[sn.SolarNode])
    assert [(n.id, n.name) for n in parsed.results] == [(2, None)]
    assert [n.dropped for n in notes] == [True, False]
    with pytest.raises(ResponseDecodeError, match="startingOffset"):
        structure(LENIENT, {**page, "startingOffset": None}, sn.Page[sn.SolarNode])


def test_the_converter_says_whether_it_is_strict() -> None:
    """The data parser asks the client's converter which mode it is in."""
    assert is_strict(STRICT)
    assert not is_strict(LENIENT)


def test_data_rows_are_forgiven_the_same_way() -> None:
    """A data value of the wrong type is null; a row with a broken id or ts is dropped;
    strict mode names the first problem."""
    body = orjson.dumps(
        {
            "data": [
                {"id": 1, "ts": "2024-01-01T00:00:00+00:00", "W_avg": "3"},
                {"id": None, "ts": "2024-01-01T00:01:00+00:00", "W_avg": 1},
                {"id": 1, "ts": "yesterday", "W_avg": 1},
                {"id": 1, "ts": "2024-01-01T00:03:00+00:00", "W_avg": 4},
                7,
            ]
        }
    )
    with forgiving() as notes:
        columns = parse_data_body(body, ["W_avg"], strict=False)
    assert columns.values["W_avg"] == [None, 4]
    assert list(columns.ts) == [1704067200, 1704067380]
    assert summarise(notes) == [
        "data.W_avg: 1 value unreadable (expected a number or null, got str), read as None",
        "data: 1 item dropped (id: expected an integer, got null)",
        "data: 1 item dropped (ts: 'yesterday' is not ISO-8601)",
        "data: 1 item dropped (expected an object, got int)",
    ]
    with pytest.raises(ResponseDecodeError) as caught:
        parse_data_body(body, ["W_avg"])
    assert caught.value.path == "$.data[1].id"
