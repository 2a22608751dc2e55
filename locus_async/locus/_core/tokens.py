"""OAuth2 token decisions for Locus: grant forms, expiry on a monotonic clock.

Owns: building the token request for each grant, reading the token response, and deciding
when a token must be refreshed. Must never: do I/O or read a clock; times are arguments.

Expiry: the response's ``expires_in`` counts from ``issued_at`` (server unix seconds,
truncated). We measure the token's age as ``wall_at_send - issued_at`` (never negative, and
ignored when it exceeds the lifetime, which only clock skew can cause), then place the
deadline on the monotonic clock from the moment the grant was *sent*, which is never later
than the moment it was issued. Both errors point the safe way: we refresh a little early,
never late. The refresh margin is a quarter of the lifetime, at most 60 s: 60 s for the
documented one-hour tokens, 0.5 s for a two-second token.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlencode

import attrs
import cattrs

from locus_async._core.converter import decode_json, structure
from locus_async._core.http import Request
from locus_async.locus.models import Token

__all__ = [
    "TOKEN_PATH",
    "TokenState",
    "client_credentials_form",
    "parse_token",
    "password_form",
    "refresh_form",
    "refresh_margin",
    "token_request",
    "token_state",
]

#: The token endpoint lives at the host root, not under /v3.
TOKEN_PATH: Final = "/oauth/token"  # noqa: S105 - a path, not a password

_MAX_MARGIN: Final = 60.0

Form = tuple[tuple[str, str], ...]


def password_form(client_id: str, client_secret: str, username: str, password: str) -> Form:
    return (
        ("grant_type", "password"),
        ("client_id", client_id),
        ("client_secret", client_secret),
        ("username", username),
        ("password", password),
    )


def refresh_form(client_id: str, client_secret: str, refresh_token: str) -> Form:
    return (
        ("grant_type", "refresh_token"),
        ("client_id", client_id),
        ("client_secret", client_secret),
        ("refresh_token", refresh_token),
    )


def client_credentials_form(client_id: str, client_secret: str) -> Form:
    return (
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", client_secret),
    )


def token_request(form: Form) -> Request:
    """``POST /oauth/token`` with a form body; retry-safe, unauthenticated, sensitive."""
    return Request(
        method="POST",
        path=TOKEN_PATH,
        headers=(("Content-Type", "application/x-www-form-urlencoded"),),
        content=urlencode(form).encode("ascii"),
        retry_safe=True,
        authenticate=False,
        sensitive=True,
    )


def parse_token(content: bytes, converter: cattrs.Converter) -> Token:
    """The Token in a token-endpoint body (never quoted in errors: it holds secrets)."""
    body = decode_json(content, request=f"POST {TOKEN_PATH}", quote_body=False)
    return structure(converter, body, Token, request=f"POST {TOKEN_PATH}")


def refresh_margin(lifetime: float) -> float:
    """How long before expiry a token is replaced: a quarter of its life, at most 60 s."""
    return min(_MAX_MARGIN, max(0.0, lifetime) / 4)


@attrs.frozen
class TokenState:
    """A token with its deadlines on the monotonic clock."""

    token: Token
    refresh_at: float
    expires_at: float

    def needs_refresh(self, now: float) -> bool:
        """True once the token is inside its refresh margin (or past expiry)."""
        return now >= self.refresh_at

    @property
    def refresh_token(self) -> str | None:
        return self.token.refresh_token


def token_state(token: Token, *, sent_monotonic: float, sent_wall: float) -> TokenState:
    """Deadlines for ``token``, whose grant was sent at the given monotonic and wall times."""
    lifetime = float(token.expires_in)
    age = sent_wall - token.issued_at.timestamp()
    if age < 0 or age >= lifetime:
        age = 0.0  # issued "in the future" or already dead by our clock: only skew does that
    remaining = max(0.0, lifetime - age)
    expires_at = sent_monotonic + remaining
    return TokenState(
        token=token,
        refresh_at=expires_at - refresh_margin(lifetime),
        expires_at=expires_at,
    )
