"""A simulator core as an ASGI app: latency, faults, concurrency and rate rules, gzip.

Owns: the async edge around a ``Backend`` (the Locus core or the SolarNetwork core):
reading the request, the concurrency rule (a caller over its allowance gets the backend's
429 at once), the backend's rate rule, seeded fault injection, latency, answers a backend
holds back (SolarNetwork's ``resultMaxWait``), compression and sending (or cutting off) the
body. Must never: decide what a request means or what an error looks like (backends do).

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
from typing import Any, Final, Protocol

import anyio
import attrs

from locus_async._core.checks import check_number, check_whole
from locus_async.errors import InvalidArgumentType, UsageError
from locus_async.simulator._http import SimRequest, SimResponse, SimulatorStats, _ByteBoundedCache

__all__ = ["Backend", "Faults", "SimulatorApp"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_HTML_502: Final = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


def _rate(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    check_number(value, f"Faults.{attribute.name}")
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"Faults.{attribute.name} must be between 0 and 1")


def _seconds(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    check_number(value, f"Faults.{attribute.name}")


def _seed(_: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    check_whole(value, f"Faults.{attribute.name}", minimum=-(2**63))


def _paths(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, tuple | list):
        raise InvalidArgumentType("Faults.paths must be a tuple of path prefixes such as '/v3/'")
    if not all(isinstance(p, str) and p.startswith("/") for p in value):
        raise UsageError("Faults.paths must be path prefixes starting with '/'")
    return tuple(value)


@attrs.frozen
class Faults:
    """Seeded fault injection. Rates are probabilities per request (0 to 1).

    ``latency`` + ``jitter`` * U(0,1) seconds before each answer; ``server_errors`` JSON
    500/503; ``html_errors`` an HTML 502 page; ``rate_limits`` spurious 429s;
    ``drops`` the connection is cut halfway through the body; ``revocations`` the access
    token is revoked (401); ``slow`` answers that take ``slow_seconds`` longer.
    ``paths``: if given, only requests whose path starts with one of them get the faults
    above (latency and jitter apply to every request), e.g. ``("/v3/components/",)`` to
    fail data calls but not the token grant.
    """

    seed: int = attrs.field(default=0, validator=_seed)
    latency: float = attrs.field(default=0.0, validator=_seconds)
    jitter: float = attrs.field(default=0.0, validator=_seconds)
    server_errors: float = attrs.field(default=0.0, validator=_rate)
    html_errors: float = attrs.field(default=0.0, validator=_rate)
    rate_limits: float = attrs.field(default=0.0, validator=_rate)
    drops: float = attrs.field(default=0.0, validator=_rate)
    revocations: float = attrs.field(default=0.0, validator=_rate)
    slow: float = attrs.field(default=0.0, validator=_rate)
    slow_seconds: float = attrs.field(default=5.0, validator=_seconds)
    paths: tuple[str, ...] = attrs.field(default=(), converter=_paths)

    def hits(self, kind: str, key: str, occurrence: int) -> bool:
        rate = float(getattr(self, kind))
        if rate <= 0.0:
            return False
        digest = hashlib.blake2b(
            f"{self.seed}|{kind}|{key}|{occurrence}".encode(), digest_size=8
        ).digest()
        return int.from_bytes(digest, "big") / 2**64 < rate

    def apply_to(self, path: str) -> Faults:
        """These faults for a request to ``path``: the same, or none if ``paths`` leaves it out
        (latency and jitter stay)."""
        if not self.paths or path.startswith(self.paths):
            return self
        return Faults(seed=self.seed, latency=self.latency, jitter=self.jitter)

    def uniform(self, key: str, occurrence: int) -> float:
        digest = hashlib.blake2b(
            f"{self.seed}|jitter|{key}|{occurrence}".encode(), digest_size=8
        ).digest()
        return int.from_bytes(digest, "big") / 2**64


class Backend(Protocol):
    """What a simulated server decides; the adapter does the rest."""

    stats: SimulatorStats

    def fault_key(self, request: SimRequest) -> str:
        """Identifies "the same request" for seeded faults."""
        ...

    def caller(self, request: SimRequest) -> tuple[str, int | None] | None:
        """(name, allowance) the request counts against; allowance None: no limit."""
        ...

    def rate_limited(self, request: SimRequest) -> SimResponse:
        """The 429 for a caller over its allowance (or a spurious one)."""
        ...

    def throttle(self, request: SimRequest) -> SimResponse | None:
        """A 429 from the backend's own rate rule, or None to go on."""
        ...

    def extra_headers(self, request: SimRequest, status: int) -> tuple[tuple[str, str], ...]:
        """Headers the backend adds to its answers (the server's ``Date``, what is left of
        the caller's rate rule), or none."""
        ...

    def error(self, status: int, message: str) -> SimResponse: ...

    def revoke(self, request: SimRequest) -> SimResponse | None:
        """Revoke the request's credential (a fault) and return the answer, or None when
        the request has nothing to revoke."""
        ...

    def handle(self, request: SimRequest) -> SimResponse: ...


class SimulatorApp:
    """ASGI 3 application serving a ``Backend``."""

    def __init__(
        self,
        core: Backend,
        faults: Faults | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.core = core
        self.faults = faults or Faults()
        self.sleep = sleep
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
        headers: dict[str, str] = {}
        for k, v in scope["headers"]:
            name = k.decode("latin-1").lower()
            value = v.decode("latin-1")
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        request = SimRequest(
            method=scope["method"],
            path=scope["path"],
            query=scope["query_string"].decode("latin-1"),
            headers=headers,
            body=b"".join(chunks),
            raw_path=raw_path.split(b"?", 1)[0].decode("latin-1"),
        )
        response, drop = await self._answer(request)
        await self._send(send, request, response, drop=drop)

    async def _answer(self, request: SimRequest) -> tuple[SimResponse, bool]:
        core, faults, stats = self.core, self.faults.apply_to(request.path), self.core.stats
        key = core.fault_key(request)
        self._seen[key] += 1
        occurrence = self._seen[key]
        stats.requests += 1

        if faults.hits("rate_limits", key, occurrence):
            stats.faults["rate_limits"] += 1
            return core.rate_limited(request), False
        caller = core.caller(request)
        name, allowance = caller if caller is not None else ("", None)
        if allowance is not None and stats.in_flight[name] >= allowance:
            return core.rate_limited(request), False
        throttled = core.throttle(request)
        if throttled is not None:
            return throttled, False
        stats.in_flight[name] += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight[name])
        stats.max_in_flight_by[name] = max(stats.max_in_flight_by[name], stats.in_flight[name])
        try:
            delay = faults.latency + faults.jitter * faults.uniform(key, occurrence)
            if faults.hits("slow", key, occurrence):
                stats.faults["slow"] += 1
                delay += faults.slow_seconds
            if delay > 0:
                await self.sleep(delay)
            response = self._faulty(request, key, occurrence)
            if response is None:
                response = core.handle(request)
                extra = core.extra_headers(request, response.status)
                if extra:
                    response = attrs.evolve(response, headers=(*response.headers, *extra))
            if response.hold > 0:
                await self.sleep(response.hold)
            drop = faults.hits("drops", key, occurrence)
            if drop:
                stats.faults["drops"] += 1
        finally:
            stats.in_flight[name] -= 1
        return response, drop

    def _faulty(self, request: SimRequest, key: str, occurrence: int) -> SimResponse | None:
        """The answer of an injected fault, or None to let the backend answer."""
        core, faults, stats = self.core, self.faults.apply_to(request.path), self.core.stats
        if faults.hits("server_errors", key, occurrence):
            stats.faults["server_errors"] += 1
            return core.error(503 if occurrence % 2 else 500, "Internal server error")
        if faults.hits("html_errors", key, occurrence):
            stats.faults["html_errors"] += 1
            return SimResponse(502, _HTML_502, (("content-type", "text/html"),))
        if faults.hits("revocations", key, occurrence):
            revoked = core.revoke(request)
            if revoked is not None:
                stats.faults["revocations"] += 1
                return revoked
        return None

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
