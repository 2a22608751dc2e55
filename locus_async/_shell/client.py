"""What every provider's client is made of: the shell's options, the Session built from
them, and the lifecycle and counters a client exposes.

Owns: ``ShellOptions`` (the keyword arguments both ``LocusClient`` and ``SolarNetClient``
take for the transport, limiter, retries and injected clocks), ``build_session`` (checks
them and wires the Session), and ``ShellClient`` (``async with``, ``aclose``, ``stats``,
``limiter``, ``now``, configuration from the environment). Must never: know a provider.
"""

from __future__ import annotations

import copy
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Self, TypedDict

import anyio
import attrs
import cattrs

from locus_async._core.checks import check_whole
from locus_async._core.pacing import RateLimit
from locus_async._shell.limiter import Limiter, LocalLimiter, Priority
from locus_async._shell.retry import RetryPolicy
from locus_async._shell.session import Authenticator, Decipher, Session
from locus_async._shell.stats import ClientStats
from locus_async._shell.transport import Timeouts, Transport, timeouts_of
from locus_async.errors import InvalidArgumentType, UsageError

if TYPE_CHECKING:
    import ssl

    from locus_async._shell.transport import AsyncTransport

__all__ = ["SHELL_OPTIONS", "ShellClient", "ShellOptions", "build_session", "env_kwargs"]


class ShellOptions(TypedDict, total=False):
    """Keyword arguments every client takes for the shared shell.

    ``max_concurrency``: requests on the wire at once (default 1), or ``limiter`` to share
    one between clients or processes; ``retry``: a RetryPolicy, or ``max_retries``: retries
    after the first try (as httpx and openai-python take it); ``timeout``: seconds for
    every phase, an ``httpx.Timeout`` or ``Timeouts`` (``timeouts`` is the older name);
    ``transport``: an httpx transport (the simulators' in-process one, for example), or
    ``http_client``: your own ``httpx.AsyncClient`` (proxies, mTLS, custom transports; it
    stays yours to close); ``event_hooks``: httpx's ``{"request": [...], "response": [...]}``
    (the request's headers hold the credentials: never log them);
    ``verify``: TLS verification or an SSLContext; ``max_response_bytes``: the largest body
    accepted; ``headers``: extra headers on every request; ``clock``/``wall``/``sleep``/``rng``:
    injected time and randomness (tests).
    """

    max_concurrency: int | None
    limiter: Limiter | None
    retry: RetryPolicy | None
    max_retries: int | None
    timeout: float | Timeouts | object  # or an httpx.Timeout
    timeouts: Timeouts | None
    transport: AsyncTransport | None
    http_client: object  # an httpx.AsyncClient
    event_hooks: Mapping[str, Sequence[Callable[..., Any]]] | None
    verify: ssl.SSLContext | bool
    max_response_bytes: int
    headers: Mapping[str, str] | None
    clock: Callable[[], float] | None
    wall: Callable[[], float] | None
    sleep: Callable[[float], Awaitable[None]] | None
    rng: random.Random | None


SHELL_OPTIONS: Final = frozenset(ShellOptions.__annotations__)


def build_session(
    owner: str,
    *,
    base_url: str,
    authenticator: Authenticator | None,
    decipher: Decipher,
    converter: cattrs.Converter,
    options: ShellOptions,
    rate: RateLimit | None = None,
    remaining_header: str | None = None,
) -> Session:
    """The shell one client runs on, its options checked (``owner`` names the client in
    error messages); ``rate``: a client-side rate limit on top of the concurrency limit,
    corrected by the server's ``remaining_header``."""
    if rate is not None and not isinstance(rate, RateLimit):
        raise InvalidArgumentType(f"rate must be a RateLimit or None, not {type(rate).__name__}")
    unknown = sorted(set(options) - SHELL_OPTIONS)
    if unknown:
        raise TypeError(f"{owner}() got an unexpected keyword argument {unknown[0]!r}")
    limiter = options.get("limiter")
    max_concurrency = options.get("max_concurrency")
    retry = options.get("retry")
    if limiter is not None and max_concurrency is not None:
        raise UsageError("give max_concurrency or limiter, not both (the limiter has a capacity)")
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise InvalidArgumentType(f"retry must be a RetryPolicy, not {type(retry).__name__}")
    max_retries = options.get("max_retries")
    if max_retries is not None:
        if retry is not None:
            raise UsageError("give retry or max_retries, not both (the policy has attempts)")
        check_whole(max_retries, "max_retries", minimum=0)
        retry = RetryPolicy(attempts=max_retries + 1)
    if options.get("timeout") is not None and options.get("timeouts") is not None:
        raise UsageError("give timeout or timeouts, not both")
    for name in ("clock", "wall", "sleep"):
        value = options.get(name)
        if value is not None and not callable(value):
            raise InvalidArgumentType(f"{name} must be callable, not {type(value).__name__}")
    rng = options.get("rng")
    if rng is not None and not isinstance(rng, random.Random):
        raise InvalidArgumentType(f"rng must be a random.Random, not {type(rng).__name__}")
    clock = options.get("clock") or time.monotonic
    sleep = options.get("sleep") or anyio.sleep
    if limiter is None:
        limiter = LocalLimiter(
            1 if max_concurrency is None else max_concurrency, clock=clock, sleep=sleep
        )
    elif not isinstance(limiter, Limiter):
        raise InvalidArgumentType(
            "limiter must be a LocalLimiter, AdaptiveLimiter, RedisLimiter or another "
            f"Limiter, not {type(limiter).__name__}"
        )
    transport_options: dict[str, Any] = {
        key: options[key]
        for key in (
            "transport",
            "timeouts",
            "verify",
            "max_response_bytes",
            "headers",
            "http_client",
            "event_hooks",
        )
        if key in options
    }
    if options.get("timeout") is not None:
        transport_options["timeouts"] = timeouts_of(options["timeout"])
    session = Session(
        transport=Transport(base_url, **transport_options),
        limiter=limiter,
        authenticator=authenticator,
        decipher=decipher,
        converter=converter,
        retry=retry,
        stats=ClientStats(started=clock()),
        clock=clock,
        wall=options.get("wall") or time.time,
        sleep=sleep,
        rng=options.get("rng"),
        rate=rate,
        remaining_header=remaining_header,
    )
    session.owner = owner
    return session


class ShellClient:
    """Lifecycle and counters every provider's client shares (``_session`` is set by the
    subclass). Use a client as ``async with Client(...) as c:`` or call ``aclose()``."""

    _session: Session
    base_url: str

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (a limiter or an ``http_client`` you passed in stays
        yours to close)."""
        await self._session.aclose()

    async def _aclose_on_own_loop(self) -> None:
        """Close the pool, a passed-in ``http_client`` too: what a blocking client does
        when it closes, since that client's connections belong to its private loop and
        could not be closed anywhere else."""
        await self._session.aclose(injected=True)

    def _bind(self, session: Session) -> None:
        """Make requests through ``session`` (the provider builds its resources on it)."""
        raise NotImplementedError

    def with_options(
        self,
        *,
        timeout: float | Timeouts | object | None = None,
        max_retries: int | None = None,
        priority: Priority | None = None,
    ) -> Self:
        """This client for some calls with other options, as in openai-python:
        ``await client.with_options(timeout=5, max_retries=0).sites.get(1)``.

        The copy shares everything else (connections, limiter and allowance, token,
        counters); closing either closes both. ``timeout``: as the constructor takes it;
        ``max_retries``: retries after the first try; ``priority``: the limiter queue its
        requests wait in (``Priority.BACKGROUND`` lets interactive calls go first)."""
        retry = None
        if max_retries is not None:
            check_whole(max_retries, "max_retries", minimum=0)
            retry = attrs.evolve(self._session.retry, attempts=max_retries + 1)
        if priority is not None and not isinstance(priority, Priority):
            raise InvalidArgumentType(f"priority must be a Priority, not {type(priority).__name__}")
        session = self._session.derived(
            retry=retry,
            timeouts=timeouts_of(timeout) if timeout is not None else None,
            priority=priority,
        )
        clone = copy.copy(self)
        clone._bind(session)
        return clone

    @property
    def stats(self) -> ClientStats:
        """Counters of this client's traffic: requests, retries, 429s, grants, time queued."""
        return self._session.stats

    @property
    def limiter(self) -> Limiter:
        return self._session.limiter

    def now(self) -> float:
        """The client's wall clock, unix seconds (injectable for tests)."""
        return self._session.wall()

    @classmethod
    def _env_kwargs(cls, env: Mapping[str, str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The constructor's keyword arguments for ``from_env`` (the provider says which
        credential and variables): ``kwargs`` win over the environment."""
        raise NotImplementedError


def env_kwargs(
    env: Mapping[str, str] | None,
    kwargs: dict[str, Any],
    *,
    credential: str,
    read: Callable[[Mapping[str, str]], object],
    base_url_variable: str,
) -> dict[str, Any]:
    """``kwargs`` with the credential (``read`` from the environment) and the base URL
    variable filled in where the caller did not give them."""
    source = os.environ if env is None else env
    if credential not in kwargs:
        kwargs[credential] = read(source)
    if "base_url" not in kwargs and source.get(base_url_variable):
        kwargs["base_url"] = source[base_url_variable]
    return kwargs
