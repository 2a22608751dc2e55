"""The one module that sends HTTP with httpx.

Owns: the httpx.AsyncClient, timeouts (connect, read, write, pool and the whole exchange),
bounded request and response sizes, and turning every httpx failure into our error tree.
Must never: retry, sleep, hold a limiter slot, log a header or a body.
Swapping httpx for another HTTP library is a change to this file only.
"""

from __future__ import annotations

import builtins
import ssl
from collections.abc import Mapping
from typing import Any, Final

import anyio
import attrs
import httpx

from ._core.http import MAX_URL_LENGTH, Request, Response
from ._version import __version__
from .errors import ResponseDecodeError, TimeoutError, TransportError, UsageError

__all__ = [
    "DEFAULT_MAX_REQUEST_BYTES",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "Timeouts",
    "Transport",
    "asgi_transport",
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
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise UsageError(f"Timeouts.{name} must be a positive number of seconds")


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
    ) -> None:
        self.base_url = base_url
        self.timeouts = timeouts or Timeouts()
        self.max_response_bytes = max_response_bytes
        self.max_request_bytes = max_request_bytes
        t = self.timeouts
        default_headers = {
            "User-Agent": f"locus-async/{__version__}",
            "Accept": "application/json",
            "Accept-Encoding": "gzip",
        }
        default_headers.update(headers or {})
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(connect=t.connect, read=t.read, write=t.write, pool=t.pool),
            verify=verify,
            headers=default_headers,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=20),
        )

    @property
    def closed(self) -> bool:
        return self._client.is_closed

    async def aclose(self) -> None:
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

    async def send(self, request: Request) -> Response:
        """One exchange: the whole body is read (and decompressed) before returning."""
        self.check(request)
        label = request.label
        url = self.base_url + request.target
        total = self.timeouts.total + request.server_wait
        try:
            with anyio.fail_after(total):
                return await self._exchange(request, url)
        except TimeoutError:
            raise
        except builtins.TimeoutError:
            raise TimeoutError(f"no complete response within {total:g} s", request=label) from None
        except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise TimeoutError(
                f"could not connect in time ({type(exc).__name__})",
                request=label,
                request_sent=False,
            ) from None
        except httpx.TimeoutException as exc:
            raise TimeoutError(f"timed out ({type(exc).__name__})", request=label) from None
        except httpx.ConnectError as exc:
            raise TransportError(
                f"could not connect: {_reason(exc)}", request=label, request_sent=False
            ) from None
        except httpx.DecodingError:
            raise ResponseDecodeError(
                "the body could not be decompressed (truncated or corrupt gzip)", request=label
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
        except httpx.TransportError as exc:
            raise TransportError(
                f"transport failure ({type(exc).__name__})", request=label
            ) from None

    async def _exchange(self, request: Request, url: str) -> Response:
        headers = dict(request.headers)
        extra: dict[str, Any] = {}
        if request.server_wait > 0:
            t = self.timeouts
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


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:200]
