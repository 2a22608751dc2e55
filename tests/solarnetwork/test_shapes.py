"""Exact request shapes (respx): URLs, query parameters, bodies, headers, signatures, and
which calls may be retried. Each signature is recomputed here from what went on the wire."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson
import pytest
import respx

from locus_async.errors import ServerError, TransportError, ValidationFailed
from locus_async.solarnetwork import (
    DatumAuxiliary,
    Snws2Credentials,
    SolarNetClient,
    snws2_authorization,
)
from tests.conftest import FakeClock

pytestmark = pytest.mark.anyio

BASE = "https://data.solarnetwork.net"
PREFIX = "/solaruser/api/v1/sec"
NOW = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT
CREDS = Snws2Credentials("tok-123", token_secret="sekret-456")
OK: dict[str, Any] = {"success": True}


def verify(request: httpx.Request) -> str:
    """Recompute the signature from the request as sent; return its SignedHeaders."""
    header = request.headers["authorization"]
    names = header.split("SignedHeaders=")[1].split(",")[0].split(";")
    expected = snws2_authorization(
        method=request.method,
        path=request.url.raw_path.decode().split("?")[0],
        query=parse_qsl(request.url.query.decode(), keep_blank_values=True),
        headers={n: request.headers[n] for n in names},
        body=request.content,
        token_id="tok-123",
        token_secret="sekret-456",
        date=datetime.fromtimestamp(NOW, UTC),
    )
    assert header == expected
    if request.content and "form" not in request.headers.get("content-type", ""):
        digest = base64.b64encode(hashlib.sha256(request.content).digest()).decode()
        assert request.headers["digest"] == f"sha-256={digest}"
    return ";".join(names)


@pytest.fixture
async def api() -> AsyncIterator[tuple[SolarNetClient, respx.MockRouter]]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        clock = FakeClock(NOW)  # the documented pacing waits on it, not in real time
        async with SolarNetClient(
            credentials=CREDS,
            wall=lambda: NOW,
            strict=True,
            clock=clock.monotonic,
            sleep=clock.sleep,
        ) as client:
            yield client, router


def _query(request: httpx.Request) -> list[tuple[str, str]]:
    return parse_qsl(request.url.query.decode(), keep_blank_values=True)


async def test_get_shape(api: tuple[SolarNetClient, respx.MockRouter]) -> None:
    """A GET carries the signed headers and query exactly as SolarNetwork expects."""
    client, router = api
    route = router.get(PREFIX + "/nodes").mock(
        return_value=httpx.Response(
            200,
            json={
                "success": True,
                "data": {
                    "totalResults": 0,
                    "startingOffset": 0,
                    "returnedResultCount": 0,
                    "results": [],
                },
            },
        )
    )
    assert await client.nodes.list(page_size=25) == []
    request = route.calls.last.request
    assert _query(request) == [("max", "25"), ("offset", "0")]
    assert request.headers["accept"] == "application/json"
    assert request.headers["host"] == "data.solarnetwork.net"
    assert request.headers["x-sn-date"] == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert "digest" not in request.headers
    assert "content-type" not in request.headers
    assert verify(request) == "host;x-sn-date"


async def test_json_post_shape(api: tuple[SolarNetClient, respx.MockRouter]) -> None:
    """A JSON post sends the exact body with its Digest, signed."""
    client, router = api
    route = router.post(PREFIX + "/nodes/meta/177").mock(return_value=httpx.Response(200, json=OK))
    await client.node_metadata.add(177, {"m": {"a": 1}, "t": ["x"]})
    request = route.calls.last.request
    assert orjson.loads(request.content) == {"m": {"a": 1}, "t": ["x"]}
    assert request.headers["content-type"] == "application/json;charset=UTF-8"
    assert verify(request) == "content-type;digest;host;x-sn-date"


async def test_form_post_shape(api: tuple[SolarNetClient, respx.MockRouter]) -> None:
    """A form post sends repeated fields in order, signed as parameters."""
    client, router = api
    route = router.post(PREFIX + "/instr/updateState").mock(
        return_value=httpx.Response(200, json=OK)
    )
    await client.instructions.update_state([5, 6], "Declined")
    request = route.calls.last.request
    assert request.content == b"ids=5,6&state=Declined"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded;charset=UTF-8"
    assert "digest" not in request.headers
    assert verify(request) == "content-type;host;x-sn-date"


async def test_form_fields_with_spaces_and_unicode(
    api: tuple[SolarNetClient, respx.MockRouter],
) -> None:
    """Form fields with spaces and non-ASCII are encoded with %20 and UTF-8."""
    client, router = api
    route = router.post(PREFIX + "/user/auth-tokens/info").mock(
        return_value=httpx.Response(200, json=OK)
    )
    await client.tokens.update_info("tok 1", name="Grüße & mehr", description="a+b")
    request = route.calls.last.request
    assert request.content == b"tokenId=tok%201&name=Gr%C3%BC%C3%9Fe%20%26%20mehr&description=a%2Bb"
    verify(request)


async def test_instruction_json_and_exec_wait(api: tuple[SolarNetClient, respx.MockRouter]) -> None:
    """An exec sends the JSON instruction and resultMaxWait, and waits that long."""
    client, router = api
    instruction = {"id": 1, "topic": "SetControlParameter", "state": "Completed", "nodeId": 123}
    route = router.post(PREFIX + "/instr/exec").mock(
        return_value=httpx.Response(200, json={"success": True, "data": instruction})
    )
    (done,) = await client.instructions.exec(
        123,
        "SetControlParameter",
        {"/switch/1": "1"},
        result_max_wait=30,
        execution_date=datetime(2030, 1, 1, tzinfo=UTC),
    )
    assert done.state == "Completed"
    request = route.calls.last.request
    assert _query(request) == [("resultMaxWait", "30")]
    assert orjson.loads(request.content) == {
        "nodeId": 123,
        "topic": "SetControlParameter",
        "params": {"/switch/1": "1", "executionDate": "2030-01-01T00:00:00Z"},
    }
    assert request.extensions["timeout"]["read"] == 60.0 + 30
    verify(request)


async def test_instruction_form_for_several_nodes(
    api: tuple[SolarNetClient, respx.MockRouter],
) -> None:
    """An instruction for several nodes goes as one form with nodeIds."""
    client, router = api
    route = router.post(PREFIX + "/instr/add").mock(
        return_value=httpx.Response(
            200,
            json={
                "success": True,
                "data": [
                    {"id": 1, "topic": "UpdatePlatform", "state": "Queued"},
                    {"id": 2, "topic": "UpdatePlatform", "state": "Queued"},
                ],
            },
        )
    )
    queued = await client.instructions.add([123, 234], "UpdatePlatform", {"Version": "000009"})
    assert [i.id for i in queued] == [1, 2]
    request = route.calls.last.request
    assert request.content == (
        b"nodeIds=123,234&topic=UpdatePlatform&parameters%5B0%5D.name=Version"
        b"&parameters%5B0%5D.value=000009"
    )
    verify(request)


async def test_sources_with_slashes_and_commas_travel_as_parameters(
    api: tuple[SolarNetClient, respx.MockRouter],
) -> None:
    """Source ids with slashes and commas travel as repeated query parameters."""
    client, router = api
    page = {
        "success": True,
        "data": {"totalResults": 0, "startingOffset": 0, "returnedResultCount": 0, "results": []},
    }
    route = router.get(PREFIX + "/datum/auxiliary").mock(
        return_value=httpx.Response(200, json=page)
    )
    await client.datum_auxiliary.list(
        [11, 12],
        source_ids=["/power/1", "/a,b"],
        start=datetime(2019, 2, 6, 18, 37, 28, 244000, tzinfo=UTC),
        sort=["created", "-source"],
    )
    request = route.calls.last.request
    assert _query(request) == [
        ("nodeIds", "11,12"),
        ("sourceIds", "/power/1"),
        ("sourceIds", "/a,b"),
        ("startDate", "2019-02-06 18:37:28.244Z"),
        ("sorts[0].sortKey", "created"),
        ("sorts[1].sortKey", "source"),
        ("sorts[1].descending", "true"),
        ("max", "100"),
        ("offset", "0"),
    ]
    verify(request)


async def test_datum_auxiliary_view_by_parameters(
    api: tuple[SolarNetClient, respx.MockRouter],
) -> None:
    """Datum auxiliary view and delete use the query-parameter forms."""
    client, router = api
    get_route = router.get(PREFIX + "/datum/auxiliary").mock(
        return_value=httpx.Response(
            200,
            json={
                "success": True,
                "data": {
                    "created": "2019-02-06 18:37:28.244Z",
                    "nodeId": 11,
                    "sourceId": "/power/1",
                    "type": "Reset",
                },
            },
        )
    )
    record = await client.datum_auxiliary.get(
        type="Reset",
        node_id=11,
        created=datetime(2019, 2, 6, 18, 37, 28, 244000, tzinfo=UTC),
        source_id="/power/1",
    )
    assert isinstance(record, DatumAuxiliary)
    assert _query(get_route.calls.last.request) == [
        ("type", "Reset"),
        ("nodeId", "11"),
        ("date", "2019-02-06 18:37:28.244Z"),
        ("sourceId", "/power/1"),
    ]


async def test_datum_metadata_source_is_a_query_parameter(
    api: tuple[SolarNetClient, respx.MockRouter],
) -> None:
    """The datum metadata source id is a query parameter, not a path segment."""
    client, router = api
    route = router.put(PREFIX + "/datum/meta/177").mock(return_value=httpx.Response(200, json=OK))
    await client.datum_metadata.store(177, "/power/1", {"m": {"a": 1}})
    assert _query(route.calls.last.request) == [("sourceId", "/power/1")]
    verify(route.calls.last.request)


async def test_stream_patch_token_delete_and_policy(
    api: tuple[SolarNetClient, respx.MockRouter],
) -> None:
    """Stream patch, token delete and policy calls have the documented shapes."""
    client, router = api
    ids = {"streamId": "5add151c", "kind": "n", "objectId": 124, "sourceId": "/x"}
    patch = router.patch(PREFIX + "/datum/stream/meta/node/5add151c").mock(
        return_value=httpx.Response(200, json={"success": True, "data": ids})
    )
    await client.streams.update_ids("5add151c", node_id=124, source_id="/x")
    assert _query(patch.calls.last.request) == [("nodeId", "124"), ("sourceId", "/x")]
    assert patch.calls.last.request.content == b""
    verify(patch.calls.last.request)
    delete = router.delete(PREFIX + "/user/auth-tokens").mock(
        return_value=httpx.Response(200, json=OK)
    )
    await client.tokens.delete("abc")
    assert _query(delete.calls.last.request) == [("tokenId", "abc")]
    token = {"id": "abc", "status": "Active", "type": "User", "policy": {"nodeIds": [1]}}
    policy = router.patch(PREFIX + "/user/auth-tokens/policy").mock(
        return_value=httpx.Response(200, json={"success": True, "data": token})
    )
    await client.tokens.add_policy("abc", {"nodeIds": [1]})
    assert orjson.loads(policy.calls.last.request.content) == {"nodeIds": [1]}
    assert verify(policy.calls.last.request) == "content-type;digest;host;x-sn-date"


async def test_associate_is_unsigned_and_outside_the_api_prefix(
    api: tuple[SolarNetClient, respx.MockRouter],
) -> None:
    """associate is unsigned and posted outside the API prefix."""
    client, router = api
    route = router.post("/solaruser/associate.json").mock(
        return_value=httpx.Response(200, json={"networkId": 9})
    )
    association = await client.associate(
        username="me@example.com", confirmation_key="ck", keystore_password="pw"
    )
    assert association.network_id == 9
    request = route.calls.last.request
    assert "authorization" not in request.headers
    assert request.content == b"username=me%40example.com&confirmationKey=ck&keystorePassword=pw"


async def test_an_unsigned_post_is_not_resent_after_a_server_error(
    api: tuple[SolarNetClient, respx.MockRouter],
) -> None:
    """associate (unsigned, accepted once) meets a 503: it reached the server, so it is
    not sent again; the error is the caller's to handle."""
    client, router = api
    route = router.post("/solaruser/associate.json").mock(
        return_value=httpx.Response(503, json={"success": False, "message": "busy"})
    )
    with pytest.raises(ServerError):
        await client.associate(
            username="me@example.com", confirmation_key="ck", keystore_password="pw"
        )
    assert route.call_count == 1


async def test_certificate_download(api: tuple[SolarNetClient, respx.MockRouter]) -> None:
    """A certificate download returns its bytes and the file name."""
    client, router = api
    route = router.get(PREFIX + "/nodes/cert/177").mock(
        return_value=httpx.Response(
            200,
            content=b"\x30\x82\x00\x01z",
            headers={
                "content-type": "application/x-pkcs12",
                "content-disposition": "attachment; filename=../../solarnode-177.p12",
            },
        )
    )
    cert = await client.nodes.certificate(177)
    assert (cert.filename, cert.content) == ("solarnode-177.p12", b"\x30\x82\x00\x01z")
    assert "application/x-pkcs12" in route.calls.last.request.headers["accept"]


async def test_queueing_is_not_retried_after_a_server_error(
    api: tuple[SolarNetClient, respx.MockRouter],
) -> None:
    """Queueing an instruction is not retried after a 5xx: it may have been queued."""
    client, router = api
    route = router.post(PREFIX + "/instr/add").mock(
        return_value=httpx.Response(503, json={"success": False, "message": "busy"})
    )
    with pytest.raises(ServerError):
        await client.instructions.add(1, "Signal")
    assert route.call_count == 1
    view = router.get(PREFIX + "/instr/view").mock(
        side_effect=[
            httpx.Response(503, json={"success": False}),
            httpx.Response(
                200, json={"success": True, "data": {"id": 1, "topic": "Signal", "state": "Queued"}}
            ),
        ]
    )
    assert (await client.instructions.get(1)).state == "Queued"
    assert view.call_count == 2


async def test_queueing_is_retried_when_the_connection_never_opened(
    api: tuple[SolarNetClient, respx.MockRouter],
) -> None:
    """Queueing is retried when the connection never opened."""
    client, router = api
    instruction = {"id": 1, "topic": "Signal", "state": "Queued"}
    route = router.post(PREFIX + "/instr/add").mock(
        side_effect=[
            httpx.ConnectError("refused"),
            httpx.Response(200, json={"success": True, "data": instruction}),
        ]
    )
    assert [i.id for i in await client.instructions.add(1, "Signal")] == [1]
    assert route.call_count == 2
    dropped = router.post(PREFIX + "/instr/exec").mock(side_effect=httpx.ReadError("reset"))
    with pytest.raises(TransportError):
        await client.instructions.exec(1, "Signal", result_max_wait=1)
    assert dropped.call_count == 1


@pytest.mark.parametrize(
    ("base_url", "host", "path"),
    [
        (
            "https://data.solarnetwork.net/solaruser/api/v1/sec/",
            "data.solarnetwork.net",
            "/solaruser/api/v1/sec/whoami",
        ),
        (
            "https://data.solarnetwork.net/solaruser",
            "data.solarnetwork.net",
            "/solaruser/api/v1/sec/whoami",
        ),
        (
            "https://proxy.example.com:8443/sn",
            "proxy.example.com:8443",
            "/sn/solaruser/api/v1/sec/whoami",
        ),
    ],
)
async def test_base_urls_and_proxies(base_url: str, host: str, path: str) -> None:
    """Base URLs with or without the API prefix, and behind a proxy path, all work."""
    with respx.mock(assert_all_called=False) as router:
        route = router.get(url__regex=r".*/whoami").mock(
            return_value=httpx.Response(
                200, json={"success": True, "data": {"token": "tok-123", "tokenType": "User"}}
            )
        )
        async with SolarNetClient(credentials=CREDS, base_url=base_url, wall=lambda: NOW) as c:
            await c.whoami()
        request = route.calls.last.request
        assert request.url.raw_path.decode() == path
        assert request.headers["host"] == host
        verify(request)


async def test_success_false_on_200_is_an_error(
    api: tuple[SolarNetClient, respx.MockRouter],
) -> None:
    """success:false in a 200 raises the mapped error."""
    client, router = api
    router.get(PREFIX + "/nodes/meta/177").mock(
        return_value=httpx.Response(
            200,
            json={
                "success": False,
                "code": "VAL.00003",
                "message": "Bad node",
                "errors": [{"field": "nodeId", "message": "not yours"}],
            },
        )
    )
    with pytest.raises(ValidationFailed, match="Bad node: nodeId: not yours") as caught:
        await client.node_metadata.get(177)
    assert caught.value.status_code == 422
