"""The Cognito sign-in and refresh cancelled at every await point, under asyncio and trio:
after each cancellation nothing is held, and the next call signs in (or refreshes) and goes
through. In process, so the sweep is exact: a Cognito stand-in signs real RS256 IdTokens
whose JWKS the strict simulator checks."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from locus_async import CognitoPasswordGrant, LocusClient
from locus_async.simulator import CognitoTrust, Simulator
from tests.conftest import FakeClock
from tests.reliability.test_cancel_paths import BACKENDS, _sweep
from tests.reliability.test_cancel_points import SteppingTransport

REGION_HOST = "cognito-idp.us-east-1.amazonaws.com"
POOL = "us-east-1_Sweep"
ISSUER = f"https://{REGION_HOST}/{POOL}"
APP = "sweep-app-client"
PASSWORD = "Sweep-p4ssword!"


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class StandIn:
    """Cognito's InitiateAuth for one user, signing IdTokens with its own RSA key."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        self.jwks = {"keys": [{**public, "kid": "k1", "alg": "RS256", "use": "sig"}]}
        self.flows: Counter[str] = Counter()

    def answer(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.flows[body["AuthFlow"]] += 1
        now = int(time.time())  # the simulator checks expiry on the real clock
        claims = {
            "iss": ISSUER, "aud": APP, "token_use": "id", "sub": "sweeper", "iat": now,
            "exp": now + 3600, "custom:partnerId": "111", "jti": uuid.uuid4().hex,
        }  # fmt: skip
        result: dict[str, Any] = {
            "IdToken": jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "k1"}),
            "AccessToken": "not-for-the-api",
            "ExpiresIn": 3600,
            "TokenType": "Bearer",
        }
        if body["AuthFlow"] == "USER_PASSWORD_AUTH":
            result["RefreshToken"] = "refresh-1"
        return httpx.Response(200, json={"AuthenticationResult": result})


class Routes(httpx.AsyncBaseTransport):
    """Cognito's host to the stand-in, everything else to the simulator in process."""

    def __init__(self, stand_in: StandIn, sim: Simulator) -> None:
        self.stand_in = stand_in
        self.api = sim.transport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == REGION_HOST:
            return self.stand_in.answer(request)
        return await self.api.handle_async_request(request)


def _parts() -> tuple[StandIn, Simulator]:
    stand_in = StandIn()
    trust = CognitoTrust(issuer=ISSUER, client_id=APP, jwks=stand_in.jwks)
    return stand_in, Simulator(cognito=trust)


def _client(stand_in: StandIn, sim: Simulator, clock: FakeClock) -> LocusClient:
    grant = CognitoPasswordGrant(
        region="us-east-1", client_id=APP, username="sweeper@example.com", password=PASSWORD
    )
    return LocusClient(
        base_url="http://localhost",
        auth=grant,
        transport=SteppingTransport(Routes(stand_in, sim)),
        clock=clock.monotonic,
        sleep=clock.sleep,
    )


async def _get(client: LocusClient) -> object:
    return await client.components.get(54369)


@pytest.mark.anyio
async def test_sign_in_cancelled_at_every_await_point_leaks_nothing() -> None:
    """A first call (sign-in, then the API) cancelled at each turn: the next call signs
    in and goes through, and the simulator saw only whole IdTokens."""
    stand_in, sim = _parts()
    ticks = await _sweep(lambda: _client(stand_in, sim, FakeClock()), _get, _get)
    assert ticks > 10  # the sweep crossed the sign-in and the API call
    assert stand_in.flows["USER_PASSWORD_AUTH"] >= ticks
    assert sim.stats.by_status[401] == 0


@pytest.mark.anyio
async def test_refresh_cancelled_at_every_await_point_leaks_nothing() -> None:
    """A call that must refresh first, cancelled at each turn: the next call refreshes
    (never a new sign-in) and goes through."""
    stand_in, sim = _parts()

    @contextlib.asynccontextmanager
    async def near_expiry() -> AsyncIterator[LocusClient]:
        clock = FakeClock()
        async with _client(stand_in, sim, clock) as client:
            await client.authenticate()
            clock.advance(3590)
            yield client

    ticks = await _sweep(near_expiry, _get, _get)
    assert ticks > 10
    signed_in = stand_in.flows["USER_PASSWORD_AUTH"]
    assert signed_in == ticks + 1  # one per client made: cancelled refreshes never sign in
    assert stand_in.flows["REFRESH_TOKEN_AUTH"] >= ticks
    assert sim.stats.by_status[401] == 0


@pytest.mark.anyio
async def test_partners_without_an_id_cancelled_at_every_await_point_leak_nothing() -> None:
    """``partners.sites()`` with no id (sign in, read the partner from the IdToken, then
    the call) cancelled at each turn: the next call without an id goes through."""
    stand_in, sim = _parts()

    async def sites(client: LocusClient) -> object:
        return await client.partners.sites()

    ticks = await _sweep(lambda: _client(stand_in, sim, FakeClock()), sites, sites)
    assert ticks > 10
    assert sim.stats.by_status[401] == 0
