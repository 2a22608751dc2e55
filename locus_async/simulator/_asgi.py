"""The simulator as an ASGI app: latency, faults, the concurrency rule and gzip.

Owns: the async edge around ``SimulatorCore``: reading the request, the one-at-a-time rule
(an account over its allowance gets the documented 429 at once), seeded fault injection,
latency, compression and sending (or cutting off) the body. Must never: decide what a
request means (the core does).

Faults are decided by hashing (seed, fault, request, n-th occurrence of that request), so a
run is reproducible whatever order concurrent requests arrive in.

The in-flight count drops *before* the response is sent: a client that sends its next
request the moment the previous response ends must not find the slot still taken.
"""

from __future__ import annotations

import gzip
import hashlib
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

import anyio
import attrs
import orjson

from ._core import SimRequest, SimResponse, SimulatorCore, _ByteBoundedCache, error_response

__all__ = ["Faults", "SimulatorApp"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

RATE_LIMITED_BODY: Final = orjson.dumps({"message": "Too many requests", "statusCode": 429})
_HTML_502: Final = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


def _rate(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"Faults.{attribute.name} must be between 0 and 1")


@attrs.frozen
class Faults:
    """Seeded fault injection. Rates are probabilities per request (0 to 1).

    ``latency`` + ``jitter`` * U(0,1) seconds before each answer; ``server_errors`` JSON
    500/503; ``html_errors`` an HTML 502 page; ``rate_limits`` spurious 429s;
    ``drops`` the connection is cut halfway through the body; ``revocations`` the access
    token is revoked (401); ``slow`` answers that take ``slow_seconds`` longer.
    """

    seed: int = 0
    latency: float = 0.0
    jitter: float = 0.0
    server_errors: float = attrs.field(default=0.0, validator=_rate)
    html_errors: float = attrs.field(default=0.0, validator=_rate)
    rate_limits: float = attrs.field(default=0.0, validator=_rate)
    drops: float = attrs.field(default=0.0, validator=_rate)
    revocations: float = attrs.field(default=0.0, validator=_rate)
    slow: float = attrs.field(default=0.0, validator=_rate)
    slow_seconds: float = 5.0

    def hits(self, kind: str, key: str, occurrence: int) -> bool:
        rate = float(getattr(self, kind))
        if rate <= 0.0:
            return False
        digest = hashlib.blake2b(
            f"{self.seed}|{kind}|{key}|{occurrence}".encode(), digest_size=8
        ).digest()
        return int.from_bytes(digest, "big") / 2**64 < rate

    def uniform(self, key: str, occurrence: int) -> float:
        digest = hashlib.blake2b(
            f"{self.seed}|jitter|{key}|{occurrence}".encode(), digest_size=8
        ).digest()
        return int.from_bytes(digest, "big") / 2**64


class SimulatorApp:
    """ASGI 3 application serving a ``SimulatorCore``."""

    def __init__(self, core: SimulatorCore, faults: Faults | None = None) -> None:
        self.core = core
        self.faults = faults or Faults()
        self._seen: Counter[str] = Counter()
        self._gzipped = _ByteBoundedCache(32 * 1024 * 1024)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request = SimRequest(
            method=scope["method"],
            path=scope["path"],
            query=scope["query_string"].decode("latin-1"),
            headers=headers,
            body=b"".join(chunks),
        )
        response, drop = await self._answer(request)
        await self._send(send, request, response, drop=drop)

    async def _answer(self, request: SimRequest) -> tuple[SimResponse, bool]:
        core, faults, stats = self.core, self.faults, self.core.stats
        key = f"{request.method} {request.path}?{request.query}"
        if request.path == "/oauth/token":
            key += "#" + hashlib.blake2b(request.body, digest_size=6).hexdigest()
        self._seen[key] += 1
        occurrence = self._seen[key]
        stats.requests += 1

        if faults.hits("rate_limits", key, occurrence):
            stats.faults["rate_limits"] += 1
            return SimResponse(429, RATE_LIMITED_BODY), False
        account = core.account_for(request)
        name = account.client_id if account is not None else ""
        if account is not None and stats.in_flight[name] >= core.allowance_of(account):
            return SimResponse(429, RATE_LIMITED_BODY), False
        stats.in_flight[name] += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight[name])
        try:
            delay = faults.latency + faults.jitter * faults.uniform(key, occurrence)
            if faults.hits("slow", key, occurrence):
                stats.faults["slow"] += 1
                delay += faults.slow_seconds
            if delay > 0:
                await anyio.sleep(delay)
            if faults.hits("server_errors", key, occurrence):
                stats.faults["server_errors"] += 1
                status = 503 if occurrence % 2 else 500
                response = error_response(status, "Internal server error")
            elif faults.hits("html_errors", key, occurrence):
                stats.faults["html_errors"] += 1
                response = SimResponse(502, _HTML_502, (("content-type", "text/html"),))
            elif (
                request.path != "/oauth/token"
                and account is not None
                and faults.hits("revocations", key, occurrence)
            ):
                stats.faults["revocations"] += 1
                core.revoke((request.header("authorization") or "")[len("Bearer ") :])
                response = error_response(401, "Token revoked")
            else:
                response = core.handle(request)
            drop = faults.hits("drops", key, occurrence)
            if drop:
                stats.faults["drops"] += 1
        finally:
            stats.in_flight[name] -= 1
        return response, drop

    def _compressed(self, response: SimResponse) -> bytes:
        """gzip of the body, reused for answers that cannot change."""
        key = response.cache_key
        if key is not None:
            cached = self._gzipped.get(key)
            if cached is not None:
                return cached[0]
        body = gzip.compress(response.body, compresslevel=1)
        if key is not None:
            self._gzipped.put(key, body)
        return body

    async def _send(
        self, send: Send, request: SimRequest, response: SimResponse, *, drop: bool
    ) -> None:
        stats = self.core.stats
        stats.by_status[response.status] += 1
        stats.log.append((request.method, request.path, response.status))
        body = response.body
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
        if "gzip" in (request.header("accept-encoding") or "") and len(body) > 256:
            body = self._compressed(response)
            headers.append((b"content-encoding", b"gzip"))
        headers.append((b"content-length", str(len(body)).encode("ascii")))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        if drop and len(body) > 1:
            # Half the body after a Content-Length promising all of it. Over sockets the
            # server then aborts the connection (too little data); in process the client
            # gets a truncated body. Either way the client must notice.
            await send({"type": "http.response.body", "body": body[: len(body) // 2]})
            return
        await send({"type": "http.response.body", "body": body})
