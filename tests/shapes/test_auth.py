"""Token lifecycle against respx: fresh tokens without wasted requests, single flight."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qsl

import anyio
import httpx
import pytest
import respx

from locus_async import (
    AuthenticationError,
    BearerToken,
    ClientCredentialsGrant,
    LocusClient,
    PasswordGrant,
    PermissionDenied,
    RefreshTokenGrant,
    Token,
)
from tests import reference_examples as ex
from tests.conftest import FakeClock

pytestmark = pytest.mark.anyio

BASE = "https://api.locusenergy.com"
SECRET = "cl1ent-s3cret"
PASSWORD = "pa55w0rd-xyz"


class TokenServer:
    """A respx token endpoint issuing numbered tokens, recording each grant type."""

    def __init__(self, clock: FakeClock, lifetime: int = 3600) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.grants: list[str] = []
        self.refresh_tokens: list[str] = []
        self.refuse_refresh = False
        self.refuse_password = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        form = dict(parse_qsl(request.content.decode()))
        grant = form["grant_type"]
        self.grants.append(grant)
        if grant == "refresh_token":
            self.refresh_tokens.append(form["refresh_token"])
            if self.refuse_refresh:
                return httpx.Response(
                    401, json={"statusCode": 401, "message": "Invalid refresh token"}
                )
        if grant == "password" and (self.refuse_password or form["password"] != PASSWORD):
            return httpx.Response(401, json={"statusCode": 401, "message": "Bad credentials"})
        n = len(self.grants)
        body = {
            "access_token": f"access-{n}",
            "issued_at": int(self.clock.time()),
            "expires_in": self.lifetime,
            "token_type": "bearer",
        }
        if grant == "password":
            body["refresh_token"] = f"refresh-{n}"
        return httpx.Response(200, json=body)


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        yield mock


def _password(password: str = PASSWORD) -> PasswordGrant:
    return PasswordGrant(client_id="cid", client_secret=SECRET, username="me", password=password)


def _client(auth: object, clock: FakeClock, **kwargs: object) -> LocusClient:
    return LocusClient(
        auth=auth, clock=clock.monotonic, wall=clock.time, sleep=clock.sleep, **kwargs
    )  # type: ignore[arg-type]


def _bearers(route: respx.Route) -> list[str]:
    return [c.request.headers["authorization"] for c in route.calls]


async def test_token_is_refreshed_before_it_expires(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    """Inside the refresh margin the client refreshes first: the request never meets a stale token."""
    server = TokenServer(clock)
    router.post("/oauth/token").mock(side_effect=server)
    route = router.get("/v3/sites/123").mock(return_value=httpx.Response(200, json=ex.GET_SITE))
    async with _client(_password(), clock) as client:
        await client.sites.get(123)
        clock.advance(3600 - 61)
        await client.sites.get(123)
        clock.advance(2)  # now 59 s before expiry: inside the 60 s margin
        await client.sites.get(123)
        assert client.stats.token_grants == {"password": 1, "refresh_token": 1}
        assert client.stats.refreshes == 1
    assert server.grants == ["password", "refresh_token"]
    assert server.refresh_tokens == ["refresh-1"]
    assert _bearers(route) == ["Bearer access-1", "Bearer access-1", "Bearer access-2"]


async def test_refresh_without_new_refresh_token_keeps_the_old_one(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    """The refresh response has no refresh_token: the next refresh reuses the original."""
    server = TokenServer(clock)
    router.post("/oauth/token").mock(side_effect=server)
    router.get("/v3/sites/123").mock(return_value=httpx.Response(200, json=ex.GET_SITE))
    async with _client(_password(), clock) as client:
        for _ in range(3):
            await client.sites.get(123)
            clock.advance(3600)
        await client.sites.get(123)
    assert server.grants == ["password", "refresh_token", "refresh_token", "refresh_token"]
    assert server.refresh_tokens == ["refresh-1", "refresh-1", "refresh-1"]


async def test_fifty_concurrent_401s_cause_one_refresh(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    """50 requests in flight all get 401 for a revoked token: exactly one new token, all succeed."""
    server = TokenServer(clock)
    router.post("/oauth/token").mock(side_effect=server)
    revoked = {"Bearer access-1"}
    arrived = anyio.Event()
    waiting = 0

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal waiting
        if request.headers["authorization"] in revoked:
            waiting += 1
            if waiting == 50:
                arrived.set()
            await arrived.wait()  # hold until all 50 are in flight with the old token
            return httpx.Response(401, json={"statusCode": 401, "message": "Token revoked"})
        return httpx.Response(200, json=ex.GET_COMPONENT)

    route = router.get("/v3/components/54369").mock(side_effect=answer)
    async with _client(_password(), clock, max_concurrency=50) as client:
        results = []

        async def one() -> None:
            results.append(await client.components.get(54369))

        async with anyio.create_task_group() as group:
            for _ in range(50):
                group.start_soon(one)
    assert len(results) == 50
    assert server.grants == ["password", "refresh_token"]
    assert route.call_count == 100
    assert sorted(set(_bearers(route))) == ["Bearer access-1", "Bearer access-2"]


async def test_an_abandoned_refresher_hands_the_grant_to_a_waiter(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    """The caller whose grant is on the wire is cancelled: the callers waiting for that
    token are not stuck (no lock was held across the yield); one of them grants again and
    all of them succeed, with exactly one more grant."""
    server = TokenServer(clock)
    first_grant = anyio.Event()
    never = anyio.Event()

    async def token(request: httpx.Request) -> httpx.Response:
        if not first_grant.is_set():
            first_grant.set()
            await never.wait()  # the first grant never answers
        return server(request)

    router.post("/oauth/token").mock(side_effect=token)
    router.get("/v3/components/54369").mock(return_value=httpx.Response(200, json=ex.GET_COMPONENT))
    async with _client(_password(), clock, max_concurrency=4) as client:
        results: list[object] = []

        async def one() -> None:
            results.append(await client.components.get(54369))

        scopes: list[anyio.CancelScope] = []

        async def refresher() -> None:
            with anyio.CancelScope() as scope:
                scopes.append(scope)
                await one()

        async with anyio.create_task_group() as group:
            group.start_soon(refresher)
            await first_grant.wait()  # its grant is on the wire
            for _ in range(5):
                group.start_soon(one)  # these wait for its token (or for a slot)
            await anyio.wait_all_tasks_blocked()
            assert results == []
            scopes[0].cancel()  # the refresher is abandoned mid-grant
    assert len(results) == 5
    assert server.grants == ["password"]  # the abandoned grant never reached the server
    assert client.stats.token_grants["password"] == 1


async def test_refused_refresh_falls_back_to_password_once(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    """A revoked refresh token: one password grant, then on with the new token."""
    server = TokenServer(clock)
    router.post("/oauth/token").mock(side_effect=server)
    router.get("/v3/sites/123").mock(return_value=httpx.Response(200, json=ex.GET_SITE))
    async with _client(_password(), clock) as client:
        await client.sites.get(123)
        server.refuse_refresh = True
        clock.advance(3600)
        await client.sites.get(123)
    assert server.grants == ["password", "refresh_token", "password"]


async def test_refused_refresh_and_password_fail_without_a_loop(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    """Both refused: AuthenticationError after exactly one fallback attempt."""
    server = TokenServer(clock)
    router.post("/oauth/token").mock(side_effect=server)
    router.get("/v3/sites/123").mock(return_value=httpx.Response(200, json=ex.GET_SITE))
    async with _client(_password(), clock) as client:
        await client.sites.get(123)
        server.refuse_refresh = server.refuse_password = True
        clock.advance(3600)
        with pytest.raises(AuthenticationError):
            await client.sites.get(123)
    assert server.grants == ["password", "refresh_token", "password"]


async def test_wrong_password_is_one_request_and_an_error(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    """Bad credentials: one token request, AuthenticationError at once, no data request."""
    server = TokenServer(clock)
    token = router.post("/oauth/token").mock(side_effect=server)
    data = router.get("/v3/sites/123").mock(return_value=httpx.Response(200, json=ex.GET_SITE))
    async with _client(_password("wrong-password"), clock) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.sites.get(123)
    assert token.call_count == 1
    assert data.call_count == 0
    assert caught.value.status_code == 401
    assert "wrong-password" not in str(caught.value)
    assert SECRET not in str(caught.value)


async def test_403_never_refreshes_or_retries(router: respx.MockRouter, clock: FakeClock) -> None:
    """PermissionDenied: the token is fine, so no refresh and no second request."""
    server = TokenServer(clock)
    router.post("/oauth/token").mock(side_effect=server)
    route = router.get("/v3/sites/999").mock(
        return_value=httpx.Response(403, json={"statusCode": 403, "message": "Forbidden"})
    )
    async with _client(_password(), clock) as client:
        with pytest.raises(PermissionDenied) as caught:
            await client.sites.get(999)
    assert caught.value.status_code == 403
    assert route.call_count == 1
    assert server.grants == ["password"]


async def test_client_credentials_authenticate_again_at_expiry(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    """No refresh token: a new client-credentials grant before expiry."""
    server = TokenServer(clock)
    router.post("/oauth/token").mock(side_effect=server)
    router.get("/v3/sites/123").mock(return_value=httpx.Response(200, json=ex.GET_SITE))
    auth = ClientCredentialsGrant(client_id="cid", client_secret=SECRET)
    async with _client(auth, clock) as client:
        await client.sites.get(123)
        clock.advance(3590)
        await client.sites.get(123)
    assert server.grants == ["client_credentials", "client_credentials"]


async def test_refresh_token_grant_starts_from_a_given_token(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    """RefreshTokenGrant uses the caller's refresh token and keeps it across refreshes."""
    server = TokenServer(clock)
    router.post("/oauth/token").mock(side_effect=server)
    router.get("/v3/sites/123").mock(return_value=httpx.Response(200, json=ex.GET_SITE))
    auth = RefreshTokenGrant(client_id="cid", client_secret=SECRET, refresh_token="given-rt")
    async with _client(auth, clock) as client:
        await client.sites.get(123)
        clock.advance(3600)
        await client.sites.get(123)
    assert server.refresh_tokens == ["given-rt", "given-rt"]


async def test_bearer_callable_is_asked_again_after_a_401(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    """An async token source is called once, and once more after the server rejects it."""
    issued = iter(["idp-1", "idp-2"])
    calls = 0

    async def source() -> str:
        nonlocal calls
        calls += 1
        return next(issued)

    seen = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal seen
        seen += 1
        if seen == 2:  # the identity provider's first token expires after one use
            return httpx.Response(401, json={"message": "expired"})
        return httpx.Response(200, json=ex.GET_SITE)

    route = router.get("/v3/sites/123").mock(side_effect=answer)
    async with _client(BearerToken(source), clock) as client:
        await client.sites.get(123)
        await client.sites.get(123)
        await client.sites.get(123)
    assert calls == 2
    assert _bearers(route) == ["Bearer idp-1", "Bearer idp-1", "Bearer idp-2", "Bearer idp-2"]


async def test_bearer_callable_returning_a_token_is_renewed_before_expiry(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    """A Token from the callable carries its expiry, so it is replaced in time."""
    from datetime import UTC, datetime

    count = 0

    async def source() -> Token:
        nonlocal count
        count += 1
        return Token(
            access_token=f"t{count}",
            issued_at=datetime.fromtimestamp(clock.time(), UTC),
            expires_in=100,
        )

    route = router.get("/v3/sites/123").mock(return_value=httpx.Response(200, json=ex.GET_SITE))
    async with _client(BearerToken(source), clock) as client:
        await client.sites.get(123)
        clock.advance(80)
        await client.sites.get(123)
    assert _bearers(route) == ["Bearer t1", "Bearer t2"]


async def test_static_bearer_401_is_final(router: respx.MockRouter, clock: FakeClock) -> None:
    """A fixed token cannot be renewed: the 401 surfaces after one request."""
    route = router.get("/v3/sites/123").mock(
        return_value=httpx.Response(401, json={"message": "no"})
    )
    async with _client(BearerToken("static-token-1"), clock) as client:
        with pytest.raises(AuthenticationError):
            await client.sites.get(123)
    assert route.call_count == 1


async def test_provider_reprs_hide_secrets() -> None:
    """Secrets and passwords never appear in provider or client reprs."""
    providers = [
        _password(),
        RefreshTokenGrant(client_id="cid", client_secret=SECRET, refresh_token="rt-secret-1"),
        ClientCredentialsGrant(client_id="cid", client_secret=SECRET),
        BearerToken("bearer-secret-1"),
    ]
    for provider in providers:
        text = repr(provider) + repr(LocusClient(auth=provider))
        for secret in (SECRET, PASSWORD, "rt-secret-1", "bearer-secret-1"):
            assert secret not in text
