"""The one module that sends HTTP with httpx.

Owns: the httpx.AsyncClient, timeouts (connect, read, write, pool and the whole exchange),
bounded request and response sizes, and turning every httpx failure into our error tree.
Must never: retry, sleep, hold a limiter slot, log a header or a body.
Swapping httpx for another HTTP library is a change to this file only.
"""

from __future__ import annotations

import builtins
import math
import os
import ssl
import time
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Generator, Mapping, Sequence
from typing import Any, Final

import anyio
import attrs
import httpx

from locus_async._core.checks import check_whole
from locus_async._core.converter import make_converter
from locus_async._core.http import MAX_URL_LENGTH, Request, Response
from locus_async._version import __version__
from locus_async.errors import (
    CertificateError,
    InvalidArgumentType,
    RequestTimeout,
    ResponseDecodeError,
    TransportError,
    UsageError,
)

#: What ``transport=`` takes: an httpx transport (the simulators' in-process one, mocks...).
AsyncTransport = httpx.AsyncBaseTransport

__all__ = [
    "DEFAULT_MAX_REQUEST_BYTES",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "AsyncTransport",
    "HttpxAuth",
    "Timeouts",
    "Transport",
    "asgi_transport",
    "timeouts_of",
]

#: Largest decoded (decompressed) response body accepted: bounds memory and gzip bombs.
DEFAULT_MAX_RESPONSE_BYTES: Final = 256 * 1024 * 1024
#: Largest request body sent.
DEFAULT_MAX_REQUEST_BYTES: Final = 8 * 1024 * 1024


@attrs.frozen
class Timeouts:
    """Seconds allowed for each phase; ``total`` bounds one whole exchange, body included."""

    connect: float = 10.0
    read: float = 60.0
    write: float = 30.0
    pool: float = 30.0
    total: float = 180.0

    def __attrs_post_init__(self) -> None:
        for name in ("connect", "read", "write", "pool", "total"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 < value < math.inf
            ):
                raise UsageError(f"Timeouts.{name} must be a positive number of seconds")


def timeouts_of(value: object) -> Timeouts:
    """``timeout=`` as httpx takes it: seconds for every phase (a number), an
    ``httpx.Timeout`` (its ``None`` phases keep our defaults), or a ``Timeouts``. The whole
    exchange is allowed at least the default ``total`` and at least the longest phase."""
    if isinstance(value, Timeouts):
        return value
    default = Timeouts()
    if isinstance(value, httpx.Timeout):
        phases = {
            name: getattr(value, name) or getattr(default, name)
            for name in ("connect", "read", "write", "pool")
        }
    elif isinstance(value, int | float) and not isinstance(value, bool):
        phases = dict.fromkeys(("connect", "read", "write", "pool"), float(value))
    else:
        raise InvalidArgumentType(
            "timeout must be seconds (a number), an httpx.Timeout or a Timeouts, "
            f"not {type(value).__name__}"
        )
    return Timeouts(**phases, total=max(default.total, *phases.values()))


class HttpxAuth(httpx.Auth):
    """Our credentials on your own ``httpx.AsyncClient``: ``auth=HttpxAuth(provider)``.

    ``provider``: any token provider (``PasswordGrant``, ``ClientCredentialsGrant``,
    ``RefreshTokenGrant``, ``BearerToken``...) with its whole lifecycle: token grants
    before expiry, one grant for many concurrent requests, a new token and one resend
    after a 401, a shared ``RedisTokenStore``. Grants go to ``base_url`` (default: the
    origin of the request being sent). Sends nothing on its own: httpx sends each request
    the flow yields. Async clients only (the providers are async).
    """

    def __init__(self, provider: Any, *, base_url: str | None = None) -> None:
        if not callable(getattr(provider, "auth_flow", None)):
            raise InvalidArgumentType(
                "provider must be a token provider such as PasswordGrant or BearerToken, "
                f"not {type(provider).__name__}"
            )
        self.provider = provider
        self.base_url = base_url.rstrip("/") if base_url is not None else None
        #: Token grants made, by kind (``password``, ``refresh_token``...).
        self.grants: Counter[str] = Counter()
        self.converter = make_converter()

    def __repr__(self) -> str:
        return f"HttpxAuth({self.provider!r})"

    # -- the AuthContext a flow reads ---------------------------------------------------

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def note_grant(self, kind: str) -> None:
        self.grants[kind] += 1

    # -- httpx.Auth ---------------------------------------------------------------------

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise UsageError("HttpxAuth needs an httpx.AsyncClient: the token providers are async")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        origin = self.base_url or f"{request.url.scheme}://{request.url.netloc.decode('ascii')}"
        ours = Request(
            request.method,
            request.url.path,
            tuple(request.url.params.multi_items()),
            tuple(request.headers.items()),
            request.content,
        )
        flow = self.provider.auth_flow(ours, self)
        try:
            outgoing = await flow.__anext__()
            while True:
                if outgoing is ours or outgoing.authenticate:  # the caller's, with credentials
                    for name, value in outgoing.headers:
                        request.headers[name] = value
                    sent = request
                else:  # a token grant
                    sent = httpx.Request(
                        outgoing.method,
                        (outgoing.origin or origin) + outgoing.target,
                        headers=dict(outgoing.headers),
                        content=outgoing.content or None,
                    )
                answer = yield sent
                # A grant's body is the token; the caller's own response is left unread
                # (it may be streamed): its flow looks at the status only.
                body = await answer.aread() if sent is not request else b""
                outgoing = await flow.asend(
                    Response(
                        answer.status_code,
                        {k.lower(): v for k, v in answer.headers.items()},
                        body,
                        outgoing,
                    )
                )
        except StopAsyncIteration:
            pass
        finally:
            with anyio.CancelScope(shield=True):
                await flow.aclose()


def asgi_transport(app: Any) -> httpx.AsyncBaseTransport:
    """An in-process transport that calls an ASGI app (the simulators use it)."""
    return httpx.ASGITransport(app=app)


class Transport:
    """Sends our Requests to ``base_url`` and returns complete, decoded Responses."""

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeouts: Timeouts | None = None,
        verify: ssl.SSLContext | bool = True,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        headers: Mapping[str, str] | None = None,
        max_connections: int = 100,
        http_client: httpx.AsyncClient | None = None,
        event_hooks: Mapping[str, Sequence[Callable[..., Any]]] | None = None,
    ) -> None:
        if http_client is not None:
            if not isinstance(http_client, httpx.AsyncClient):
                raise InvalidArgumentType(
                    f"http_client must be an httpx.AsyncClient, not {type(http_client).__name__}"
                )
            if transport is not None or verify is not True or event_hooks is not None:
                raise UsageError(
                    "give http_client or transport/verify/event_hooks, not both: set those "
                    "on your own httpx.AsyncClient"
                )
        if transport is not None and not isinstance(transport, httpx.AsyncBaseTransport):
            raise InvalidArgumentType(
                f"transport must be an httpx.AsyncBaseTransport, not {type(transport).__name__}"
            )
        if timeouts is not None and not isinstance(timeouts, Timeouts):
            raise InvalidArgumentType(
                f"timeouts must be a Timeouts(...), not {type(timeouts).__name__}"
            )
        self.base_url = base_url
        self.timeouts = timeouts or Timeouts()
        self.max_response_bytes = check_whole(max_response_bytes, "max_response_bytes")
        self.max_request_bytes = check_whole(max_request_bytes, "max_request_bytes")
        max_connections = check_whole(max_connections, "max_connections")
        verify = _check_verify(verify)
        headers = _check_headers(headers)
        try:
            httpx.URL(base_url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise UsageError(f"base_url {base_url!r} is not a valid URL ({exc})") from None
        t = self.timeouts
        default_headers = {
            "User-Agent": f"locus-async/{__version__}",
            "Accept": "application/json",
            "Accept-Encoding": "gzip",
        }
        default_headers.update(headers)
        self._closed = False
        #: A client the user passed in is theirs: its defaults are not ours, so our headers
        #: and timeouts go on every request, and closing us leaves it open.
        self._owned = http_client is None
        self._headers = default_headers
        if http_client is not None:
            self._client = http_client
            return
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(connect=t.connect, read=t.read, write=t.write, pool=t.pool),
            verify=verify,
            headers=default_headers,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=20),
            event_hooks=_check_hooks(event_hooks),
        )

    @property
    def closed(self) -> bool:
        return self._closed or self._client.is_closed

    async def aclose(self, *, injected: bool = False) -> None:
        """Close the pool; an ``http_client`` that was passed in only if ``injected``."""
        self._closed = True
        if self._owned or injected:
            await self._client.aclose()

    def check(self, request: Request) -> None:
        """Refuse, before any I/O, a request that breaks the size bounds."""
        if len(request.target) > MAX_URL_LENGTH:
            raise UsageError(
                f"{request.label}: the URL would be {len(request.target)} characters, over "
                f"the {MAX_URL_LENGTH} limit; ask for fewer fields or ids per call"
            )
        if len(request.content) > self.max_request_bytes:
            raise UsageError(
                f"{request.label}: the body is {len(request.content)} bytes, over the "
                f"{self.max_request_bytes}-byte limit"
            )

    async def send(self, request: Request, timeouts: Timeouts | None = None) -> Response:
        """One exchange: the whole body is read (and decompressed) before returning.
        ``timeouts``: this exchange's own (``with_options``), else the transport's."""
        self.check(request)
        label = request.label
        url = (request.origin or self.base_url) + request.target
        total = (timeouts or self.timeouts).total + request.server_wait
        try:
            with anyio.fail_after(total):
                return await self._exchange(request, url, timeouts)
        except RequestTimeout:
            raise
        except builtins.TimeoutError:
            raise RequestTimeout(
                f"no complete response within {total:g} s", request=label
            ) from None
        except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise RequestTimeout(
                f"could not connect in time ({type(exc).__name__})",
                request=label,
                request_sent=False,
            ) from None
        except httpx.TimeoutException as exc:
            raise RequestTimeout(f"timed out ({type(exc).__name__})", request=label) from None
        except httpx.ConnectError as exc:
            if _certificate_failure(exc):
                raise CertificateError(
                    f"the server's TLS certificate was refused: {_certificate_failure(exc)}",
                    request=label,
                    request_sent=False,
                ) from None
            raise TransportError(
                f"could not connect: {_reason(exc)}", request=label, request_sent=False
            ) from None
        except httpx.DecodingError:
            raise ResponseDecodeError(
                "the body could not be decompressed (truncated or corrupt gzip)",
                request=label,
                garbled=True,
            ) from None
        except (
            httpx.RemoteProtocolError,
            httpx.ReadError,
            httpx.WriteError,
            httpx.NetworkError,
        ) as exc:
            raise TransportError(
                f"connection failed mid-exchange ({type(exc).__name__}: {_reason(exc)})",
                request=label,
            ) from None
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise UsageError(f"{label}: the URL cannot be sent ({_reason(exc)})") from None
        except httpx.TransportError as exc:
            raise TransportError(
                f"transport failure ({type(exc).__name__})", request=label
            ) from None

    async def _exchange(
        self, request: Request, url: str, timeouts: Timeouts | None = None
    ) -> Response:
        headers = dict(request.headers)
        extra: dict[str, Any] = {}
        if not self._owned:
            headers = {**self._headers, **headers}
            extra["follow_redirects"] = False
        if request.server_wait > 0 or timeouts is not None or not self._owned:
            t = timeouts or self.timeouts
            extra["timeout"] = httpx.Timeout(
                connect=t.connect, read=t.read + request.server_wait, write=t.write, pool=t.pool
            )
        async with self._client.stream(
            request.method, url, headers=headers, content=request.content or None, **extra
        ) as raw:
            chunks: list[bytes] = []
            size = 0
            limit = self.max_response_bytes
            declared = raw.headers.get("content-length")
            if (
                declared
                and declared.isdigit()
                and int(declared) > limit
                and not raw.headers.get("content-encoding")
            ):
                raise ResponseDecodeError(
                    f"the response declares {declared} bytes, over the {limit}-byte limit",
                    request=request.label,
                )
            async for chunk in raw.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise ResponseDecodeError(
                        f"the response body exceeds the {limit}-byte limit", request=request.label
                    )
                chunks.append(chunk)
            return Response(
                status_code=raw.status_code,
                headers={k.lower(): v for k, v in raw.headers.items()},
                content=b"".join(chunks),
                request=request,
            )


_HOOKS: Final = ("request", "response")


def _check_hooks(
    value: object,
) -> dict[str, list[Callable[..., Any]]]:
    """httpx's ``event_hooks``: ``{"request": [...], "response": [...]}`` of async
    callables, called with the ``httpx.Request`` / ``httpx.Response`` (its headers hold
    the credentials: a hook must not log them)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgumentType(
            "event_hooks must be a mapping such as {'request': [...], 'response': [...]}"
        )
    hooks: dict[str, list[Callable[..., Any]]] = {}
    for name, given in value.items():
        if name not in _HOOKS:
            raise UsageError(f"event_hooks takes 'request' and 'response', not {name!r}")
        if not isinstance(given, list | tuple) or not all(callable(f) for f in given):
            raise InvalidArgumentType(f"event_hooks[{name!r}] must be a list of async callables")
        hooks[name] = list(given)
    return hooks


def _check_verify(value: object) -> ssl.SSLContext | bool:
    """``verify``: True/False, an ``ssl.SSLContext``, or the path of a CA bundle (file or
    directory), which becomes an SSLContext here so a bad path fails now, in one line."""
    if isinstance(value, bool | ssl.SSLContext):
        return value
    if isinstance(value, str | os.PathLike):
        path = os.fspath(value)
        try:
            if os.path.isdir(path):
                return ssl.create_default_context(capath=path)
            return ssl.create_default_context(cafile=path)
        except (OSError, ssl.SSLError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise UsageError(f"verify: cannot load the CA bundle {path!r} ({reason})") from None
    raise InvalidArgumentType(
        "verify must be True, False, an ssl.SSLContext or a CA bundle path, "
        f"not {type(value).__name__}"
    )


_TOKEN: Final = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def _check_headers(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgumentType(
            f"headers must be a mapping of names to values, not {type(value).__name__}"
        )
    checked: dict[str, str] = {}
    for name, text in value.items():
        if not isinstance(name, str) or not name or not set(name) <= _TOKEN:
            raise UsageError(f"headers: {name!r} is not a valid header name")
        if not isinstance(text, str):
            raise InvalidArgumentType(
                f"headers: the value of {name!r} must be a str, not {type(text).__name__}"
            )
        if any(c in text for c in "\r\n\x00"):
            raise UsageError(f"headers: the value of {name!r} contains a line break")
        checked[name] = text
    return checked


def _certificate_failure(exc: BaseException) -> str:
    """The verification message if ``exc`` was caused by a refused TLS certificate."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            detail = current.verify_message or current.reason
            return f"certificate verify failed: {detail}" if detail else "certificate verify failed"
        if isinstance(current, ssl.SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(current):
            return "certificate verify failed"
        current = current.__cause__ or current.__context__
    return ""


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:200]
