"""Our own request and response terms, so nothing above the transport speaks httpx.

Owns: the ``Request``/``Response`` value types, query-string encoding, base-URL checks and
secret redaction. Must never: do I/O, read a clock, or import httpx.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Final
from urllib.parse import quote, urlsplit, urlunsplit

import attrs

from locus_async.errors import UsageError

__all__ = [
    "MAX_URL_LENGTH",
    "Request",
    "Response",
    "api_root",
    "check_base_url",
    "check_port",
    "encode_query",
    "is_loopback",
    "redact",
]

#: Longest path+query we will send; longer ones are refused before any I/O.
MAX_URL_LENGTH: Final = 8192

# Characters left as they are in query values: readable times (``12:00:00``), comma lists
# (``W_avg,Wh_sum``) and zone names (``US/Pacific``) keep the reference's look; everything
# else, ``%`` first of all (the documented wildcard must arrive as ``%25``), is escaped.
_QUERY_SAFE: Final = ",:/"


def encode_query(params: Iterable[tuple[str, str]]) -> str:
    """Percent-encode ``params`` in order: space is ``%20``, ``%`` is ``%25``, never ``+``."""
    return "&".join(
        f"{quote(name, safe='')}={quote(value, safe=_QUERY_SAFE)}" for name, value in params
    )


@attrs.frozen
class Request:
    """One HTTP exchange to make, relative to the client's base URL.

    ``retry_safe``: may be sent again after it possibly reached the server (GETs, token
    grants). A request that is not retry-safe is only re-sent when the server certainly did
    not act on it (429, or a connection that never opened).
    ``authenticate``: needs the provider's credentials (the token endpoint does not).
    ``sensitive``: request or response carries secrets (token grants); never logged or quoted.
    ``server_wait``: seconds the server may legitimately hold the answer (long polls such as
    SolarNetwork's ``resultMaxWait``); added to the read and whole-exchange timeouts.
    ``origin``: ``scheme://host[:port]`` of another server (a sign-in service such as
    Cognito) instead of the client's base URL; checked with ``check_base_url`` by whoever
    builds it. It is sent inside the caller's slot like any grant, and is not counted by
    the adaptive limiter (only the caller's own requests are).
    """

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    content: bytes = attrs.field(default=b"", repr=False)
    retry_safe: bool = True
    authenticate: bool = True
    sensitive: bool = False
    server_wait: float = 0.0
    origin: str | None = None

    @property
    def target(self) -> str:
        """Path plus encoded query, exactly as it goes on the wire."""
        query = encode_query(self.params)
        return f"{self.path}?{query}" if query else self.path

    @property
    def label(self) -> str:
        """``METHOD /path`` for messages and logs (no query, no headers, no body); a
        request to another server names its host too."""
        if self.origin is not None:
            return f"{self.method} {self.origin}{self.path}"
        return f"{self.method} {self.path}"

    def with_headers(self, *extra: tuple[str, str]) -> Request:
        """A copy with ``extra`` headers appended."""
        return attrs.evolve(self, headers=self.headers + extra)


@attrs.frozen
class Response:
    """A complete HTTP response: status, lower-cased headers, the decoded body bytes."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes = attrs.field(repr=False)
    request: Request

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def is_loopback(host: str) -> bool:
    """True only for a literal loopback address (127.0.0.0/8, ::1) or the exact name
    ``localhost``: any other name would go through a resolver we do not control."""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        return address == ipaddress.IPv6Address("::1")
    return address.is_loopback


_URL_UNSAFE: Final = frozenset(' \t\r\n\x00<>"{}|\\^`')


def check_port(value: object, name: str = "port") -> int:
    """A TCP port number, 1 to 65535."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{name} must be a whole number from 1 to 65535, not {value!r}")
    if not 1 <= value <= 65535:
        raise UsageError(f"{name} must be from 1 to 65535, not {value}")
    return value


def check_base_url(url: str, *, allow_insecure_http: bool = False, name: str = "base_url") -> str:
    """Validate a base URL and return it without a trailing slash.

    Needs an http(s) scheme, a host and (if given) a port from 1 to 65535. ``http://`` is
    accepted only for loopback hosts (``is_loopback``) unless ``allow_insecure_http`` is set,
    because credentials would travel in clear. Every problem is one ``UsageError`` line.
    """
    if not isinstance(url, str) or not url:
        raise UsageError(f"{name} must be a non-empty string such as 'https://api.locusenergy.com'")
    shown = url if len(url) <= 200 else url[:200] + "..."
    if any(c in _URL_UNSAFE or ord(c) < 32 or ord(c) == 127 for c in url):
        raise UsageError(f"{name} {shown!r} contains a space or a character not allowed in a URL")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"{name} {shown!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise UsageError(
            f"{name} {shown!r} needs an http:// or https:// scheme "
            "(for example 'https://api.locusenergy.com')"
        )
    if not host:
        raise UsageError(f"{name} {shown!r} has no host")
    if port is not None and port == 0:
        raise UsageError(f"{name} {shown!r}: the port must be from 1 to 65535")
    if parts.netloc.endswith(":"):
        raise UsageError(f"{name} {shown!r} has an empty port")
    if parts.username is not None or parts.password is not None:
        raise UsageError(f"{name} must not carry a user name or password; use the credentials")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise UsageError(f"{name} {shown!r} must not carry a query or fragment")
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback(host):
        raise UsageError(
            f"{name} {shown!r} uses plain http to a non-loopback host; credentials would travel "
            "in clear. Use https, or pass allow_insecure_http=True if you really mean it"
        )
    return url.rstrip("/")


def api_root(url: str, api_paths: Iterable[str], *, allow_insecure_http: bool) -> str:
    """A checked base URL without a trailing API path the user may have included (the
    first of ``api_paths`` it ends with): clients add their own path to every request."""
    url = check_base_url(url, allow_insecure_http=allow_insecure_http)
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    for suffix in api_paths:
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret (longest first) with ``***``."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
