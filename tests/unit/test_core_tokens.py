"""Pure core: token grant forms and expiry decisions on a monotonic clock."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl

import pytest

from locus_async._core.converter import make_converter
from locus_async.errors import ResponseDecodeError
from locus_async.locus._core.tokens import (
    TOKEN_PATH,
    parse_token,
    password_form,
    refresh_form,
    refresh_margin,
    token_request,
    token_state,
)
from locus_async.locus.models import Token


def _token(issued: int, lifetime: int, refresh: str | None = "r") -> Token:
    return Token(
        access_token="a",
        issued_at=datetime.fromtimestamp(issued, UTC),
        expires_in=lifetime,
        refresh_token=refresh,
    )


def test_token_request_is_a_form_post_at_the_root() -> None:
    """POST /oauth/token (not under /v3), form-encoded, unauthenticated, retry-safe."""
    request = token_request(password_form("cid", "sec ret", "me@x", "p&w"))
    assert request.method == "POST"
    assert request.path == TOKEN_PATH == "/oauth/token"
    assert ("Content-Type", "application/x-www-form-urlencoded") in request.headers
    assert dict(parse_qsl(request.content.decode())) == {
        "grant_type": "password",
        "client_id": "cid",
        "client_secret": "sec ret",
        "username": "me@x",
        "password": "p&w",
    }
    assert request.authenticate is False
    assert request.retry_safe is True
    assert request.sensitive is True
    assert "sec" not in repr(request)


def test_refresh_form_fields() -> None:
    """The refresh grant sends client credentials and the refresh token."""
    assert dict(refresh_form("c", "s", "rt")) == {
        "grant_type": "refresh_token",
        "client_id": "c",
        "client_secret": "s",
        "refresh_token": "rt",
    }


@pytest.mark.parametrize(
    ("lifetime", "margin"), [(3600, 60.0), (240, 60.0), (100, 25.0), (2, 0.5), (0, 0.0)]
)
def test_refresh_margin_scales_for_short_tokens(lifetime: float, margin: float) -> None:
    """A quarter of the lifetime, at most a minute: works for 1-hour and 2-second tokens."""
    assert refresh_margin(lifetime) == margin


def test_deadline_counts_from_issued_at() -> None:
    """A token already 100 s old when the grant was sent expires 100 s earlier."""
    state = token_state(_token(1000, 3600), sent_monotonic=50.0, sent_wall=1100.0)
    assert state.expires_at == 50.0 + 3500
    assert state.refresh_at == 50.0 + 3500 - 60
    assert not state.needs_refresh(50.0 + 3439)
    assert state.needs_refresh(50.0 + 3440)


def test_truncated_issued_at_makes_us_refresh_early_not_late() -> None:
    """issued_at is whole seconds: a 2 s token sent at .9 counts as 0.9 s old."""
    state = token_state(_token(1000, 2), sent_monotonic=0.0, sent_wall=1000.9)
    assert state.expires_at == pytest.approx(1.1)
    assert state.refresh_at == pytest.approx(0.6)


@pytest.mark.parametrize("sent_wall", [500.0, 99_999.0])
def test_clock_skew_is_ignored(sent_wall: float) -> None:
    """issued_at in our future, or older than the lifetime, is skew: count from sending."""
    state = token_state(_token(1000, 60), sent_monotonic=10.0, sent_wall=sent_wall)
    assert state.expires_at == 70.0
    assert state.refresh_at == 55.0


def test_parse_token_response() -> None:
    """The reference's token body parses; secrets never print."""
    token = parse_token(
        b'{"access_token": "41e818b29780637494d9026760d40b51", "issued_at": 1430347010,'
        b' "token_type": "bearer", "refresh_token": "c27720f61b77245731c2e3ce4647ddad",'
        b' "expires_in": 3600}',
        make_converter(strict=True),
    )
    assert token.expires_in == 3600
    assert token.issued_at == datetime(2015, 4, 29, 22, 36, 50, tzinfo=UTC)
    assert token.refresh_token == "c27720f61b77245731c2e3ce4647ddad"
    assert "41e818b2" not in repr(token)
    assert "c27720f6" not in repr(token)


def test_bad_token_body_never_quotes_it() -> None:
    """A non-JSON token body fails without echoing (it may hold a token)."""
    with pytest.raises(ResponseDecodeError) as caught:
        parse_token(b"access_token=SECRETVALUE&x", make_converter())
    assert "SECRETVALUE" not in str(caught.value)
