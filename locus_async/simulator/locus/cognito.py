"""Cognito IdTokens at the simulated Locus API, checked as strictly as the real one.

Owns: ``CognitoTrust`` (which pool's tokens are accepted: the issuer, the app client, the
pool's signing keys as a JWKS) and checking one token: an RS256 signature by a key of the
JWKS, the issuer, the audience, ``token_use`` ``id`` (an AccessToken is refused, as the API
refuses it), and a ``custom:partnerId`` that names the partner. Expiry is checked by the
caller against the simulator's own clock. Must never: accept a token it could not verify.

Needs PyJWT (``pip install 'locus-async[simulator]'``), imported only when a trust is made.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping
from typing import Any, Final

import attrs
import orjson

from locus_async._core.checks import check_whole
from locus_async._core.http import check_base_url
from locus_async.errors import InvalidArgumentType, UsageError
from locus_async.locus._core.cognito import PARTNER_CLAIM, partner_of

__all__ = ["CognitoTrust", "Verdict"]

_ALGORITHMS: Final = ["RS256"]


def _jwt() -> Any:
    try:
        import jwt
    except ImportError:
        raise UsageError(
            "checking Cognito tokens needs PyJWT: pip install 'locus-async[simulator]'"
        ) from None
    return jwt


@attrs.frozen
class Verdict:
    """One token's check: its claims when accepted, else why it was refused."""

    claims: Mapping[str, Any] | None
    reason: str = ""


class CognitoTrust:
    """The Cognito user pool whose IdTokens the simulator accepts.

    ``issuer``: the pool's issuer (``https://cognito-idp.<region>.amazonaws.com/<pool id>``);
    ``client_id``: the app client the tokens must be for; ``jwks``: the pool's JSON Web Key
    Set (a mapping), or ``jwks_url`` to read it from once, now (default: the issuer's
    ``/.well-known/jwks.json``); ``allowance``: requests one user may have in progress
    (None: the simulator's default).
    """

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        jwks: Mapping[str, Any] | None = None,
        jwks_url: str | None = None,
        allowance: int | None = None,
    ) -> None:
        jwt = _jwt()
        self.issuer = check_base_url(issuer, name="Cognito issuer")
        if not isinstance(client_id, str) or not client_id:
            raise UsageError("client_id must be the pool's app client id")
        self.client_id = client_id
        self.allowance = None if allowance is None else check_whole(allowance, "allowance")
        if jwks is None:
            url = check_base_url(
                jwks_url or f"{self.issuer}/.well-known/jwks.json", name="jwks_url"
            )
            jwks = _fetch(url)
        if not isinstance(jwks, Mapping):
            raise InvalidArgumentType(f"jwks must be a mapping, not {type(jwks).__name__}")
        try:
            keys = jwt.PyJWKSet.from_dict(dict(jwks))
        except jwt.PyJWTError as exc:
            raise UsageError(f"jwks holds no usable key ({exc})") from None
        self._keys: dict[str, Any] = {key.key_id: key for key in keys.keys}

    def __repr__(self) -> str:
        return f"CognitoTrust(issuer={self.issuer!r}, client_id={self.client_id!r})"

    def verify(self, token: str) -> Verdict:
        """Check ``token``'s signature and claims (not its expiry: see the module)."""
        jwt = _jwt()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return Verdict(None, "Authentication failed")
        key = self._keys.get(header.get("kid"))
        if key is None:
            return Verdict(None, "Token signed by an unknown key")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=_ALGORITHMS,
                issuer=self.issuer,
                options={"verify_exp": False, "verify_aud": False, "require": ["exp", "iss"]},
            )
        except jwt.InvalidSignatureError:
            return Verdict(None, "Token signature is not valid")
        except jwt.PyJWTError:
            return Verdict(None, "Token is not from the trusted user pool")
        if claims.get("token_use") != "id":
            return Verdict(None, "Access tokens are not accepted: send the IdToken")
        if claims.get("aud") != self.client_id:
            return Verdict(None, "Token is for another app client")
        if partner_of(claims) is None:
            return Verdict(None, f"Token has no {PARTNER_CLAIM}")
        return Verdict(claims)


def _fetch(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - checked above
            return orjson.loads(answer.read())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise UsageError(f"could not read the JWKS at {url} ({exc})") from None
