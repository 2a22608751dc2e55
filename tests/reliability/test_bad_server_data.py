"""Bad server data: always a typed ResponseDecodeError naming the JSON path, never a raw
KeyError or JSONDecodeError; hypothesis fuzzes every response parser."""

from __future__ import annotations

import copy
import gzip
import re
from typing import Any

import httpx
import orjson
import pytest
import respx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from locus_async import BearerToken, LocusClient, ResponseDecodeError, RetryPolicy, models
from locus_async._core.converter import make_converter, structure
from locus_async.locus._core.endpoints import (
    AlertList,
    BaseFieldList,
    ClientList,
    ComponentList,
    SiteList,
)
from locus_async.locus._core.series import parse_data_body
from locus_async.locus._core.tokens import parse_token
from tests import reference_examples as ex

BASE = "https://api.locusenergy.com"

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)

PARSERS: list[tuple[type, dict[str, Any]]] = [
    (ComponentList, ex.COMPONENTS),
    (SiteList, ex.SITES),
    (ClientList, ex.CLIENTS),
    (AlertList, ex.ALERTS),
    (BaseFieldList, ex.DATA_AVAILABLE),
    (models.Component, ex.GET_COMPONENT),
    (models.Site, ex.GET_SITE),
    (models.InstallInfo, ex.INSTALL_INFO),
    (models.ModelSettings, ex.MODEL_SETTINGS),
    (models.Client, ex.GET_CLIENT),
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*prefix, index))
    return out


def _replace(body: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    body = orjson.loads(orjson.dumps(body))  # a deep copy sharing nothing (deepcopy keeps
    # objects the example shares between items shared, so one edit would damage two places)
    target = body
    for step in path[:-1]:
        target = target[step]
    if new is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = new
    return body


_DELETE = object()
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def _steps(path: str) -> list[Any]:
    """``$.components[2].siteId`` -> ["components", 2, "siteId"]."""
    assert path.startswith("$"), path
    steps: list[Any] = []
    rest = path[1:]
    while rest:
        match = _STEP.match(rest)
        assert match is not None, f"unreadable path {path!r}"
        steps.append(match[1] if match[1] is not None else int(match[2]))
        rest = rest[match.end() :]
    return steps


def _points_into(value: Any, path: str) -> bool:
    """The path leads through ``value``: every step but the last exists (the last may be a
    key that is missing, which is what the error is about)."""
    steps = _steps(path)
    for index, step in enumerate(steps):
        last = index == len(steps) - 1
        if (isinstance(value, dict) and isinstance(step, str) and step in value) or (
            isinstance(value, list) and isinstance(step, int) and step < len(value)
        ):
            value = value[step]
        else:
            return last and isinstance(value, dict | list)
    return True


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PARSERS), JSON, st.booleans())
def test_any_json_parses_or_raises_response_decode_error(
    parser: tuple[type, dict[str, Any]], value: Any, strict: bool
) -> None:
    """Arbitrary JSON for any model: a model or a ResponseDecodeError with a JSON path."""
    cls, _ = parser
    try:
        structure(make_converter(strict=strict), value, cls)
    except ResponseDecodeError as exc:
        assert _points_into(value, exc.path), (exc.path, value)
        assert exc.problems


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PARSERS), st.data())
def test_mutated_reference_bodies_name_the_broken_path(
    parser: tuple[type, dict[str, Any]], data: st.DataObject
) -> None:
    """A valid reference body with one value replaced or deleted: a model, or an error
    whose path is where the damage is, above it, or inside the value put there."""
    cls, body = parser
    path = data.draw(st.sampled_from(_paths(body)[1:]))
    new = data.draw(st.just(_DELETE) | JSON)
    broken = _replace(body, path, new)
    try:
        structure(make_converter(), broken, cls)
    except ResponseDecodeError as exc:
        damage, found = list(path), _steps(exc.path)
        shorter = min(len(damage), len(found))
        assert damage[:shorter] == found[:shorter], (exc.path, damage)
        assert len(exc.problems) >= 1


@settings(max_examples=400, deadline=None)
@given(st.one_of(JSON.map(orjson.dumps), st.binary(max_size=200)))
def test_data_parser_never_raises_anything_else(body: bytes) -> None:
    """Random bytes or JSON as a data body: columns or ResponseDecodeError."""
    try:
        columns = parse_data_body(body, ["W_avg", "Wh_sum"])
    except ResponseDecodeError as exc:
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            assert exc.path == "$"  # not JSON at all: the whole body
        else:
            assert _points_into(value, exc.path), (exc.path, value)
    else:
        assert len(columns.ids) == len(columns.ts) == len(columns.values["W_avg"])


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_data_rows_name_the_row(data: st.DataObject) -> None:
    """One damaged row in a valid data body: the error names that row."""
    body = copy.deepcopy(ex.DATA_HOURLY)
    index = data.draw(st.integers(0, len(body["data"]) - 1))
    key = data.draw(st.sampled_from(["id", "ts", "W_avg"]))
    value = data.draw(st.sampled_from([None, "x", [], {}, True, "2014-04-01T12:00:00", 1.5]))
    body["data"][index][key] = value
    try:
        parse_data_body(orjson.dumps(body), ["W_avg", "Wh_sum"])
    except ResponseDecodeError as exc:
        assert exc.path.startswith(f"$.data[{index}]")


@settings(max_examples=200, deadline=None)
@given(JSON)
def test_token_parser_never_raises_anything_else_nor_quotes(value: Any) -> None:
    """Token bodies: a Token or a ResponseDecodeError that never quotes the body."""
    body = orjson.dumps(value)
    try:
        parse_token(body, make_converter())
    except ResponseDecodeError as exc:
        assert body.decode()[:30] not in str(exc) or len(body) < 6


# ------------------------------------------------------------------ through the client


GARBLED_BODIES: list[tuple[str, httpx.Response]] = [
    ("HTML instead of JSON", httpx.Response(200, text="<html><body>maintenance</body></html>")),
    ("cut-off JSON", httpx.Response(200, content=orjson.dumps(ex.GET_COMPONENT)[:40])),
    ("empty body", httpx.Response(200, content=b"")),
    (
        "truncated gzip",
        httpx.Response(
            200,
            headers={"content-encoding": "gzip"},
            content=gzip.compress(orjson.dumps(ex.GET_COMPONENT))[:30],
        ),
    ),
]

OFF_SCHEMA: list[tuple[str, dict[str, Any], str, str, Any]] = [
    # case, body, path strict mode names, attribute lenient mode reads as empty, its value
    (
        "missing key",
        {k: v for k, v in ex.GET_COMPONENT.items() if k != "siteId"},
        "$.siteId",
        "site_id",
        None,
    ),
    ("wrong type", {**ex.GET_COMPONENT, "parentId": "3393714"}, "$.parentId", "parent_id", None),
    ("unexpected null", {**ex.GET_COMPONENT, "name": None}, "$.name", "name", ""),
]


async def _get_component(response: httpx.Response) -> tuple[ResponseDecodeError, int]:
    """The error of ``components.get`` on ``response`` (3 attempts allowed), and how many
    requests it took."""
    with respx.mock(base_url=BASE) as router:
        route = router.get("/v3/components/54369").mock(return_value=response)
        async with LocusClient(
            auth=BearerToken("tok-123456"), retry=RetryPolicy(attempts=3)
        ) as client:
            with pytest.raises(ResponseDecodeError) as caught:
                await client.components.get(54369)
    return caught.value, route.call_count


@pytest.mark.asyncio
@pytest.mark.parametrize(("case", "response"), GARBLED_BODIES, ids=[c[0] for c in GARBLED_BODIES])
async def test_garbled_bodies_are_retried_then_raise(case: str, response: httpx.Response) -> None:
    """A body that is cut or not JSON is retried like any garbled GET, then a
    ResponseDecodeError for the whole body ($), marked garbled."""
    error, requests = await _get_component(response)
    assert error.path == "$"
    assert error.garbled
    assert requests == 3


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("case", "body", "path", "attribute", "empty"), OFF_SCHEMA, ids=[c[0] for c in OFF_SCHEMA]
)
async def test_off_schema_bodies_are_forgiven_or_raise_strictly_without_retry(
    case: str, body: dict[str, Any], path: str, attribute: str, empty: Any
) -> None:
    """A well-formed body off the schema is sent once: lenient reads the field as empty
    (one warning, counted), strict raises naming the path; neither retries."""
    with respx.mock(base_url=BASE) as router:
        route = router.get("/v3/components/54369").mock(return_value=httpx.Response(200, json=body))
        async with LocusClient(
            auth=BearerToken("tok-123456"), retry=RetryPolicy(attempts=3)
        ) as client:
            component = await client.components.get(54369)
            assert client.stats.forgiven == 1
        assert getattr(component, attribute) == empty
        assert component.id == 54369
        assert route.call_count == 1
        async with LocusClient(
            auth=BearerToken("tok-123456"), retry=RetryPolicy(attempts=3), strict=True
        ) as client:
            with pytest.raises(ResponseDecodeError) as caught:
                await client.components.get(54369)
    assert caught.value.path == path
    assert not caught.value.garbled
    assert route.call_count == 2


@pytest.mark.asyncio
async def test_a_list_where_an_object_belongs_raises_once() -> None:
    """No key to read at all: an error in either mode, sent once."""
    error, requests = await _get_component(httpx.Response(200, json=[ex.GET_COMPONENT]))
    assert error.path == "$"
    assert not error.garbled
    assert requests == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("strict", [True, False])
async def test_timestamps_without_offsets_in_data_and_alerts(strict: bool) -> None:
    """Naive timestamps: strict names the row, for data and for alerts; lenient drops the
    data row (its ts is its key) and reads the alert's update time as None."""
    data = {
        "statusCode": 200,
        "data": [
            {"id": 1, "ts": "2014-04-01T12:00:00", "W_avg": 1},
            {"id": 1, "ts": "2014-04-01T12:00:00+00:00", "W_avg": 2},
        ],
    }
    alerts = {
        "statusCode": 200,
        "alerts": [{**ex.ALERTS["alerts"][0], "updated": "2015-11-22T12:03:00"}],
    }
    query = {
        "fields": "W_avg",
        "start": "2014-04-01T12:00:00",
        "end": "2014-04-01T13:00:00",
        "tz": "UTC",
        "gran": "hourly",
    }
    with respx.mock(base_url=BASE) as router:
        router.get("/v3/components/1/data").mock(return_value=httpx.Response(200, json=data))
        router.get("/v3/sites/1/alerts").mock(return_value=httpx.Response(200, json=alerts))
        async with LocusClient(
            auth=BearerToken("tok-123456"), retry=RetryPolicy(attempts=1), strict=strict
        ) as client:
            if not strict:
                series = await client.components.data(1, **query)
                (alert,) = await client.sites.alerts(1)
                assert series.column("W_avg") == [2.0]
                assert alert.updated is None
                assert alert.id == ex.ALERTS["alerts"][0]["id"]
                assert (client.stats.forgiven, client.stats.dropped) == (1, 1)
                return
            with pytest.raises(ResponseDecodeError) as in_data:
                await client.components.data(1, **query)
            with pytest.raises(ResponseDecodeError) as in_alerts:
                await client.sites.alerts(1)
    assert in_data.value.path == "$.data[0].ts"
    assert "no UTC offset" in str(in_data.value)
    assert in_alerts.value.path == "$.alerts[0].updated"


@pytest.mark.asyncio
async def test_one_bad_site_no_longer_empties_the_partner_list(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """partners.sites() with a null address on one site and a broken id on another: every
    other site comes back, one warning per field of the call, counted in the stats."""
    body = copy.deepcopy(ex.SITES)
    body["sites"][0]["address1"] = None
    body["sites"].append({**ex.SITE, "id": None})
    body["sites"].append({**ex.SITE_2, "id": 77, "address1": None, "clientId": "x"})
    with respx.mock(base_url=BASE) as router:
        route = router.get("/v3/partners/111/sites").mock(
            return_value=httpx.Response(200, json=body)
        )
        async with LocusClient(auth=BearerToken("tok-123456")) as client:
            with caplog.at_level("WARNING", logger="locus_async"):
                sites = await client.partners.sites(111)
            stats = client.stats.snapshot()
    assert [s.id for s in sites] == [ex.SITE["id"], ex.SITE_2["id"], 77]
    assert [s.address1 for s in sites] == ["", ex.SITE_2["address1"], ""]
    assert (stats["forgiven"], stats["dropped"]) == (3, 1)
    assert route.call_count == 1
    warnings = [r.getMessage() for r in caplog.records if r.name == "locus_async"]
    assert warnings == [
        "GET /v3/partners/111/sites: Site.address1: 2 values unreadable "
        "(expected a string, got null), read as ''",
        "GET /v3/partners/111/sites: Site: 1 item dropped (id: expected an integer, got null)",
        "GET /v3/partners/111/sites: Site.clientId: 1 value unreadable "
        "(expected an integer, got a string), read as None",
    ]
