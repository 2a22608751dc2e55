"""httpx's conventions for the shell's options: ``timeout=`` as a number, an
``httpx.Timeout`` or ``Timeouts``, and ``max_retries=`` as in httpx and openai-python."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import httpx
import pytest
import respx

from locus_async import (
    BearerToken,
    ClientClosed,
    InvalidArgumentType,
    LocalLimiter,
    LocusClient,
    NotFound,
    Priority,
    RetryPolicy,
    ServerError,
    Timeouts,
    UsageError,
)
from locus_async.simulator import DEFAULT_ACCOUNT, IN_PROCESS_URL, Simulator
from locus_async.solarnetwork import Snws2Credentials, SolarNetClient
from tests import reference_examples as ex

pytestmark = pytest.mark.anyio

BASE = "https://api.locusenergy.com"


def _client(**kwargs: object) -> LocusClient:
    return LocusClient(auth=BearerToken("tok-1234"), **kwargs)  # type: ignore[arg-type]


def test_a_number_is_every_phase_and_the_whole_exchange_keeps_its_default() -> None:
    """``timeout=5.0`` bounds connect, read, write and pool at 5 s each; the exchange as a
    whole keeps 180 s (and is never shorter than a phase)."""
    assert _client(timeout=5.0)._session.transport.timeouts == Timeouts(5.0, 5.0, 5.0, 5.0, 180.0)
    assert _client(timeout=600)._session.transport.timeouts.total == 600.0


def test_an_httpx_timeout_keeps_our_default_where_it_says_none() -> None:
    """An ``httpx.Timeout`` gives its phases; a phase it leaves unbounded keeps ours."""
    given = httpx.Timeout(3.0, connect=1.0, pool=None)
    assert _client(timeout=given)._session.transport.timeouts == Timeouts(
        connect=1.0, read=3.0, write=3.0, pool=30.0, total=180.0
    )
    sn = SolarNetClient(credentials=Snws2Credentials("t", token_secret="s"), timeout=2)
    assert sn._session.transport.timeouts.read == 2.0


def test_wrong_timeouts_are_refused_in_one_line() -> None:
    """A string, a negative number, or both spellings at once: a typed error, nothing sent."""
    with pytest.raises(InvalidArgumentType, match=r"^timeout must be seconds \(a number\)"):
        _client(timeout="5")
    with pytest.raises(UsageError, match="must be a positive number of seconds"):
        _client(timeout=-1)
    with pytest.raises(UsageError, match=r"^give timeout or timeouts, not both$"):
        _client(timeout=1.0, timeouts=Timeouts())


async def test_max_retries_is_retries_after_the_first_try() -> None:
    """``max_retries=2`` sends a failing request three times, ``max_retries=0`` once."""
    for retries, sent in ((2, 3), (0, 1)):
        with respx.mock(base_url=BASE) as router:
            route = router.get("/v3/components/54369").mock(
                return_value=httpx.Response(503, json={"statusCode": 503, "message": "busy"})
            )
            async with _client(max_retries=retries) as client:
                with pytest.raises(ServerError):
                    await client.components.get(54369)
        assert route.call_count == sent


def test_max_retries_is_checked() -> None:
    """A negative count, a float, or both ``retry`` and ``max_retries``: refused."""
    with pytest.raises(UsageError, match=r"^max_retries must be at least 0, got -1$"):
        _client(max_retries=-1)
    with pytest.raises(InvalidArgumentType, match=r"^max_retries must be an int"):
        _client(max_retries=1.5)
    with pytest.raises(UsageError, match=r"^give retry or max_retries, not both"):
        _client(max_retries=1, retry=RetryPolicy())


def _timeouts_sent(request: httpx.Request) -> dict[str, float]:
    return dict(request.extensions["timeout"])


async def test_with_options_sets_one_calls_timeout_and_retries() -> None:
    """``with_options(timeout=2, max_retries=0)`` applies to the calls made through it; the
    client itself keeps its own (60 s reads, 3 retries)."""
    sent: list[dict[str, float]] = []

    def busy(request: httpx.Request) -> httpx.Response:
        sent.append(_timeouts_sent(request))
        return httpx.Response(503, json={"statusCode": 503, "message": "busy"})

    with respx.mock(base_url=BASE) as router:
        router.get("/v3/components/54369").mock(side_effect=busy)
        async with _client(max_retries=3) as client:
            quick = client.with_options(timeout=2, max_retries=0)
            with pytest.raises(ServerError):
                await quick.components.get(54369)
            assert [t["read"] for t in sent] == [2.0]
            with pytest.raises(ServerError):
                await client.components.get(54369)
            assert [t["read"] for t in sent[1:]] == [60.0] * 4
            assert quick.stats is client.stats
            assert quick.limiter is client.limiter
            assert client.stats.requests == 5


async def _until(condition: Callable[[], bool]) -> None:
    """Let other tasks run until ``condition`` holds (a bounded number of turns)."""
    for _ in range(1000):
        if condition():
            return
        await anyio.lowlevel.checkpoint()
    raise AssertionError("condition never held")


async def test_with_options_priority_puts_its_calls_in_that_queue() -> None:
    """Calls through ``with_options(priority=BACKGROUND)`` wait behind interactive ones
    queued after them, on the one shared slot."""
    order: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        order.append(request.url.path)
        return httpx.Response(200, json=ex.GET_COMPONENT)

    with respx.mock(base_url=BASE) as router:
        router.get(url__regex=r"/v3/components/\d+").mock(side_effect=answer)
        async with _client() as client:
            background = client.with_options(priority=Priority.BACKGROUND)
            limiter = client.limiter
            assert isinstance(limiter, LocalLimiter)
            gate = limiter.slot()
            await gate.__aenter__()  # the one slot is taken while both calls queue
            async with anyio.create_task_group() as group:
                group.start_soon(background.components.get, 1)
                await _until(lambda: limiter.waiting == 1)
                group.start_soon(client.components.get, 2)
                await _until(lambda: limiter.waiting == 2)
                await gate.__aexit__(None, None, None)
    assert order == ["/v3/components/2", "/v3/components/1"]


async def test_with_options_shares_the_lifecycle_and_checks_its_arguments() -> None:
    """Closing the client closes its copies (and the other way round); wrong options are
    refused before anything is sent."""
    client = _client()
    copy = client.with_options(timeout=1)
    await client.aclose()
    with pytest.raises(ClientClosed):
        await copy.components.get(54369)
    with pytest.raises(InvalidArgumentType, match=r"^priority must be a Priority, not str$"):
        client.with_options(priority="high")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=r"^max_retries must be at least 0"):
        client.with_options(max_retries=-1)
    with pytest.raises(InvalidArgumentType, match=r"^timeout must be seconds"):
        client.with_options(timeout=[1])
    sn = SolarNetClient(credentials=Snws2Credentials("t", token_secret="s"))
    assert sn.with_options(timeout=3)._session.timeouts == Timeouts(3, 3, 3, 3, 180)


async def test_your_own_httpx_client_carries_the_requests_and_stays_yours() -> None:
    """``http_client=``: every request (the token grant too) goes through it, with our
    headers and timeouts; closing our client leaves yours open."""
    sim = Simulator()
    seen: list[httpx.Request] = []

    async def note(request: httpx.Request) -> None:
        seen.append(request)

    yours = httpx.AsyncClient(transport=sim.transport(), event_hooks={"request": [note]})
    client = LocusClient(
        auth=DEFAULT_ACCOUNT.provider(), base_url=IN_PROCESS_URL, http_client=yours
    )
    async with client:
        site = await client.sites.get(3393714)
    assert site.id == 3393714
    assert [r.url.path for r in seen] == ["/oauth/token", "/v3/sites/3393714"]
    assert seen[1].headers["user-agent"].startswith("locus-async/")
    assert _timeouts_sent(seen[1])["read"] == 60.0
    assert not yours.is_closed
    with pytest.raises(ClientClosed):
        await client.sites.get(3393714)
    await yours.aclose()


async def test_event_hooks_see_every_request_and_response() -> None:
    """``event_hooks=`` as httpx takes them: called for each exchange, in order."""
    sim = Simulator()
    log: list[str] = []

    async def on_request(request: httpx.Request) -> None:
        log.append(f"> {request.method} {request.url.path}")

    async def on_response(response: httpx.Response) -> None:
        log.append(f"< {response.status_code}")

    async with sim.client(event_hooks={"request": [on_request], "response": [on_response]}) as c:
        await c.components.get(54369)
        with pytest.raises(NotFound):
            await c.components.get(1)
    assert log == [
        "> POST /oauth/token",
        "< 200",
        "> GET /v3/components/54369",
        "< 200",
        "> GET /v3/components/1",
        "< 404",
    ]


def test_http_client_and_hooks_are_checked() -> None:
    """A wrong type, or an own client together with options that belong on it: refused."""
    with pytest.raises(InvalidArgumentType, match=r"^http_client must be an httpx.AsyncClient"):
        _client(http_client=object())
    with pytest.raises(UsageError, match=r"^give http_client or transport/verify/event_hooks"):
        _client(http_client=httpx.AsyncClient(), verify=False)
    with pytest.raises(UsageError, match=r"takes 'request' and 'response', not 'send'"):
        _client(event_hooks={"send": []})
    with pytest.raises(InvalidArgumentType, match=r"must be a list of async callables"):
        _client(event_hooks={"request": print})


async def test_errors_carry_the_method_the_url_and_the_request_id() -> None:
    """An API error says which request failed: method, whole URL and the server's request
    id (``X-Request-Id``, or another header proxies use), besides status and message."""
    with respx.mock(base_url=BASE) as router:
        router.get("/v3/components/1").mock(
            return_value=httpx.Response(
                404,
                json={"statusCode": 404, "message": "Component not found"},
                headers={"X-Request-Id": "req-42"},
            )
        )
        router.get("/v3/components/2").mock(
            return_value=httpx.Response(404, json={"statusCode": 404, "message": "gone"})
        )
        async with _client() as client:
            with pytest.raises(NotFound) as caught:
                await client.components.get(1)
            with pytest.raises(NotFound) as second:
                await client.components.get(2)
    error = caught.value
    assert (error.status_code, error.method, error.request_id) == (404, "GET", "req-42")
    assert error.url == f"{BASE}/v3/components/1"
    assert error.request == "GET /v3/components/1"
    assert second.value.request_id is None
