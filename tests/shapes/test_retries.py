"""Retries: what is retried, how long it waits, the shared 429 pause, logs and stats."""

from __future__ import annotations

import logging

import httpx
import pytest
import respx

from locus_async import (
    BadRequest,
    BearerToken,
    LocusClient,
    NotFound,
    PermissionDenied,
    RequestTimeout,
    ResponseDecodeError,
    RetryPolicy,
    ServerError,
    TransportError,
    set_testing,
)
from locus_async._core.http import Request
from tests import reference_examples as ex
from tests.conftest import FakeClock

pytestmark = pytest.mark.anyio

BASE = "https://api.locusenergy.com"
OK = httpx.Response(200, json=ex.GET_COMPONENT)
RATE_LIMITED = httpx.Response(429, json={"message": "Too many requests", "statusCode": 429})


def _client(**kwargs: object) -> LocusClient:
    return LocusClient(auth=BearerToken("tok-1234"), **kwargs)  # type: ignore[arg-type]


async def test_429_then_success() -> None:
    """A 429 is retried; the stats count it."""
    with respx.mock(base_url=BASE) as router:
        route = router.get("/v3/components/54369").mock(side_effect=[RATE_LIMITED, OK])
        async with _client() as client:
            component = await client.components.get(54369)
            assert (client.stats.rate_limited, client.stats.retries) == (1, 1)
    assert component.id == 54369
    assert route.call_count == 2


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, BadRequest), (403, PermissionDenied), (404, NotFound)],
)
async def test_client_errors_are_never_retried(status: int, error: type[Exception]) -> None:
    """400, 403 and 404 fail after exactly one request."""
    with respx.mock(base_url=BASE) as router:
        route = router.get("/v3/components/54369").mock(
            return_value=httpx.Response(status, json={"statusCode": status, "message": "no"})
        )
        async with _client() as client:
            with pytest.raises(error) as caught:
                await client.components.get(54369)
            assert client.stats.retries == 0
    assert route.call_count == 1
    assert caught.value.status_code == status  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (httpx.Response(503, json={"statusCode": 503, "message": "down"}), ServerError),
        (httpx.Response(502, text="<html>502 Bad Gateway</html>"), ServerError),
        (httpx.Response(200, text="<html>maintenance</html>"), ResponseDecodeError),
        (httpx.ConnectError("refused"), TransportError),
        (httpx.ReadTimeout("slow"), RequestTimeout),
        (
            httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body"
            ),
            TransportError,
        ),
    ],
)
async def test_gets_retry_transient_failures_then_give_up(
    failure: object, error: type[Exception]
) -> None:
    """GETs retry 5xx, HTML pages, bad bodies, connection errors and timeouts, boundedly."""
    with respx.mock(base_url=BASE) as router:
        route = router.get("/v3/components/54369").mock(side_effect=[failure, OK])
        async with _client() as client:
            assert (await client.components.get(54369)).id == 54369
        route.mock(side_effect=[failure] * 10)
        async with _client(retry=RetryPolicy(attempts=4)) as client:
            with pytest.raises(error):
                await client.components.get(54369)
            assert client.stats.retries == 3
    assert route.call_count == 2 + 4


async def test_unsafe_posts_are_not_resent_after_reaching_the_server() -> None:
    """A non-retry-safe POST: 5xx is final, a refused connection is retried, 429 is retried."""
    with respx.mock(base_url=BASE) as router:
        route = router.post("/api/act").mock(
            side_effect=[
                httpx.Response(500, json={"message": "oops"}),
                httpx.ConnectError("no"),
                RATE_LIMITED,
                OK,
            ]
        )
        async with _client() as client:
            request = Request("POST", "/api/act", content=b"{}", retry_safe=False)
            with pytest.raises(ServerError):
                await client._session.call(request, lambda r: r.status_code)
            assert route.call_count == 1
            assert await client._session.call(request, lambda r: r.status_code) == 200
    assert route.call_count == 4


async def test_retry_after_is_honoured_for_5xx() -> None:
    """A 503 with Retry-After waits exactly that long (capped by the policy maximum)."""
    set_testing(False)
    clock = FakeClock()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await clock.sleep(seconds)

    with respx.mock(base_url=BASE) as router:
        router.get("/v3/components/54369").mock(
            side_effect=[
                httpx.Response(503, headers={"Retry-After": "7"}, json={"message": "busy"}),
                OK,
            ]
        )
        async with _client(clock=clock.monotonic, wall=clock.time, sleep=sleep) as client:
            await client.components.get(54369)
    assert slept == [7.0]


async def test_429_pauses_the_whole_credential() -> None:
    """After a 429 with Retry-After, every queued request waits out one shared pause."""
    set_testing(False)
    clock = FakeClock()
    sent_at: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent_at.append(clock.now)
        if len(sent_at) == 1:
            return httpx.Response(
                429, headers={"Retry-After": "3"}, json={"message": "Too many requests"}
            )
        return OK

    with respx.mock(base_url=BASE) as router:
        router.get("/v3/components/54369").mock(side_effect=answer)
        async with _client(clock=clock.monotonic, wall=clock.time, sleep=clock.sleep) as client:
            import anyio

            async with anyio.create_task_group() as group:
                for _ in range(3):
                    group.start_soon(client.components.get, 54369)
            assert client.stats.rate_limited == 1
    start = sent_at[0]
    assert sent_at[1:] == [start + 3.0] * 3  # three requests, all after the one 3 s pause


async def test_backoff_waits_grow_without_holding_the_slot() -> None:
    """Backoff sleeps happen with the slot released, and grow between attempts."""
    set_testing(False)
    clock = FakeClock()
    waits: list[tuple[float, int]] = []
    holder: list[LocusClient] = []

    async def sleep(seconds: float) -> None:
        waits.append((seconds, holder[0].limiter.in_use))  # type: ignore[attr-defined]
        await clock.sleep(seconds)

    failure = httpx.Response(500, json={"message": "oops"})
    with respx.mock(base_url=BASE) as router:
        router.get("/v3/components/54369").mock(side_effect=[failure, failure, failure, OK])
        async with _client(clock=clock.monotonic, wall=clock.time, sleep=sleep) as client:
            holder.append(client)
            await client.components.get(54369)
    assert [in_use for _, in_use in waits] == [0, 0, 0]
    seconds = [s for s, _ in waits]
    assert 0.25 <= seconds[0] <= 0.5
    assert 0.5 <= seconds[1] <= 1.0
    assert 1.0 <= seconds[2] <= 2.0


async def test_retries_and_429s_are_logged_without_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """WARNING lines for retries and 429 pauses; the token never appears."""
    caplog.set_level(logging.DEBUG, logger="locus_async")
    with respx.mock(base_url=BASE) as router:
        router.get("/v3/components/54369").mock(
            side_effect=[RATE_LIMITED, httpx.Response(500, json={"message": "oops"}), OK]
        )
        async with LocusClient(auth=BearerToken("SECRET-TOKEN-42")) as client:
            await client.components.get(54369)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "429 from GET /v3/components/54369" in text
    assert text.count("retrying (attempt") == 2
    assert "SECRET-TOKEN-42" not in text


async def test_deadline_stops_retrying() -> None:
    """An overall deadline ends retries even when attempts remain."""
    clock = FakeClock()
    with respx.mock(base_url=BASE) as router:
        route = router.get("/v3/components/54369").mock(
            return_value=httpx.Response(500, json={"message": "x"})
        )
        async with _client(retry=RetryPolicy(attempts=50, deadline=0.0)) as client:
            with pytest.raises(ServerError):
                await client.components.get(54369)
    assert route.call_count == 1
    del clock
