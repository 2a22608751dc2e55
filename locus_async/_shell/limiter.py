"""Per-credential concurrency: how many requests may be on the wire at once.

Owns: the ``Limiter`` interface every client request goes through, and ``LocalLimiter``:
strict FIFO within a priority, interactive before background, a shared pause after a 429,
and a capacity that may change at run time (the adaptive limit changes it).

Rules it keeps:
* A released slot is handed directly to the oldest waiter of the most urgent priority, so a
  newcomer can never overtake a waiter (no barging) and FIFO is exact.
* A waiter cancelled after it was handed a slot passes the slot on; a waiter cancelled before
  leaves the queue. Either way capacity is never lost.
* During a pause (after a 429) every slot holder waits out the pause before sending: nobody
  can use the allowance then, so holding the slot costs nothing and keeps the order.
* Cancellation can never leak a slot: whatever cancels the caller (asyncio's ``cancel()``,
  ``asyncio.timeout``, a failing TaskGroup sibling, an anyio cancel scope, trio) and at
  whichever await point, the slot is either not taken or given back.
* A slot given back with ``Slot.hold_for(seconds)`` (its request was cancelled or timed out
  while the server may still be working on it) stays busy that long: whoever gets it next
  waits out the rest before sending, so the server never sees more than the allowance.
Must never: sleep except for a pause or a hold, or know anything about HTTP.
"""

from __future__ import annotations

import enum
import heapq
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol, runtime_checkable

import anyio
import anyio.lowlevel

from locus_async._core.checks import check_whole
from locus_async.errors import UsageError

__all__ = ["AdaptiveLimiter", "Limiter", "LocalLimiter", "Priority", "Slot"]


class Priority(enum.IntEnum):
    """Queue lanes: lower value is served first."""

    INTERACTIVE = 0
    BACKGROUND = 1


class Slot:
    """One held slot, as yielded by ``Limiter.slot()``.

    ``hold_for(seconds)``: when the slot is given back, keep it busy ``seconds`` longer (the
    server may still be working on a request that was cancelled or timed out on the wire).
    The longest hold asked for wins.
    """

    __slots__ = ("_hold", "not_before")

    def __init__(self) -> None:
        self._hold = 0.0
        #: The instant (limiter clock) before which this holder may not send: the end of
        #: the hold a previous holder left on the slot.
        self.not_before = 0.0

    @property
    def hold(self) -> float:
        return self._hold

    def hold_for(self, seconds: float) -> None:
        self._hold = max(self._hold, float(seconds))

    def __repr__(self) -> str:
        return f"Slot(hold={self._hold:g})"


@runtime_checkable
class Limiter(Protocol):
    """What the client needs from a concurrency limiter (local, adaptive or Redis-backed)."""

    @property
    def capacity(self) -> int:
        """Requests allowed on the wire at once right now."""
        ...

    @property
    def in_use(self) -> int:
        """Slots held right now (by this process, for a distributed limiter)."""
        ...

    def slot(self, priority: Priority = Priority.INTERACTIVE) -> AbstractAsyncContextManager[Slot]:
        """Hold one slot for the body of the ``async with``; the body gets a ``Slot``."""
        ...

    async def pause(self, seconds: float) -> None:
        """Hold every new send back for ``seconds`` (extends, never shortens, a pause)."""
        ...

    def record(self, *, rate_limited: bool, saturated: bool, level: int = 0) -> None:
        """Feedback after each response: was it a 429; were all slots busy when it was sent;
        how many requests were on the wire (itself included) when it was sent."""
        ...

    async def aclose(self) -> None:
        """Release resources (connections of a distributed limiter)."""
        ...


class _Waiter:
    __slots__ = ("event", "granted")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.granted = False


class LocalLimiter:
    """An in-process limiter for one credential. Share one instance between clients that
    share a credential; use ``RedisLimiter`` when processes share it."""

    def __init__(
        self,
        capacity: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self._capacity = check_whole(capacity, "max_concurrency")
        self._in_use = 0
        self._queues: dict[Priority, deque[_Waiter]] = {p: deque() for p in Priority}
        self._paused_until = 0.0
        #: Instants until which slots given back with a hold stay busy (a min-heap).
        self._holds: list[float] = []
        self._clock = clock
        self._sleep = sleep

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(capacity={self._capacity}, in_use={self._in_use}, waiting={self.waiting})"

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def in_use(self) -> int:
        """Slots held right now."""
        return self._in_use

    @property
    def waiting(self) -> int:
        """Callers queued for a slot."""
        return sum(len(q) for q in self._queues.values())

    @property
    def paused_until(self) -> float:
        return self._paused_until

    def set_capacity(self, capacity: int) -> None:
        """Change the allowance; waiters are admitted at once if it grew."""
        self._capacity = check_whole(capacity, "capacity")
        while self._in_use < self._capacity and self._hand_off():
            self._in_use += 1

    def _next_waiter(self) -> _Waiter | None:
        for priority in Priority:
            queue = self._queues[priority]
            if queue:
                return queue.popleft()
        return None

    def _hand_off(self) -> bool:
        waiter = self._next_waiter()
        if waiter is None:
            return False
        waiter.granted = True
        waiter.event.set()
        return True

    async def _acquire(self, priority: Priority) -> None:
        """Take a slot, or raise with none taken: every path that counts a slot in either
        gives it back or returns it to the caller, whatever is raised."""
        await anyio.lowlevel.checkpoint_if_cancelled()
        if self._in_use < self._capacity and not self.waiting:
            self._in_use += 1
            try:
                await anyio.lowlevel.cancel_shielded_checkpoint()
            except BaseException:  # a native asyncio cancellation is not shielded: give back
                self._release()
                raise
            return
        waiter = _Waiter()
        self._queues[priority].append(waiter)
        try:
            await waiter.event.wait()
        except BaseException:
            if waiter.granted:
                self._release()  # it was ours already: pass it on
            else:
                self._queues[priority].remove(waiter)
            raise

    def _release(self, hold_until: float = 0.0) -> None:
        if hold_until > self._clock():
            heapq.heappush(self._holds, hold_until)
        if self._in_use > self._capacity or not self._hand_off():
            self._in_use -= 1

    def _claim_hold(self) -> float:
        """For a new holder: the end of the hold it must wait out (0 if a clean slot is free).
        Holds that ended are forgotten; a clean slot is taken before a held one."""
        holds = self._holds
        now = self._clock()
        while holds and holds[0] <= now:
            heapq.heappop(holds)
        if holds and self._in_use + len(holds) > self._capacity:
            return heapq.heappop(holds)
        return 0.0

    @property
    def held(self) -> int:
        """Slots given back with a hold that has not ended yet."""
        now = self._clock()
        return sum(1 for until in self._holds if until > now)

    @asynccontextmanager
    async def _slot(self, priority: Priority) -> AsyncIterator[Slot]:
        await self._acquire(priority)
        slot = Slot()
        try:
            slot.not_before = self._claim_hold()
            while (left := max(self._paused_until, slot.not_before) - self._clock()) > 0:
                await self._sleep(left)
            yield slot
        finally:
            until = self._clock() + slot.hold if slot.hold > 0 else 0.0
            self._release(max(slot.not_before, until))

    def slot(self, priority: Priority = Priority.INTERACTIVE) -> AbstractAsyncContextManager[Slot]:
        return self._slot(Priority(priority))

    async def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock() + max(0.0, seconds))

    def record(self, *, rate_limited: bool, saturated: bool, level: int = 0) -> None:
        """A fixed limiter ignores feedback."""

    async def aclose(self) -> None:
        """Nothing to release."""


class AdaptiveLimiter(LocalLimiter):
    """A limiter that finds an unknown allowance by itself (after Netflix's AIMD limit).

    Starts at ``initial`` (1). While every slot is busy and no 429 comes back, the limit
    grows additively (one more slot per round of successes at the current limit). A 429
    halves it and remembers the level that was too high; the limit then grows back only to
    one below that level, and probes it again after ``probe_after`` clean saturated
    successes, so a steady state costs one 429 per probe. Never above ``ceiling``.
    """

    HISTORY = 10_000

    def __init__(
        self,
        ceiling: int = 16,
        *,
        initial: int = 1,
        probe_after: int = 200,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.ceiling = check_whole(ceiling, "ceiling")
        start = check_whole(initial, "initial")
        if start > self.ceiling:
            raise UsageError("initial must not exceed ceiling")
        super().__init__(start, clock=clock, sleep=sleep)
        self.probe_after = check_whole(probe_after, "probe_after")
        self._limit = float(start)
        self._too_high: int | None = None  # the smallest limit that met a 429
        self._calm = 0  # saturated successes since the last 429
        #: Capacity after each feedback, the latest ``HISTORY`` of them (benchmarks, debugging).
        self.history: list[int] = []

    @property
    def limit(self) -> float:
        return self._limit

    def record(self, *, rate_limited: bool, saturated: bool, level: int = 0) -> None:
        if rate_limited:
            sent_at = level or self.capacity  # this many at once was one too many
            self._too_high = sent_at if self._too_high is None else min(self._too_high, sent_at)
            if sent_at <= self.capacity:  # a late echo of a congestion already halved: once
                self._limit = max(1.0, self._limit / 2)
            self._calm = 0
        elif saturated:
            self._calm += 1
            cap = self.ceiling
            if self._too_high is not None:
                if self._calm >= self.probe_after and self._too_high <= self.ceiling:
                    self._too_high += 1  # calm for long: allow probing the failed level
                    self._calm = 0
                cap = max(1, min(cap, self._too_high - 1))
            self._limit = min(float(cap), self._limit + 1.0 / self._limit)
        target = max(1, int(self._limit))
        if target != self.capacity:
            self.set_capacity(target)
        history = self.history
        history.append(self.capacity)
        if len(history) > 2 * self.HISTORY:
            del history[: -self.HISTORY]
