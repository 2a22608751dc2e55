"""The Cognito sign-in's exact wire shapes against respx: the InitiateAuth request, the
bearer, and the refusals moto's emulator does not produce (a reset password, a lockout,
throttling), each its own error and never retried."""

from __future__ import annotations

import base64
import json
import logging

import httpx
import orjson
import pytest
import respx

from locus_async import (
    CognitoPasswordGrant,
    HttpxAuth,
    LocusClient,
    PasswordResetRequired,
    SignInError,
    TooManyAttempts,
    UsageError,
)
from locus_async.locus.client import auth_from_env
from tests.conftest import FakeClock

pytestmark = pytest.mark.anyio

BASE = "https://api.locusenergy.com"
COGNITO = "https://cognito-idp.eu-west-1.amazonaws.com/"
PASSWORD = "Pa55w0rd-with-s3cret!"
APP = "3n4b5urk1ft4fl3mg5e4ihrt3s"


def _jwt(claims: dict[str, object]) -> str:
    """An unsigned JWT-shaped token (the client reads claims; only the API verifies)."""

    def part(value: object) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'kid': 'k1'})}.{part(claims)}.c2lnbmF0dXJl"


def _signed_in(
    now: float, n: int = 1, *, refresh: bool = True, lifetime: int = 3600
) -> dict[str, object]:
    result: dict[str, object] = {
        "AccessToken": f"access-token-{n}",
        "ExpiresIn": 3600,
        "IdToken": _jwt(
            {"token_use": "id", "iat": int(now), "exp": int(now) + lifetime,
             "custom:partnerId": "4242", "n": n}
        ),
        "TokenType": "Bearer",
    }  # fmt: skip
    if refresh:
        result["RefreshToken"] = "refresh-token-1"
    return {"AuthenticationResult": result, "ChallengeParameters": {}}


def _grant(**kwargs: object) -> CognitoPasswordGrant:
    return CognitoPasswordGrant(
        region="eu-west-1", client_id=APP, username="ops@example.com", password=PASSWORD, **kwargs
    )


def _refusal(kind: str, message: str, status: int = 400) -> httpx.Response:
    return httpx.Response(
        status,
        json={"__type": kind, "message": message},
        headers={"Content-Type": "application/x-amz-json-1.1"},
    )


@respx.mock(assert_all_mocked=True)
async def test_initiate_auth_request_and_bearer_are_exact(respx_mock: respx.MockRouter) -> None:
    """USER_PASSWORD_AUTH goes to cognito-idp.<region>.amazonaws.com as Cognito's JSON
    protocol; the API gets the IdToken (never the AccessToken) as the bearer."""
    clock = FakeClock()
    cognito = respx_mock.post(COGNITO).respond(json=_signed_in(clock.time()))
    api = respx_mock.get(f"{BASE}/v3/partners/4242/sites").respond(
        json={"statusCode": 200, "sites": []}
    )
    async with LocusClient(auth=_grant(), clock=clock.monotonic, wall=clock.time) as client:
        assert await client.partners.sites() == []
        assert await client.partner_id() == 4242
    sent = cognito.calls.last.request
    assert sent.headers["X-Amz-Target"] == "AWSCognitoIdentityProviderService.InitiateAuth"
    assert sent.headers["Content-Type"] == "application/x-amz-json-1.1"
    assert "authorization" not in sent.headers
    assert json.loads(sent.content) == {
        "AuthFlow": "USER_PASSWORD_AUTH",
        "ClientId": APP,
        "AuthParameters": {"USERNAME": "ops@example.com", "PASSWORD": PASSWORD},
    }
    bearer = api.calls.last.request.headers["Authorization"]
    assert bearer == "Bearer " + str(_signed_in(clock.time())["AuthenticationResult"]["IdToken"])  # type: ignore[index]


@respx.mock(assert_all_mocked=True)
async def test_refresh_request_and_the_shorter_id_token_lifetime(
    respx_mock: respx.MockRouter,
) -> None:
    """An IdToken living 10 minutes (shorter than ExpiresIn) is refreshed by its own
    lifetime, with REFRESH_TOKEN_AUTH carrying the sign-in's refresh token."""
    clock = FakeClock()
    answers = iter(
        [
            _signed_in(clock.time(), 1, lifetime=600),
            _signed_in(clock.time() + 560, 2, refresh=False),
        ]
    )
    cognito = respx_mock.post(COGNITO).mock(
        side_effect=lambda _: httpx.Response(200, json=next(answers))
    )
    respx_mock.get(f"{BASE}/v3/partners/4242/sites").respond(json={"statusCode": 200, "sites": []})
    async with LocusClient(auth=_grant(), clock=clock.monotonic, wall=clock.time) as client:
        await client.partners.sites()
        clock.advance(500)  # 100 s left: outside the margin (a quarter of 600 s: 60 s)
        await client.partners.sites()
        assert cognito.call_count == 1
        clock.advance(60)
        await client.partners.sites()
    assert cognito.call_count == 2
    assert json.loads(cognito.calls.last.request.content) == {
        "AuthFlow": "REFRESH_TOKEN_AUTH",
        "ClientId": APP,
        "AuthParameters": {"REFRESH_TOKEN": "refresh-token-1"},
    }


@pytest.mark.parametrize(
    ("answer", "error", "text"),
    [
        (_refusal("PasswordResetRequiredException", "Password reset required for the user"),
         PasswordResetRequired, "the password must be reset before signing in"),
        (_refusal("NotAuthorizedException", "Password attempts exceeded"),
         TooManyAttempts, "too many failed sign-ins: the account is locked for now"),
        (_refusal("TooManyRequestsException", "Too many requests"),
         TooManyAttempts, "too many sign-in attempts: wait before trying again"),
        (_refusal("TooManyFailedAttemptsException", "Too many failed attempts"),
         TooManyAttempts, "too many sign-in attempts: wait before trying again"),
        (_refusal("ResourceNotFoundException", f"User pool client {APP} does not exist."),
         SignInError, "the app client id is not known in this region"),
        (_refusal("InvalidParameterException", "USER_PASSWORD_AUTH flow not enabled for this client"),
         SignInError, "the sign-in was refused (Cognito: USER_PASSWORD_AUTH flow not enabled"),
        (_refusal("NotAuthorizedException", "User is disabled."),
         SignInError, "the user is disabled"),
    ],
)  # fmt: skip
@respx.mock(assert_all_mocked=True)
async def test_refusals_are_typed_and_never_retried(
    respx_mock: respx.MockRouter, answer: httpx.Response, error: type[Exception], text: str
) -> None:
    """Each refusal is its own one-line error naming Cognito's code, sent exactly once (a
    retry could extend a lockout), with no password in it."""
    cognito = respx_mock.post(COGNITO).mock(return_value=answer)
    async with LocusClient(auth=_grant()) as client:
        with pytest.raises(error) as caught:
            await client.authenticate()
    assert cognito.call_count == 1
    assert type(caught.value) is error
    message = str(caught.value)
    assert text in message
    assert "POST https://cognito-idp.eu-west-1.amazonaws.com/" in message
    assert "\n" not in message
    assert PASSWORD not in message


@respx.mock(assert_all_mocked=True)
async def test_a_lockout_on_refresh_does_not_fall_back_to_the_password(
    respx_mock: respx.MockRouter,
) -> None:
    """A refresh answered with a lockout raises TooManyAttempts without trying the
    password too (that attempt would count against the account)."""
    clock = FakeClock()
    answers = iter([
        httpx.Response(200, json=_signed_in(clock.time())),
        _refusal("TooManyRequestsException", "Too many requests"),
    ])  # fmt: skip
    cognito = respx_mock.post(COGNITO).mock(side_effect=lambda _: next(answers))
    respx_mock.get(f"{BASE}/v3/partners/4242/sites").respond(json={"statusCode": 200, "sites": []})
    async with LocusClient(auth=_grant(), clock=clock.monotonic, wall=clock.time) as client:
        await client.partners.sites()
        clock.advance(3590)
        with pytest.raises(TooManyAttempts):
            await client.partners.sites()
    assert cognito.call_count == 2


@respx.mock(assert_all_mocked=True)
async def test_a_failing_sign_in_service_is_retried_like_any_server(
    respx_mock: respx.MockRouter,
) -> None:
    """Cognito's InternalErrorException (500) is a server failure: retried with backoff
    (on the injected sleep), then the sign-in succeeds."""
    clock = FakeClock()
    answers = iter([
        _refusal("InternalErrorException", "internal error", status=500),
        httpx.Response(200, json=_signed_in(clock.time())),
    ])  # fmt: skip
    cognito = respx_mock.post(COGNITO).mock(side_effect=lambda _: next(answers))
    async with LocusClient(
        auth=_grant(), clock=clock.monotonic, wall=clock.time, sleep=clock.sleep
    ) as client:
        assert await client.authenticate() == "cognito"
        assert client.stats.retries == 1
    assert cognito.call_count == 2


@respx.mock(assert_all_mocked=True)
async def test_httpx_auth_sends_the_sign_in_to_cognito(respx_mock: respx.MockRouter) -> None:
    """On the user's own httpx client, the sign-in goes to Cognito's host, not the API's."""
    clock = FakeClock()
    cognito = respx_mock.post(COGNITO).respond(json=_signed_in(clock.time()))
    api = respx_mock.get(f"{BASE}/v3/partners/4242/sites").respond(json={"sites": []})
    async with httpx.AsyncClient(auth=HttpxAuth(_grant()), base_url=BASE) as http:
        assert (await http.get("/v3/partners/4242/sites")).status_code == 200
    assert cognito.call_count == 1
    assert api.calls.last.request.headers["Authorization"].startswith("Bearer ey")


async def test_no_secret_in_debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    """At DEBUG, a sign-in and an API call log neither the password nor a token."""
    clock = FakeClock()
    answer = _signed_in(clock.time())
    with respx.mock(assert_all_mocked=True) as mock:
        mock.post(COGNITO).respond(json=answer)
        mock.get(f"{BASE}/v3/partners/4242/sites").respond(json={"statusCode": 200, "sites": []})
        with caplog.at_level(logging.DEBUG):
            async with LocusClient(auth=_grant(), clock=clock.monotonic, wall=clock.time) as c:
                await c.partners.sites()
    result = answer["AuthenticationResult"]
    assert isinstance(result, dict)
    assert "cognito-idp.eu-west-1.amazonaws.com" in caplog.text
    for secret in (PASSWORD, result["IdToken"], result["AccessToken"], result["RefreshToken"]):
        assert str(secret) not in caplog.text


def test_from_env_builds_the_cognito_sign_in() -> None:
    """LOCUS_AUTH=cognito with its variables gives a CognitoPasswordGrant; what is missing
    or contradictory is named in one line."""
    env = {
        "LOCUS_AUTH": "cognito",
        "LOCUS_COGNITO_CLIENT_ID": APP,
        "LOCUS_COGNITO_REGION": "eu-west-1",
        "LOCUS_USERNAME": "ops@example.com",
        "LOCUS_PASSWORD": PASSWORD,
    }
    grant = auth_from_env(env)
    assert isinstance(grant, CognitoPasswordGrant)
    assert (grant.endpoint, grant.client_id, grant.username) == (
        "https://cognito-idp.eu-west-1.amazonaws.com", APP, "ops@example.com"
    )  # fmt: skip
    local = auth_from_env(
        {**env, "LOCUS_COGNITO_REGION": "", "LOCUS_COGNITO_ENDPOINT": "http://127.0.0.1:5000/"}
    )
    assert isinstance(local, CognitoPasswordGrant)
    assert local.endpoint == "http://127.0.0.1:5000"
    with pytest.raises(
        UsageError, match=r"^LOCUS_AUTH=cognito needs LOCUS_COGNITO_CLIENT_ID, LOCUS_PASSWORD$"
    ):
        auth_from_env({**env, "LOCUS_COGNITO_CLIENT_ID": "", "LOCUS_PASSWORD": ""})
    with pytest.raises(UsageError, match=r"LOCUS_COGNITO_REGION \(or LOCUS_COGNITO_ENDPOINT\)"):
        auth_from_env({**env, "LOCUS_COGNITO_REGION": ""})
    with pytest.raises(UsageError, match="not both"):
        auth_from_env({**env, "LOCUS_COGNITO_ENDPOINT": "https://idp.example.com"})
    with pytest.raises(UsageError, match="'mars-1' is not an AWS region"):
        auth_from_env({**env, "LOCUS_COGNITO_REGION": "mars-1"})
    with pytest.raises(UsageError, match="plain http to a non-loopback host"):
        auth_from_env(
            {**env, "LOCUS_COGNITO_REGION": "", "LOCUS_COGNITO_ENDPOINT": "http://idp.example.com"}
        )
    with pytest.raises(UsageError, match=r"LOCUS_AUTH='saml' is not one of oauth, cognito"):
        auth_from_env({**env, "LOCUS_AUTH": "saml"})
