"""Pure core: query encoding, base URLs, the status table, Retry-After, retry decisions."""

from __future__ import annotations

import email.utils

import orjson
import pytest

from locus_async import errors
from locus_async._core.http import Request, Response, check_base_url, encode_query, redact
from locus_async._core.retrying import backoff, is_retryable, rate_limit_pause
from locus_async._core.status import error_for_status, parse_retry_after
from locus_async.locus._core.decipher import decipher_locus


def test_percent_wildcard_is_sent_as_25() -> None:
    """The documented % wildcard reaches the server URL-encoded as %25."""
    assert encode_query([("nodeId", "OB.%")]) == "nodeId=OB.%25"


def test_query_keeps_reference_look_and_escapes_the_rest() -> None:
    """Commas, colons and zone slashes stay readable; spaces are %20, never +."""
    query = encode_query(
        [
            ("fields", "W_avg,Wh_sum"),
            ("start", "2014-01-01T00:00:00"),
            ("tz", "US/Pacific"),
            ("alertType", "Device Fault"),
            ("notes", "a+b&c=d#e"),
        ]
    )
    assert query == (
        "fields=W_avg,Wh_sum&start=2014-01-01T00:00:00&tz=US/Pacific"
        "&alertType=Device%20Fault&notes=a%2Bb%26c%3Dd%23e"
    )


def test_request_target_and_label() -> None:
    """The label names method and path only; the target adds the encoded query."""
    request = Request("GET", "/v3/partners/1/components", (("nodeId", "X.%"),))
    assert request.target == "/v3/partners/1/components?nodeId=X.%25"
    assert request.label == "GET /v3/partners/1/components"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.locusenergy.com", "https://api.locusenergy.com"),
        ("https://api.locusenergy.com/", "https://api.locusenergy.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost:1", "http://localhost:1"),
        ("http://[::1]:9000/prefix/", "http://[::1]:9000/prefix"),
    ],
)
def test_base_url_accepted(url: str, expected: str) -> None:
    """https anywhere and http on loopback are accepted, trailing slash removed."""
    assert check_base_url(url) == expected


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("api.locusenergy.com", "scheme"),
        ("ftp://api.locusenergy.com", "scheme"),
        ("https://", "no host"),
        ("http://api.locusenergy.com", "in clear"),
        ("https://x.example/?a=1", "query"),
        ("", "non-empty"),
    ],
)
def test_base_url_refused(url: str, words: str) -> None:
    """Missing scheme or host, plain http to a remote host, queries: UsageError naming it."""
    with pytest.raises(errors.UsageError, match=words):
        check_base_url(url)


def test_plain_http_allowed_when_asked() -> None:
    """allow_insecure_http opts in to http:// for remote hosts."""
    assert (
        check_base_url("http://proxy.internal", allow_insecure_http=True) == "http://proxy.internal"
    )


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.BadRequest),
        (401, errors.AuthenticationError),
        (403, errors.PermissionDenied),
        (404, errors.NotFound),
        (422, errors.ValidationFailed),
        (429, errors.RateLimited),
        (500, errors.ServerError),
        (502, errors.ServerError),
        (503, errors.ServerError),
        (418, errors.APIError),
    ],
)
def test_status_table(status: int, cls: type[errors.APIError]) -> None:
    """Each status maps to exactly its documented class and keeps status_code."""
    exc = error_for_status(status, "boom", request="GET /v3/x")
    assert type(exc) is cls
    assert exc.status_code == status
    assert exc.message == "boom"
    assert str(exc) == f"HTTP {status}: boom (GET /v3/x)"


def _response(status: int, body: bytes, headers: dict[str, str] | None = None) -> Response:
    return Response(status, headers or {}, body, Request("GET", "/v3/sites/1"))


def test_decipher_reads_locus_error_body() -> None:
    """The server's message becomes the exception's message."""
    body = orjson.dumps({"statusCode": 404, "message": "Site 1 not found"})
    with pytest.raises(errors.NotFound) as caught:
        decipher_locus(_response(404, body), now=0)
    assert caught.value.message == "Site 1 not found"
    assert caught.value.status_code == 404


def test_decipher_documented_429_without_retry_after() -> None:
    """The documented 429 body gives RateLimited with retry_after None."""
    body = orjson.dumps({"message": "Too many requests", "statusCode": 429})
    with pytest.raises(errors.RateLimited) as caught:
        decipher_locus(_response(429, body), now=0)
    assert caught.value.retry_after is None
    assert caught.value.message == "Too many requests"


def test_decipher_html_error_page_is_server_error() -> None:
    """An HTML 502 page still maps to ServerError with a reason phrase."""
    with pytest.raises(errors.ServerError) as caught:
        decipher_locus(_response(502, b"<html><title>502 Bad Gateway</title></html>"), now=0)
    assert caught.value.message == "Bad Gateway"


def test_decipher_success_returns_none() -> None:
    """A 2xx response is not an error: decipher returns None."""
    assert decipher_locus(_response(200, b"{}"), now=0) is None


def test_decipher_redacts_echoed_secrets() -> None:
    """A server echoing a secret in its message never puts it into the exception."""
    body = orjson.dumps({"message": "bad password hunter22 for user"})
    with pytest.raises(errors.AuthenticationError) as caught:
        decipher_locus(_response(401, body), now=0, secrets=["hunter22"])
    assert "hunter22" not in str(caught.value)
    assert "***" in caught.value.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [("7", 7.0), ("0.5", 0.5), ("-3", 0.0), (None, None), ("soon", None), ("nan", None)],
)
def test_retry_after_seconds(value: str | None, expected: float | None) -> None:
    """Delta-seconds Retry-After values; garbage gives None, negatives clamp to 0."""
    assert parse_retry_after(value, now=1000.0) == expected


def test_retry_after_http_date() -> None:
    """An HTTP-date Retry-After is measured from ``now``."""
    header = email.utils.formatdate(1_000_030, usegmt=True)
    assert parse_retry_after(header, now=1_000_000.0) == pytest.approx(30.0)


def test_redact_longest_first() -> None:
    """Overlapping secrets are all removed; fragments under 4 characters are left alone."""
    assert redact("tok=abcdef123 id=abcd x", ["abcd", "abcdef123", "x"]) == "tok=*** id=*** x"


@pytest.mark.parametrize(
    ("exc", "retry_safe", "sent", "expected"),
    [
        (errors.RateLimited("x"), False, True, True),
        (errors.ServerError("x", status_code=503), True, True, True),
        (errors.ServerError("x", status_code=503), False, True, False),
        (errors.ServerError("x", status_code=503), False, False, True),
        (errors.TransportError("x"), True, True, True),
        (errors.TransportError("x"), False, True, False),
        (errors.TransportError("x", request_sent=False), False, True, True),
        (errors.ResponseDecodeError("x", garbled=True), True, True, True),
        (errors.ResponseDecodeError("x", garbled=True), False, True, False),
        (errors.ResponseDecodeError("x"), True, True, False),
        (errors.BadRequest("x", status_code=400), True, True, False),
        (errors.PermissionDenied("x", status_code=403), True, True, False),
        (errors.NotFound("x", status_code=404), True, True, False),
        (errors.AuthenticationError("x", status_code=401), True, True, False),
        (errors.UsageError("x"), True, True, False),
        (ValueError("x"), True, True, False),
    ],
)
def test_retry_classification(
    exc: BaseException, retry_safe: bool, sent: bool, expected: bool
) -> None:
    """Only what is safe is retried: 429 always, 5xx/transport/garbled bodies for safe
    requests; a well-formed body off the schema never (it would be the same again)."""
    assert is_retryable(exc, retry_safe=retry_safe, sent=sent) is expected


def test_backoff_grows_and_caps() -> None:
    """Equal jitter: within [ceiling/2, ceiling], ceiling doubling up to the cap."""
    assert backoff(1, initial=0.5, maximum=30, rand=0.0) == 0.25
    assert backoff(1, initial=0.5, maximum=30, rand=0.999999) == pytest.approx(0.5, abs=1e-6)
    assert backoff(4, initial=0.5, maximum=30, rand=0.0) == 2.0
    assert backoff(20, initial=0.5, maximum=30, rand=1.0) == 30.0


def test_rate_limit_pause_prefers_retry_after() -> None:
    """Retry-After wins (capped); otherwise the streak drives the backoff."""
    assert rate_limit_pause(1, 5.0, initial=0.25, maximum=30, rand=0.5) == 5.0
    assert rate_limit_pause(1, 500.0, initial=0.25, maximum=30, rand=0.5) == 30.0
    assert rate_limit_pause(3, None, initial=0.25, maximum=30, rand=0.0) == 0.5
