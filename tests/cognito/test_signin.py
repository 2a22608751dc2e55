"""The Cognito sign-in end to end: moto's Cognito on loopback signs in, the simulator on a
socket accepts only that pool's IdTokens, and the client keeps the token fresh."""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from locus_async import (
    AuthenticationError,
    BearerToken,
    ChallengeRequired,
    LocusClient,
    RedisTokenStore,
    UnknownUser,
    UsageError,
    UserNotConfirmed,
    WrongCredentials,
)
from locus_async.simulator import DEFAULT_ACCOUNT, ServedSimulator, Simulator
from tests.cognito.conftest import PARTNER, PASSWORD, Pool, cognito_client
from tests.distributed.conftest import redis_server  # noqa: F401 - the shared fixture

pytestmark = pytest.mark.anyio


class Clock:
    """A monotonic clock the test moves: the client's sense of elapsed time (Cognito's own
    clock cannot be moved, so its tokens carry real times)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset


def _tokens(pool: Pool, username: str) -> dict[str, Any]:
    """What Cognito answers a direct sign-in (boto3, outside the library)."""
    answer = pool.idp.initiate_auth(
        ClientId=pool.client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
    )
    return dict(answer["AuthenticationResult"])


async def test_sign_in_uses_the_id_token_and_names_the_partner(
    pool: Pool, served: ServedSimulator, strict_sim: Simulator, user: str
) -> None:
    """One USER_PASSWORD_AUTH; the IdToken is the bearer; partner_id is the claim, and
    partners.* calls without an id reach that partner."""
    grant = pool.grant(user)
    async with cognito_client(served, grant) as client:
        assert await client.partner_id() == PARTNER
        sites = await client.partners.sites()
        assert sites == await client.partners.sites(PARTNER)
        assert {s.id for s in sites} >= {3393714, 3393715}
        assert client.stats.token_grants == {"USER_PASSWORD_AUTH": 1}
        claims = grant.claims
    assert claims["token_use"] == "id"
    assert claims["aud"] == pool.client_id
    assert claims["custom:partnerId"] == str(PARTNER)
    assert strict_sim.stats.grants["cognito"] == 1  # one IdToken seen by the API
    assert PASSWORD not in repr(grant)
    assert repr(grant) == (
        f"CognitoPasswordGrant(endpoint={pool.endpoint!r}, client_id={pool.client_id!r}, "
        f"username={user!r}, password='***')"
    )


async def test_the_simulator_refuses_access_tokens_and_foreign_tokens(
    pool: Pool, served: ServedSimulator, user: str
) -> None:
    """The strict API takes the pool's IdToken only: an AccessToken, a token signed by
    another key, one for another app client or without a partner are each refused (401)
    with their own reason."""
    tokens = _tokens(pool, user)

    async def status(token: str) -> str:
        async with LocusClient(base_url=served.url, auth=BearerToken(token)) as client:
            try:
                await client.components.get(54369)
            except AuthenticationError as exc:
                return exc.message
            return "accepted"

    assert await status(tokens["IdToken"]) == "accepted"
    assert await status(tokens["AccessToken"]) == (
        "Access tokens are not accepted: send the IdToken"
    )
    claims = jwt.decode(tokens["IdToken"], options={"verify_signature": False})
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, other_key, algorithm="RS256", headers={"kid": "dummy"})
    assert await status(forged) == "Token signature is not valid"
    other_client = pool.idp.create_user_pool_client(
        UserPoolId=pool.pool_id,
        ClientName="another",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    foreign = pool.idp.initiate_auth(
        ClientId=other_client,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": user, "PASSWORD": PASSWORD},
    )["AuthenticationResult"]["IdToken"]
    assert await status(foreign) == "Token is for another app client"
    no_partner = _tokens(pool, pool.user(partner=None))["IdToken"]
    assert await status(no_partner) == "Token has no custom:partnerId"


async def test_an_expired_id_token_is_refused(pool: Pool, user: str) -> None:
    """The strict API checks expiry on its own clock: an hour and a minute later, the
    same IdToken is answered 401 Token expired."""
    token = _tokens(pool, user)["IdToken"]
    later = Simulator(cognito=pool.trust(), clock=lambda: time.time() + 3660)
    with later.serve() as served:
        async with LocusClient(base_url=served.url, auth=BearerToken(token)) as client:
            with pytest.raises(AuthenticationError, match="Token expired"):
                await client.components.get(54369)


async def test_refresh_before_expiry_keeps_the_first_refresh_token(
    pool: Pool, served: ServedSimulator, user: str
) -> None:
    """Inside the last minute of the hour the client refreshes with REFRESH_TOKEN_AUTH
    (before the token expires), twice in a row with the refresh token of the sign-in,
    which the refresh answers do not replace."""
    clock = Clock()
    grant = pool.grant(user)
    async with cognito_client(served, grant, clock=clock.monotonic) as client:
        await client.components.get(54369)
        first = grant.claims["jti"]
        state = grant._state
        assert state is not None
        refresh_token = state.token.refresh_token
        lifetime = state.expires_at - clock.monotonic()
        assert 3590 < lifetime <= 3600
        clock.offset += 3500  # 100 s left: nothing to do yet
        await client.components.get(54369)
        assert client.stats.token_grants == {"USER_PASSWORD_AUTH": 1}
        clock.offset += 50  # 50 s left, inside the 60 s margin
        await client.components.get(54369)
        assert client.stats.token_grants == {"USER_PASSWORD_AUTH": 1, "REFRESH_TOKEN_AUTH": 1}
        assert grant.claims["jti"] != first
        assert grant._state is not None
        assert grant._state.token.refresh_token == refresh_token
        clock.offset += 3550
        await client.components.get(54369)
        assert client.stats.token_grants == {"USER_PASSWORD_AUTH": 1, "REFRESH_TOKEN_AUTH": 2}
        assert await client.partner_id() == PARTNER


async def test_a_refused_refresh_token_falls_back_to_one_sign_in(
    pool: Pool, served: ServedSimulator, user: str, caplog: pytest.LogCaptureFixture
) -> None:
    """After a global sign-out the refresh token is refused; the client signs in again,
    once, and the call goes through."""
    clock = Clock()
    async with cognito_client(served, pool.grant(user), clock=clock.monotonic) as client:
        await client.components.get(54369)
        pool.idp.admin_user_global_sign_out(UserPoolId=pool.pool_id, Username=user)
        clock.offset += 3590
        with caplog.at_level(logging.WARNING, logger="locus_async.auth"):
            await client.components.get(54369)
        assert client.stats.token_grants == {"USER_PASSWORD_AUTH": 2}
    assert "REFRESH_TOKEN_AUTH grant refused; falling back" in caplog.text


async def test_a_rejected_id_token_is_replaced_once(
    pool: Pool, served: ServedSimulator, strict_sim: Simulator, user: str
) -> None:
    """A 401 for the IdToken (revoked at the API) gets a new token and one resend."""
    grant = pool.grant(user)
    async with cognito_client(served, grant) as client:
        await client.components.get(54369)
        assert grant._state is not None
        strict_sim.core.revoke_token(grant._state.token.access_token)
        assert (await client.components.get(54369)).id == 54369
        assert sum(client.stats.token_grants.values()) == 2


async def test_one_sign_in_for_a_hundred_concurrent_calls(
    pool: Pool, served: ServedSimulator, strict_sim: Simulator, user: str
) -> None:
    """100 concurrent calls on a fresh client make one sign-in; the API sees one IdToken,
    never more than the allowance in flight."""
    async with cognito_client(served, pool.grant(user)) as client:
        got: list[int] = []

        async def one() -> None:
            got.append((await client.components.get(54369)).id)

        async with anyio.create_task_group() as group:
            for _ in range(100):
                group.start_soon(one)
        assert got == [54369] * 100
        assert client.stats.token_grants == {"USER_PASSWORD_AUTH": 1}
        assert client.stats.max_in_flight == 1
    assert strict_sim.stats.grants["cognito"] == 1
    assert strict_sim.stats.by_status[429] == 0
    assert strict_sim.stats.max_in_flight == 1


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # redis-py's client is asyncio's
async def test_a_token_store_shares_one_sign_in_between_clients(
    pool: Pool,
    served: ServedSimulator,
    user: str,
    redis_server: str,  # noqa: F811
) -> None:
    """Two clients (two providers, as in two processes) with one RedisTokenStore: one
    sign-in for both, and both read the partner from the shared IdToken."""
    import uuid

    key = f"locus-cognito-{uuid.uuid4().hex}"
    first = pool.grant(user, store=RedisTokenStore(redis_server, key=key))
    second = pool.grant(user, store=RedisTokenStore(redis_server, key=key))
    async with cognito_client(served, first) as a, cognito_client(served, second) as b:
        await a.components.get(54369)
        await b.components.get(54369)
        assert a.stats.token_grants == {"USER_PASSWORD_AUTH": 1}
        assert b.stats.token_grants == {}
        assert await b.partner_id() == PARTNER


@pytest.mark.parametrize(
    ("status", "password", "error", "text"),
    [
        ("confirmed", "not-the-password-1A!", WrongCredentials, "wrong username or password"),
        ("unconfirmed", PASSWORD, UserNotConfirmed, "the user has not been confirmed yet"),
        ("new_password", PASSWORD, ChallengeRequired, "asks for NEW_PASSWORD_REQUIRED"),
        ("sms_mfa", PASSWORD, ChallengeRequired, "asks for SMS_MFA"),
    ],
)
async def test_each_cognito_refusal_is_its_own_error(
    pool: Pool,
    served: ServedSimulator,
    status: str,
    password: str,
    error: type[Exception],
    text: str,
) -> None:
    """Wrong password, unconfirmed user, NEW_PASSWORD_REQUIRED and SMS_MFA (from moto's
    pool) each raise their own typed error, one line, no password; the API is never
    called."""
    username = pool.user(status=status)
    async with cognito_client(served, pool.grant(username, password=password)) as client:
        with pytest.raises(error) as caught:
            await client.components.get(54369)
        assert client.stats.requests == 1  # the one sign-in, no retry, no API call
    message = str(caught.value)
    assert text in message
    assert "\n" not in message
    assert password not in message
    assert PASSWORD not in message
    if isinstance(caught.value, ChallengeRequired):
        assert caught.value.challenge == text.rsplit(maxsplit=1)[-1]


async def test_an_unknown_user_is_told_to_use_the_username(
    pool: Pool, served: ServedSimulator
) -> None:
    """A display name typed instead of the username: UnknownUser saying what to type."""
    async with cognito_client(served, pool.grant("Jane Smith")) as client:
        with pytest.raises(UnknownUser, match="not the display name"):
            await client.authenticate()


async def test_partner_id_needs_a_sign_in_that_names_one(served: ServedSimulator) -> None:
    """An OAuth sign-in carries no partner: partner_id() and a partners call without an id
    say to pass the id."""
    async with LocusClient(base_url=served.url, auth=DEFAULT_ACCOUNT.provider()) as client:
        with pytest.raises(UsageError, match="pass partner_id"):
            await client.partner_id()
        with pytest.raises(UsageError, match=r"password\) does not say which partner"):
            await client.partners.sites()
