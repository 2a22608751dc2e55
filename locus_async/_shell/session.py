"""The provider-neutral shell: limiter, credentials, retries and stats around the transport.

Owns: one logical call = (wait for a slot -> authorize -> send -> release the slot) ->
decipher -> decode, repeated under the retry policy. A 401 is retried once after the
authenticator drops the token; a 429 pauses the whole credential (the limiter) instead of
each queued request finding it out alone. Slots are held only while the exchange is on the
wire (plus a token grant made for it), never while decoding or waiting to retry.

An exchange abandoned on the wire (the caller was cancelled, or the read timed out) may
still be running on the server: its slot is given back with a hold (``WireHold``: the
slowest recent exchange with a margin, less the time already spent), so the next request
of the credential does not overlap it and draw a 429.

Both providers (Locus and SolarNetwork) run on this class; each brings an ``Authenticator``
and a ``decipher`` function. Must never: import httpx, or log a header, a body or a secret.
"""

from __future__ import annotations

import copy
import logging
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from typing import Final, Protocol, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread
import cattrs
import tenacity

from locus_async._core.converter import Forgiven, forgiving, summarise
from locus_async._core.http import Request, Response, redact
from locus_async._core.pacing import RateLimit, TokenBucket
from locus_async._core.retrying import WireHold, is_retryable
from locus_async._shell.limiter import Limiter, Priority, Slot
from locus_async._shell.retry import AttemptLog, RetryPolicy, make_stop, make_wait
from locus_async._shell.stats import ClientStats
from locus_async._shell.transport import Timeouts, Transport
from locus_async.errors import (
    APIError,
    ClientClosed,
    EventLoopChanged,
    LocusError,
    RateLimited,
    RequestTimeout,
    TransportError,
)

__all__ = ["AuthContext", "AuthFlow", "Authenticator", "Session"]

T = TypeVar("T")

logger = logging.getLogger("locus_async")

#: Where servers and the proxies in front of them put a request's id, tried in order.
_REQUEST_ID_HEADERS: Final = ("x-request-id", "x-amzn-requestid", "x-amz-cf-id", "request-id")

Decipher = Callable[[Response, float, Iterable[str]], None]


class AuthContext(Protocol):
    """What an auth flow may read: clocks, the converter, and where to count its grants.
    It sends nothing itself: it yields requests, and the session sends them."""

    converter: cattrs.Converter

    def monotonic(self) -> float: ...

    def wall(self) -> float: ...

    def note_grant(self, kind: str) -> None: ...


#: An auth flow (httpx's ``Auth.auth_flow`` pattern, over our own types): it yields each
#: request to send (token grants, then the caller's request with credentials) and receives
#: each response; the session sends them inside the slot the caller holds.
AuthFlow = AsyncGenerator[Request, Response]


class Authenticator(Protocol):
    """Adds credentials to requests (OAuth bearer tokens, SNWS2 signatures...)."""

    def secrets(self) -> tuple[str, ...]:
        """Every secret value it holds now, so logs and errors can redact them."""
        ...

    def auth_flow(self, request: Request, ctx: AuthContext) -> AuthFlow:
        """The flow for ``request``: the last request it yields is ``request`` itself with
        credentials (``authenticate`` set); it may yield it again after a 401, once."""
        ...


class Session:
    """Sends Requests for one credential. Shared by every request of a client."""

    def __init__(
        self,
        *,
        transport: Transport,
        limiter: Limiter,
        authenticator: Authenticator | None,
        decipher: Decipher,
        converter: cattrs.Converter,
        retry: RetryPolicy | None = None,
        stats: ClientStats | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        rng: random.Random | None = None,
        rate: RateLimit | None = None,
        remaining_header: str | None = None,
    ) -> None:
        self.transport = transport
        self.limiter = limiter
        self.authenticator = authenticator
        self.converter = converter
        self.retry = retry or RetryPolicy()
        self.stats = stats or ClientStats(started=clock())
        self._decipher = decipher
        self._clock = clock
        self._wall = wall
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._rate_limit_streak = 0
        #: Bodies at least this large are decoded in a worker thread.
        self.offload_bytes = 64 * 1024
        #: One decoding thread at a time: more would only fight the event loop for the GIL.
        self._decoders: anyio.CapacityLimiter | None = None
        self.wire_hold = WireHold(initial=self.retry.wire_hold)
        #: The client-side rate limit (None: only the concurrency limit), and the response
        #: header through which the server says how many requests remain.
        self.pacer = TokenBucket(rate, clock()) if rate is not None else None
        self.remaining_header = remaining_header
        #: What the client is called in lifecycle errors (``LocusClient``...).
        self.owner = "client"
        #: The event loop of the first call, shared with the sessions ``derived`` from
        #: this one (a one-item list, so that copies share it).
        self._home: list[object] = []
        #: ``with_options``: this session's own timeouts and priority (None: the client's).
        self.timeouts: Timeouts | None = None
        self.priority: Priority | None = None

    def derived(
        self,
        *,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        priority: Priority | None = None,
    ) -> Session:
        """A session for ``with_options``: the same transport, limiter, credentials,
        counters and pacing, with its own retry policy, timeouts or priority."""
        view = copy.copy(self)
        if retry is not None:
            view.retry = retry
        if timeouts is not None:
            view.timeouts = timeouts
        if priority is not None:
            view.priority = priority
        return view

    def check_usable(self) -> None:
        """Refuse a call on a closed client, or in another event loop than its first."""
        if self.transport.closed:
            raise ClientClosed(
                f"this {self.owner} is closed: make a new one, or call it inside its "
                "'async with' block"
            )
        loop = anyio.lowlevel.current_token().native_token
        if not self._home:
            self._home.append(loop)
        elif loop is not self._home[0]:
            raise EventLoopChanged(
                f"this {self.owner} was first used in another event loop (each asyncio.run "
                "starts a new one): make the client inside the function you run, or run "
                "the whole program in one loop"
            )

    # -- AuthContext ------------------------------------------------------------------

    def monotonic(self) -> float:
        return self._clock()

    def wall(self) -> float:
        return self._wall()

    def note_grant(self, kind: str) -> None:
        self.stats.token_grants[kind] += 1

    async def sleep(self, seconds: float) -> None:
        """The client's own sleep (injectable): helpers that poll wait with it."""
        await self._sleep(seconds)

    async def exchange(self, request: Request, slot: Slot | None = None) -> Response:
        """Put one request on the wire (the caller holds ``slot``) and count it. If the
        exchange is abandoned while the server may still be working on it (cancelled, or a
        timeout after the request went out), ``slot`` is given back with a hold."""
        stats = self.stats
        if self.pacer is not None:
            await self._pace(self.pacer)
        stats.requests += 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        started = self._clock()
        try:
            response = await self.transport.send(request, self.timeouts)
        except TransportError as exc:
            stats.transport_errors += 1
            if slot is not None and isinstance(exc, RequestTimeout) and exc.request_sent:
                slot.hold_for(self.wire_hold.hold(self._clock() - started))
            raise
        except BaseException:  # cancelled on the wire: the server may still be at it
            if slot is not None:
                slot.hold_for(self.wire_hold.hold(self._clock() - started))
                stats.abandoned += 1
            raise
        finally:
            stats.in_flight -= 1
            stats.busy_seconds += self._clock() - started
        self.wire_hold.observe(self._clock() - started)
        stats.responses[response.status_code] += 1
        if self.pacer is not None:
            self._observe_remaining(self.pacer, response)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s -> %d in %.3f s", request.label, response.status_code, self._clock() - started
            )
        return response

    async def _pace(self, pacer: TokenBucket) -> None:
        """Wait for the rate limit's turn of this request (its token is refunded if the
        caller is cancelled before it is sent)."""
        delay = pacer.reserve(self._clock())
        if delay <= 0:
            return
        self.stats.paced_seconds += delay
        try:
            await self._sleep(delay)
        except BaseException:
            pacer.refund(self._clock())
            raise

    def _observe_remaining(self, pacer: TokenBucket, response: Response) -> None:
        if response.status_code == 429:
            pacer.observe(0, self._clock())
            return
        raw = response.headers.get(self.remaining_header or "", "")
        if raw.strip().isdigit():
            pacer.observe(int(raw), self._clock())

    # -- secrets ----------------------------------------------------------------------

    def secrets(self) -> tuple[str, ...]:
        return self.authenticator.secrets() if self.authenticator is not None else ()

    def _redacted(self, exc: BaseException) -> BaseException:
        """``exc`` with any secret scrubbed from its message (APIError keeps its type)."""
        secrets = self.secrets()
        text = str(exc)
        clean = redact(text, secrets)
        if clean == text:
            return exc
        if isinstance(exc, APIError):
            exc.message = redact(exc.message, secrets)
        exc.args = (clean,)
        return exc

    # -- one call ---------------------------------------------------------------------

    async def call(
        self,
        request: Request,
        decode: Callable[[Response], T],
        *,
        priority: Priority = Priority.INTERACTIVE,
    ) -> T:
        """Send ``request`` under the retry policy and return ``decode(response)``."""
        self.check_usable()
        self.transport.check(request)

        async def attempt(log: AttemptLog) -> T:
            response = await self._attempt(request, priority, log)
            return await self._decode(decode, response)

        return await self._retrying(request, attempt)

    async def authenticate(self, probe: Request) -> None:
        """Have the authenticator make its credentials ready for ``probe`` now (a token
        grant if it needs one), inside a slot and under the retry policy, without sending
        ``probe`` itself."""
        self.check_usable()
        authenticator = self.authenticator
        if authenticator is None:
            return

        async def attempt(log: AttemptLog) -> None:
            async with self.limiter.slot() as slot:
                flow = authenticator.auth_flow(probe, self)
                await self._drive(flow, probe, slot, log, stop=True)

        await self._retrying(probe, attempt)

    async def _retrying(self, request: Request, attempt: Callable[[AttemptLog], Awaitable[T]]) -> T:
        """``attempt`` repeated under the retry policy; errors leave with secrets redacted."""
        log = AttemptLog()

        def retryable(exc: BaseException) -> bool:
            if isinstance(exc, RateLimited):
                log.rate_limited += 1
            else:
                log.other += 1
            return is_retryable(exc, retry_safe=request.retry_safe, sent=log.sent)

        retrying = tenacity.AsyncRetrying(
            stop=make_stop(self.retry, log),
            wait=make_wait(self.retry, log, self._rng),
            retry=tenacity.retry_if_exception(retryable),
            sleep=self._sleep,
            reraise=True,
            before_sleep=self._before_retry,
        )
        try:
            async for try_ in retrying:
                with try_:
                    log.sent = False
                    result = await attempt(log)
        except LocusError as exc:
            raise self._redacted(exc) from None
        return result

    async def _decode(self, decode: Callable[[Response], T], response: Response) -> T:
        """Decode outside the slot. Large bodies are decoded in a worker thread, so the event
        loop stays free: the caller that got the slot can put its request on the wire (the
        allowance never idles behind our parsing) and your app stays responsive.

        What the lenient decoder forgave (values read as empty, items dropped) is logged
        as one warning per field of the call, and counted in the stats."""

        def noting(response: Response) -> tuple[T, list[Forgiven]]:
            with forgiving() as notes:
                return decode(response), notes

        if len(response.content) >= self.offload_bytes:
            if self._decoders is None:
                self._decoders = anyio.CapacityLimiter(1)
            value, notes = await anyio.to_thread.run_sync(noting, response, limiter=self._decoders)
        else:
            await anyio.lowlevel.checkpoint()
            value, notes = noting(response)
        if notes:
            self.stats.dropped += sum(n.dropped for n in notes)
            self.stats.forgiven += sum(not n.dropped for n in notes)
            for line in summarise(notes):
                logger.warning("%s: %s", response.request.label, line)
        return value

    def _before_retry(self, state: tenacity.RetryCallState) -> None:
        self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        reason = redact(str(exc), self.secrets()) if exc is not None else "unknown"
        logger.warning(
            "retrying (attempt %d) in %.2f s after %s: %s",
            state.attempt_number + 1,
            wait,
            type(exc).__name__,
            reason,
        )

    async def _attempt(self, request: Request, priority: Priority, log: AttemptLog) -> Response:
        """One attempt: the request (with the token grants its credentials need, and one
        resend after a 401 if the flow asks for it) inside one slot, then deciphered."""
        limiter = self.limiter
        queued = self._clock()
        lane = priority if self.priority is None else self.priority
        async with limiter.slot(lane) as slot:
            self.stats.queued_seconds += self._clock() - queued
            if request.authenticate and self.authenticator is not None:
                flow = self.authenticator.auth_flow(request, self)
            else:
                flow = _plain(request)
            response = await self._drive(flow, request, slot, log)
        if response is None:  # pragma: no cover - a flow must yield the request
            raise AssertionError("the auth flow sent nothing")
        if response.status_code != 429:
            self._rate_limit_streak = 0
        try:
            self._decipher(response, self._wall(), self.secrets())
        except APIError as exc:
            sent = response.request
            exc.method = sent.method
            exc.url = (sent.origin or self.transport.base_url) + sent.target
            exc.request_id = next(
                (v for h in _REQUEST_ID_HEADERS if (v := response.header(h))), None
            )
            if isinstance(exc, RateLimited):
                await self._pause_credential(exc.retry_after, exc.request)
            raise
        return response

    async def _drive(
        self, flow: AuthFlow, request: Request, slot: Slot, log: AttemptLog, *, stop: bool = False
    ) -> Response | None:
        """Send every request ``flow`` yields inside ``slot`` and return the last answer to
        the caller's own ``request`` (yielded as it is, or with credentials: ``authenticate``
        set; anything else it yields is a token grant); with ``stop``, end (unsent) once the
        flow yields it. The flow is always closed, shielded: whatever it holds is given back
        even when the caller is cancelled."""
        limiter = self.limiter
        response: Response | None = None
        try:
            try:
                outgoing = await flow.__anext__()
                while True:
                    if outgoing is request or outgoing.authenticate:  # the caller's, not a grant
                        if stop:
                            break
                        log.sent = True
                        level = limiter.in_use
                        saturated = level >= limiter.capacity
                        response = await self.exchange(outgoing, slot)
                        status = response.status_code
                        limiter.record(rate_limited=status == 429, saturated=saturated, level=level)
                    else:
                        response = await self.exchange(outgoing, slot)
                    outgoing = await flow.asend(response)
            except StopAsyncIteration:
                pass
        except RateLimited as exc:  # from a token grant: the token endpoint is limited too
            await self._pause_credential(exc.retry_after, exc.request)
            raise
        finally:
            with anyio.CancelScope(shield=True):
                await flow.aclose()
        return None if stop else response

    async def _pause_credential(self, retry_after: float | None, label: str) -> None:
        self.stats.rate_limited += 1
        self._rate_limit_streak += 1
        pause = self.retry.pause_seconds(self._rate_limit_streak, retry_after, self._rng.random())
        logger.warning(
            "429 from %s; pausing the credential for %.2f s (streak %d)",
            label,
            pause,
            self._rate_limit_streak,
        )
        await self.limiter.pause(pause)

    async def aclose(self, *, injected: bool = False) -> None:
        await self.transport.aclose(injected=injected)


async def _plain(request: Request) -> AuthFlow:
    """The flow of a request that needs no credentials: send it as it is."""
    yield request
