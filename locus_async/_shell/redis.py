"""Sharing one credential between processes and hosts, through Redis (the ``redis`` extra).

Owns: ``RedisLimiter``, a lease-based, fair, distributed semaphore, and
``RedisTokenStore``, a token cache that lets a fleet of processes share one token and
refresh it once (single flight under a Redis lock). Must never: trust a local clock for
anything shared (the scripts use Redis's own ``TIME``), or keep a slot past its lease
without renewing it.

The semaphore, in Redis (all changes happen inside Lua scripts, atomically)::

    {key}:holders   ZSET ticket -> lease expiry (ms)      who holds a slot now
    {key}:queue     ZSET ticket -> ticket number          who waits, in arrival order
    {key}:waiting   ZSET ticket -> heartbeat expiry (ms)  waiters still alive
    {key}:counter   INT                                   the next ticket number
    {key}:pause     INT ms                                no new grant before this

A ticket is granted when its rank in the queue is below the free capacity: strict FIFO
across processes, so nobody starves. Holders renew their lease while their request is on
the wire; a holder that dies (SIGKILL) stops renewing and its slot comes back when the
lease runs out. Waiters refresh a heartbeat each time they poll; a dead waiter is dropped
from the queue so it cannot block the head. Inside each process a local limiter (same
capacity) keeps its FIFO and priority order and caps how many tickets it holds.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import anyio

from locus_async._core.checks import check_number, check_whole
from locus_async._core.http import check_port
from locus_async._shell.limiter import LocalLimiter, Priority, Slot
from locus_async.errors import InvalidArgumentType, UsageError

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisLimiter", "RedisTokenStore"]

logger = logging.getLogger("locus_async.redis")

_ACQUIRE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local dead = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, w in ipairs(dead) do
  redis.call('ZREM', KEYS[2], w)
  redis.call('ZREM', KEYS[3], w)
end
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[4]), ARGV[1])
end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[4]), ARGV[1])
local paused = tonumber(redis.call('GET', KEYS[5]) or '0')
if paused > now then
  return {0, paused - now}
end
local free = tonumber(ARGV[2]) - redis.call('ZCARD', KEYS[1])
if free > 0 and redis.call('ZRANK', KEYS[2], ARGV[1]) < free then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  return {1, 0}
end
return {0, 0}
"""

_RENEW: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[2]), ARGV[1])
"""

_WITHDRAW: Final = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
"""

_HOLD: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
"""

_PAUSE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ms > current then
  redis.call('SET', KEYS[1], until_ms, 'PX', tonumber(ARGV[1]) + 1000)
end
return until_ms
"""

_INVALIDATE: Final = """
local current = redis.call('GET', KEYS[1])
if current and cjson.decode(current)['access_token'] == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def _connect(url: str) -> Redis:
    try:
        import redis.asyncio
    except ImportError:  # pragma: no cover - depends on the environment
        raise UsageError("RedisLimiter needs redis: pip install 'locus-async[redis]'") from None
    if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
        raise UsageError(f"the Redis URL {url!r} must start with redis://, rediss:// or unix://")
    if not url.startswith("unix://"):
        try:
            port = urlsplit(url).port
        except ValueError as exc:
            raise UsageError(f"the Redis URL {url!r} is not valid ({exc})") from None
        if port is not None:
            check_port(port, "the Redis URL's port")
    client: Redis = redis.asyncio.from_url(url)
    return client


class RedisLimiter:
    """A limiter shared by every process that uses the same Redis ``key``.

    ``capacity``: the credential's allowance. ``lease``: seconds a slot stays held without
    renewal (a holder that dies frees its slot after at most this). ``poll``: the first
    wait between attempts while queued (it grows to 50 ms). Works under asyncio (redis-py's
    async client is asyncio-only).
    """

    def __init__(
        self,
        url: str,
        *,
        key: str,
        capacity: int = 1,
        lease: float = 10.0,
        poll: float = 0.002,
        client: Redis | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        if not isinstance(key, str) or not key:
            raise UsageError("key must be a non-empty string, e.g. 'locus:partner-111'")
        check_number(lease, "lease", minimum=0.2, above=True)
        check_number(poll, "poll", above=True)
        if not callable(sleep):
            raise InvalidArgumentType(f"sleep must be callable, not {type(sleep).__name__}")
        self._capacity = check_whole(capacity, "capacity")
        self._redis = client if client is not None else _connect(url)
        self._owns_client = client is None
        self.key = key
        self.lease = float(lease)
        self._poll = poll
        self._sleep = sleep
        self._local = LocalLimiter(self._capacity, sleep=sleep)
        self._keys = [
            f"{key}:{part}" for part in ("holders", "queue", "waiting", "counter", "pause")
        ]
        self._acquire_script = self._redis.register_script(_ACQUIRE)
        self._renew_script = self._redis.register_script(_RENEW)
        self._withdraw_script = self._redis.register_script(_WITHDRAW)
        self._hold_script = self._redis.register_script(_HOLD)
        self._pause_script = self._redis.register_script(_PAUSE)

    def __repr__(self) -> str:
        return f"RedisLimiter(key={self.key!r}, capacity={self._capacity}, lease={self.lease:g})"

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def in_use(self) -> int:
        """Slots this process holds."""
        return self._local.in_use

    @property
    def waiting(self) -> int:
        """Callers of this process waiting for a slot."""
        return self._local.waiting

    async def holders(self) -> int:
        """Slots held across all processes right now (expired leases not counted)."""
        seconds, micros = await self._redis.time()
        return int(await self._redis.zcount(self._keys[0], seconds * 1000 + micros // 1000, "+inf"))

    async def _acquire(self) -> str:
        ticket = uuid.uuid4().hex
        delay = self._poll
        waiter_ttl = max(2000, int(self.lease * 1000))
        lease_ms = int(self.lease * 1000)
        try:
            while True:
                granted, wait_ms = await self._acquire_script(
                    keys=self._keys, args=[ticket, self._capacity, lease_ms, waiter_ttl]
                )
                if int(granted):
                    return ticket
                await self._sleep(max(int(wait_ms) / 1000, delay))
                delay = min(delay * 1.5, 0.05)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._withdraw_script(keys=self._keys[:3], args=[ticket])
            raise

    async def _renew(self, ticket: str) -> None:
        lease_ms = int(self.lease * 1000)
        while True:
            await self._sleep(self.lease / 3)
            try:
                kept = await self._renew_script(keys=self._keys[:1], args=[ticket, lease_ms])
            except Exception as exc:  # a renewal hiccup must not kill the request
                logger.warning(
                    "could not renew a Redis lease (%s); it may expire", type(exc).__name__
                )
                continue
            if not int(kept):
                logger.warning("a Redis lease expired while its request was on the wire")
                return

    @asynccontextmanager
    async def _slot(self, priority: Priority) -> AsyncIterator[Slot]:
        async with self._local.slot(priority) as local:
            ticket = await self._acquire()
            slot = Slot()
            try:
                async with anyio.create_task_group() as group:
                    group.start_soon(self._renew, ticket)
                    try:
                        yield slot
                    finally:
                        group.cancel_scope.cancel()
            finally:
                with anyio.CancelScope(shield=True):
                    await self._give_back(ticket, slot.hold)
                local.hold_for(slot.hold)

    async def _give_back(self, ticket: str, hold: float) -> None:
        """Withdraw the ticket, or (a hold) keep it counted until the hold ends: its lease
        then expires in Redis, so every process sees the slot busy for that long."""
        hold_ms = int(hold * 1000)
        if hold_ms > 0:
            await self._hold_script(keys=self._keys[:3], args=[ticket, hold_ms])
        else:
            await self._withdraw_script(keys=self._keys[:3], args=[ticket])

    def slot(self, priority: Priority = Priority.INTERACTIVE) -> AbstractAsyncContextManager[Slot]:
        return self._slot(Priority(priority))

    async def pause(self, seconds: float) -> None:
        """Hold every process's next grant back for ``seconds`` (shared cool-down)."""
        if seconds > 0:
            await self._pause_script(keys=self._keys[4:5], args=[int(seconds * 1000)])

    def record(self, *, rate_limited: bool, saturated: bool, level: int = 0) -> None:
        """The allowance is given, not learned: feedback is ignored."""

    async def reset(self) -> None:
        """Forget every lease, ticket and pause under this key (tests and recovery)."""
        await self._redis.delete(*self._keys)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._redis.aclose()


class RedisTokenStore:
    """A token shared by every process using the same Redis ``key``.

    Pass it to a provider (``PasswordGrant(..., store=RedisTokenStore(url, key=...))``):
    processes reuse the stored token while it is fresh, and one of them refreshes it under
    a Redis lock while the others wait and then reuse the new one. The token is stored in
    Redis (protect that Redis as you protect the credentials), expiring with the token.
    """

    def __init__(
        self,
        url: str,
        *,
        key: str,
        lock_timeout: float = 30.0,
        client: Redis | None = None,
    ) -> None:
        if not isinstance(key, str) or not key:
            raise UsageError("key must be a non-empty string, e.g. 'locus:partner-111:token'")
        check_number(lock_timeout, "lock_timeout", above=True)
        self._redis = client if client is not None else _connect(url)
        self._owns_client = client is None
        self.key = key
        self.lock_timeout = lock_timeout
        self._invalidate = self._redis.register_script(_INVALIDATE)

    def __repr__(self) -> str:
        return f"RedisTokenStore(key={self.key!r})"

    async def load(self) -> dict[str, Any] | None:
        """The stored token as saved (``expires_at`` is wall-clock unix seconds), or None."""
        raw = await self._redis.get(self.key)
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    async def save(self, value: dict[str, Any], ttl: float) -> None:
        await self._redis.set(self.key, json.dumps(value), px=max(1, int(ttl * 1000)))

    async def invalidate(self, access_token: str) -> None:
        """Drop the stored token if it is still ``access_token`` (a 401 came back for it)."""
        await self._invalidate(keys=[self.key], args=[access_token])

    def lock(self) -> AbstractAsyncContextManager[Any]:
        """The refresh lock (single flight across processes)."""
        return self._redis.lock(
            f"{self.key}:lock", timeout=self.lock_timeout, blocking_timeout=self.lock_timeout
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._redis.aclose()
