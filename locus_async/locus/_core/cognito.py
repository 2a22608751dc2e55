"""AWS Cognito sign-in for Locus (SolarNOC / AlsoEnergy accounts), decided without I/O.

Owns: the ``InitiateAuth`` requests (``USER_PASSWORD_AUTH``, ``REFRESH_TOKEN_AUTH``) in
Cognito's JSON protocol, reading their answers into a ``Token`` whose bearer is the
**IdToken** (the API refuses the AccessToken), each Cognito refusal as its own typed error,
and reading a JWT's claims (the partner id is ``custom:partnerId``). Must never: do I/O,
read a clock, verify a signature (that is the API's job; the token came over TLS from
Cognito itself), or put a password or token in a message.

A public app client has no secret, so no AWS SDK and no request signing are needed.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from locus_async._core.http import Request, Response, check_base_url, redact
from locus_async.errors import (
    ChallengeRequired,
    PasswordResetRequired,
    ResponseDecodeError,
    ServerError,
    SignInError,
    TooManyAttempts,
    UnknownUser,
    UsageError,
    UserNotConfirmed,
    WrongCredentials,
)
from locus_async.locus.models import Token

__all__ = [
    "PARTNER_CLAIM",
    "claims_of",
    "cognito_endpoint",
    "decipher_cognito",
    "initiate_auth",
    "parse_cognito_token",
    "partner_of",
]

#: The IdToken claim that holds the Locus partner id.
PARTNER_CLAIM: Final = "custom:partnerId"

_TARGET: Final = "AWSCognitoIdentityProviderService.InitiateAuth"
_REGION: Final = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")


def cognito_endpoint(*, region: str | None, endpoint: str | None) -> str:
    """The Cognito service origin: ``https://cognito-idp.<region>.amazonaws.com``, or an
    ``endpoint`` (an emulator, a VPC endpoint) checked like a base URL. Exactly one."""
    if (region is None) == (endpoint is None):
        raise UsageError("give the Cognito region (such as 'us-east-1') or an endpoint, not both")
    if endpoint is not None:
        return check_base_url(endpoint, name="Cognito endpoint")
    if not isinstance(region, str) or not _REGION.fullmatch(region):
        raise UsageError(f"Cognito region {region!r} is not an AWS region such as 'us-east-1'")
    return f"https://cognito-idp.{region}.amazonaws.com"


def initiate_auth(origin: str, client_id: str, flow: str, parameters: Mapping[str, str]) -> Request:
    """``InitiateAuth`` with ``flow`` and its ``parameters``: retry-safe (a sign-in changes
    nothing on the server), unauthenticated (no bearer goes to Cognito), sensitive."""
    body = {"AuthFlow": flow, "ClientId": client_id, "AuthParameters": dict(parameters)}
    return Request(
        method="POST",
        path="/",
        headers=(
            ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Target", _TARGET),
        ),
        content=orjson.dumps(body),
        retry_safe=True,
        authenticate=False,
        sensitive=True,
        origin=origin,
    )


def _json_object(content: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def decipher_cognito(response: Response, *, secrets: Iterable[str] = (), refresh: bool) -> None:
    """Raise the typed error for a Cognito refusal; return for a 2xx. ``refresh``: the
    request was a ``REFRESH_TOKEN_AUTH`` (its refusal is the refresh token's, not the
    password's)."""
    status = response.status_code
    if 200 <= status < 300:
        return
    label = response.request.label
    body = _json_object(response.content) or {}
    kind = str(body.get("__type") or response.header("x-amzn-errortype") or "").split("#")[-1]
    kind = kind.split(":")[0]
    message = redact(str(body.get("message") or body.get("Message") or "").strip(), secrets)
    message = " ".join(message.split())[:300]
    said = f" (Cognito: {message})" if message else ""
    if status >= 500 or kind in ("InternalErrorException", "ServiceUnavailable"):
        raise ServerError(
            f"the sign-in service failed{said}", status_code=status, request=label, code=kind
        )
    error: type[SignInError]
    if kind == "NotAuthorizedException" and "attempts exceeded" in message.lower():
        error, text = TooManyAttempts, "too many failed sign-ins: the account is locked for now"
    elif kind == "NotAuthorizedException" and refresh:
        error, text = SignInError, "the refresh token was refused"
    elif kind == "NotAuthorizedException" and "disabled" in message.lower():
        error, text = SignInError, "the user is disabled"
    elif kind == "NotAuthorizedException":
        error, text = WrongCredentials, "wrong username or password"
    elif kind == "UserNotFoundException":
        error = UnknownUser
        text = "no such user: sign in with the username (often the e-mail), not the display name"
    elif kind == "UserNotConfirmedException":
        error, text = UserNotConfirmed, "the user has not been confirmed yet"
    elif kind == "PasswordResetRequiredException":
        error, text = PasswordResetRequired, "the password must be reset before signing in"
    elif kind in (
        "TooManyRequestsException",
        "TooManyFailedAttemptsException",
        "LimitExceededException",
    ):
        error, text = TooManyAttempts, "too many sign-in attempts: wait before trying again"
    elif kind == "ResourceNotFoundException":
        error = SignInError
        text = "the app client id is not known in this region (check the client id and region)"
    else:
        error, text = SignInError, "the sign-in was refused"
    raise error(f"{text}{said}", status_code=status, request=label, code=kind or None)


def parse_cognito_token(response: Response, *, sent_wall: float) -> Token:
    """The Token of an ``InitiateAuth`` answer: the IdToken as the bearer, its refresh token
    (a refresh answer has none), and the shorter of the answer's ``ExpiresIn`` and the
    IdToken's own lifetime. A challenge instead of tokens raises ``ChallengeRequired``."""
    label = response.request.label
    body = _json_object(response.content)
    if body is None:
        raise ResponseDecodeError(
            "the sign-in answer is not a JSON object", request=label, garbled=True
        )
    result = body.get("AuthenticationResult")
    if not isinstance(result, dict):
        challenge = body.get("ChallengeName")
        if isinstance(challenge, str) and challenge:
            raise ChallengeRequired(
                f"the sign-in asks for {challenge}, which a program cannot answer: complete "
                "it once in the web sign-in, or use an account without it",
                challenge=challenge,
                status_code=response.status_code,
                request=label,
            )
        raise ResponseDecodeError("the sign-in answer has no AuthenticationResult", request=label)
    id_token = result.get("IdToken")
    expires_in = result.get("ExpiresIn")
    if not isinstance(id_token, str) or not id_token:
        raise ResponseDecodeError(
            "the sign-in answer has no IdToken", path="$.AuthenticationResult", request=label
        )
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in <= 0:
        raise ResponseDecodeError(
            "the sign-in answer has no positive ExpiresIn",
            path="$.AuthenticationResult.ExpiresIn",
            request=label,
        )
    claims = claims_of(id_token)
    issued = _number(claims.get("iat"))
    expires = _number(claims.get("exp"))
    lifetime = expires_in
    if issued is not None and expires is not None and expires > issued:
        lifetime = min(lifetime, int(expires - issued))
    refresh = result.get("RefreshToken")
    return Token(
        access_token=id_token,
        issued_at=datetime.fromtimestamp(issued if issued is not None else sent_wall, UTC),
        expires_in=lifetime,
        token_type="Bearer",  # noqa: S106 - the scheme, not a secret
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
    )


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def claims_of(jwt: str) -> dict[str, Any]:
    """The claims of a JWT, read without checking its signature; ``{}`` if it is not one."""
    parts = jwt.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        value = orjson.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def partner_of(claims: Mapping[str, Any]) -> int | None:
    """The Locus partner id in ``claims`` (``custom:partnerId``, a string in Cognito)."""
    value = claims.get(PARTNER_CLAIM)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
        return number if number > 0 else None
    return None
