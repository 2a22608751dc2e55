"""The simulator verifies SNWS2 as the server does: requests built by hand, independently of
the client, are accepted exactly when they are signed correctly."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, quote_plus

import httpx
import pytest
import respx

from locus_async.errors import AuthenticationError, ClockSkewError
from locus_async.simulator import SolarNetSimulator
from locus_async.solarnetwork import (
    Snws2Credentials,
    SolarNetClient,
    http_date,
    signing_key,
    snws2_authorization,
    string_to_sign,
)
from tests.conftest import FakeClock

pytestmark = pytest.mark.anyio

TOKEN, SECRET = "demo-sn-token", "demo-sn-secret"
PREFIX = "/solaruser/api/v1/sec"


def _headers(
    sn_clock: FakeClock,
    *,
    method: str = "GET",
    path: str = PREFIX + "/whoami",
    query: Iterable[tuple[str, str]] = (),
    extra: dict[str, str] | None = None,
    body: bytes = b"",
    skew: float = 0.0,
    secret: str = SECRET,
    key_age_days: int = 0,
) -> dict[str, str]:
    when = datetime.fromtimestamp(int(sn_clock.now + skew), UTC)
    headers = {"Host": "localhost", "X-SN-Date": http_date(when), **(extra or {})}
    key = signing_key(secret, (when - timedelta(days=key_age_days)).date())
    headers["Authorization"] = snws2_authorization(
        method=method,
        path=path,
        query=list(query),
        headers=headers,
        body=body,
        token_id=TOKEN,
        key=key,
        date=when,
    )
    return headers


async def _send(
    sim: SolarNetSimulator, method: str, target: str, headers: dict[str, str], body: bytes = b""
) -> httpx.Response:
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://localhost") as http:
        return await http.request(method, target, headers=headers, content=body or None)


async def test_a_correct_request_is_accepted(
    sn_sim: SolarNetSimulator, sn_clock: FakeClock
) -> None:
    """A correctly signed request is accepted."""
    response = await _send(sn_sim, "GET", PREFIX + "/whoami", _headers(sn_clock))
    assert response.status_code == 200
    assert response.json() == {"success": True, "data": {"token": TOKEN, "tokenType": "User"}}


async def test_query_and_non_ascii_values_verify(
    sn_sim: SolarNetSimulator, sn_clock: FakeClock
) -> None:
    """Query parameters with non-ASCII values verify."""
    query = [("nodeIds", "177"), ("metadataFilter", "(/m/os=débian ✓)"), ("max", "5")]
    target = PREFIX + "/nodes/meta?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query)
    headers = _headers(sn_clock, path=PREFIX + "/nodes/meta", query=query)
    response = await _send(sn_sim, "GET", target, headers)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["results"] == []


async def test_repeated_parameters_verify_in_their_order(
    sn_sim: SolarNetSimulator, sn_clock: FakeClock
) -> None:
    """Repeated parameters verify in their order, and not reordered."""
    query = [("nodeId", "177"), ("sourceIds", "/z"), ("sourceIds", "/a")]
    target = PREFIX + "/datum/auxiliary?nodeId=177&sourceIds=%2Fz&sourceIds=%2Fa"
    good = await _send(
        sn_sim, "GET", target, _headers(sn_clock, path=PREFIX + "/datum/auxiliary", query=query)
    )
    assert good.status_code == 200
    swapped = [query[0], query[2], query[1]]
    bad = await _send(
        sn_sim, "GET", target, _headers(sn_clock, path=PREFIX + "/datum/auxiliary", query=swapped)
    )
    assert bad.status_code == 401
    assert bad.headers["x-sn-errormessage"] == "Invalid signature"


async def test_form_post_fields_are_signed_as_parameters(
    sn_sim: SolarNetSimulator, sn_clock: FakeClock
) -> None:
    """Form post fields verify as signed parameters."""
    body = b"nodeIds=178&archived=true"
    headers = _headers(
        sn_clock,
        method="POST",
        path=PREFIX + "/nodes/archived",
        body=body,
        extra={"Content-Type": "application/x-www-form-urlencoded"},
    )
    response = await _send(sn_sim, "POST", PREFIX + "/nodes/archived", headers, body)
    assert response.status_code == 200, response.text
    assert sn_sim.world.nodes[178].archived is True


async def test_json_post_with_digest_verifies_and_a_tampered_body_does_not(
    sn_sim: SolarNetSimulator, sn_clock: FakeClock
) -> None:
    """A JSON post with its Digest verifies; a tampered body does not."""
    body = b'{"m":{"a":1}}'
    digest = "sha-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
    extra = {"Content-Type": "application/json", "Digest": digest}
    headers = _headers(
        sn_clock, method="POST", path=PREFIX + "/nodes/meta/177", body=body, extra=extra
    )
    assert (
        await _send(sn_sim, "POST", PREFIX + "/nodes/meta/177", headers, body)
    ).status_code == 200
    tampered = await _send(sn_sim, "POST", PREFIX + "/nodes/meta/177", headers, b'{"m":{"a":2}}')
    assert tampered.status_code == 403
    assert tampered.headers["x-sn-errormessage"] == "Digest does not match the body"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda h: h.pop("Authorization"), "Missing Authorization header"),
        (
            lambda h: h.update(Authorization=h["Authorization"].replace(",", ", ")),
            "Malformed SNWS2 Authorization header",
        ),
        (
            lambda h: h.update(
                Authorization=h["Authorization"].replace("host;x-sn-date", "x-sn-date;host")
            ),
            "SignedHeaders must be sorted",
        ),
        (
            lambda h: h.update(
                Authorization=h["Authorization"].replace("host;x-sn-date", "x-sn-date")
            ),
            "The host header must be signed",
        ),
        (lambda h: h.update({"X-SN-Trace": "1"}), "The x-sn-trace header must be signed"),
        (
            lambda h: h.update({"Content-Type": "text/plain"}),
            "The content-type header must be signed",
        ),
        (lambda h: h.update(Host="example.com"), "Invalid signature"),
    ],
)
async def test_what_the_server_refuses(
    sn_sim: SolarNetSimulator, sn_clock: FakeClock, mutate, message: str
) -> None:  # type: ignore[no-untyped-def]
    """Each malformed or incomplete signature is refused with the server's message."""
    headers = _headers(sn_clock)
    mutate(headers)
    response = await _send(sn_sim, "GET", PREFIX + "/whoami", headers)
    assert response.status_code == 401
    assert response.headers["x-sn-errormessage"].startswith(message)
    assert response.json()["success"] is False


async def test_the_bugs_of_public_clients_are_caught(
    sn_sim: SolarNetSimulator, sn_clock: FakeClock
) -> None:
    """Spaces signed as '+', unsorted parameters, an unsigned content type: all refused."""
    when = datetime.fromtimestamp(int(sn_clock.now), UTC)
    date_text = http_date(when)
    path = PREFIX + "/nodes/meta"
    target = path + "?metadataFilter=%28t%3Da%20b%29&nodeIds=177"

    def buggy(canonical_query: str) -> str:
        canonical = "\n".join(
            [
                "GET",
                path,
                canonical_query,
                "host:localhost",
                f"x-sn-date:{date_text}",
                "host;x-sn-date",
                hashlib.sha256(b"").hexdigest(),
            ]
        )
        key = signing_key(SECRET, when.date())
        sig = hmac.new(key, string_to_sign(canonical, when).encode(), hashlib.sha256).hexdigest()
        return f"SNWS2 Credential={TOKEN},SignedHeaders=host;x-sn-date,Signature={sig}"

    right = "metadataFilter=%28t%3Da%20b%29&nodeIds=177"
    plus = f"metadataFilter={quote_plus('(t=a b)')}&nodeIds=177"
    unsorted = "nodeIds=177&metadataFilter=%28t%3Da%20b%29"
    results = {}
    for name, query in (("right", right), ("plus", plus), ("unsorted", unsorted)):
        headers = {"Host": "localhost", "X-SN-Date": date_text, "Authorization": buggy(query)}
        results[name] = (await _send(sn_sim, "GET", target, headers)).status_code
    assert results == {"right": 200, "plus": 401, "unsorted": 401}


@pytest.mark.parametrize(("age", "status"), [(0, 200), (6, 200), (7, 401)])
async def test_keys_are_valid_for_seven_days(
    sn_sim: SolarNetSimulator, sn_clock: FakeClock, age: int, status: int
) -> None:
    """Keys of the request day and the six days before are accepted, older ones not."""
    headers = _headers(sn_clock, key_age_days=age)
    assert (await _send(sn_sim, "GET", PREFIX + "/whoami", headers)).status_code == status


@pytest.mark.parametrize(
    ("skew", "status"), [(-14 * 60, 200), (14 * 60, 200), (16 * 60, 401), (-16 * 60, 401)]
)
async def test_fifteen_minutes_of_skew(
    sn_sim: SolarNetSimulator, sn_clock: FakeClock, skew: float, status: int
) -> None:
    """Up to fifteen minutes of clock skew is accepted, more is refused."""
    response = await _send(sn_sim, "GET", PREFIX + "/whoami", _headers(sn_clock, skew=skew))
    assert response.status_code == status
    if status == 401:
        assert response.headers["x-sn-errormessage"] == "Date skew too large"


async def test_a_streamed_list_needs_an_accept_header(
    sn_sim: SolarNetSimulator, sn_clock: FakeClock
) -> None:
    """A streamed list without an Accept header is refused."""
    query = [("nodeId", "177")]
    headers = _headers(sn_clock, path=PREFIX + "/instr", query=query)
    async with httpx.AsyncClient(transport=sn_sim.transport(), base_url="http://localhost") as http:
        request = http.build_request("GET", PREFIX + "/instr?nodeId=177", headers=headers)
        del request.headers["accept"]
        response = await http.send(request)
    assert response.status_code == 406


async def test_the_client_reports_clock_skew_distinctly(
    sn_sim: SolarNetSimulator, sn_clock: FakeClock
) -> None:
    """Without a Date to learn from (a proxy dropped it), skew is a ClockSkewError, sent
    once: a new signature with the same clock cannot fix it."""
    refused = httpx.Response(
        401,
        headers={"x-sn-errormessage": "Date skew too large"},
        json={"success": False, "message": "Date skew too large"},
    )
    with respx.mock(base_url="https://data.solarnetwork.net") as router:
        route = router.get("/solaruser/api/v1/sec/whoami").mock(return_value=refused)
        async with SolarNetClient(credentials=Snws2Credentials(TOKEN, token_secret="s")) as fast:
            with pytest.raises(ClockSkewError, match="more than 15 minutes"):
                await fast.whoami()
    assert route.call_count == 1


async def test_wrong_secret_and_disabled_token(sn_sim: SolarNetSimulator) -> None:
    """A wrong secret and a disabled token are AuthenticationErrors without secrets."""
    async with sn_sim.client((TOKEN, "not-the-secret")) as wrong:
        with pytest.raises(AuthenticationError, match="Invalid signature") as caught:
            await wrong.whoami()
        assert "not-the-secret" not in str(caught.value)
    sn_sim.world.tokens[TOKEN].status = "Disabled"
    async with sn_sim.client() as disabled:
        with pytest.raises(AuthenticationError, match="Token disabled") as refused:
            await disabled.whoami()
    assert refused.value.status_code == 403


@pytest.mark.anyio
async def test_clock_skew_is_learned_from_the_servers_date_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A machine 20 minutes slow: the first refusal's Date teaches the skew, that request
    is signed again and succeeds, and later ones are dated right from the start."""
    clock = FakeClock(1_709_251_200.0)
    sim = SolarNetSimulator(clock=clock.time)
    slow = lambda: clock.time() - 1200  # noqa: E731
    async with sim.client(wall=slow, clock=clock.monotonic, sleep=clock.sleep) as client:
        with caplog.at_level("WARNING", logger="locus_async.solarnetwork"):
            assert (await client.whoami()).token == "demo-sn-token"
        assert (await client.whoami()).token == "demo-sn-token"
        assert client.stats.responses == {401: 1, 200: 2}
    assert sim.stats.counters["signatures_verified"] == 2
    skews = [r.getMessage() for r in caplog.records if "clock" in r.getMessage()]
    assert len(skews) == 1
    assert "+1200 s" in skews[0]


@pytest.mark.anyio
async def test_a_wrong_secret_is_not_blamed_on_the_clock() -> None:
    """Clocks in step: a refused signature is sent once and raised, not retried."""
    clock = FakeClock(1_709_251_200.0)
    sim = SolarNetSimulator(clock=clock.time)
    async with sim.client(
        ("demo-sn-token", "not-the-secret"), clock=clock.monotonic, sleep=clock.sleep
    ) as client:
        with pytest.raises(AuthenticationError):
            await client.whoami()
        assert client.stats.requests == 1
