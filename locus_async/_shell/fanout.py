"""Fan-out: many jobs on a few concurrent workers, the first error as itself.

Owns: ``run_bounded``, which both providers' multi-request calls use (windows of a series,
spans of alerts, a prefetch batch), and ``run_in_thread`` (file work that must finish before
its caller goes on, even when cancelled). Must never: hold a limiter slot (the jobs do, one
request at a time, through the session).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread

__all__ = ["run_bounded", "run_in_thread"]

T = TypeVar("T")


async def run_bounded(
    count: int,
    workers: int,
    job: Callable[[int], Any],
) -> None:
    """Run ``job(0..count-1)`` with ``workers`` concurrent workers; the first error wins.

    Errors surface as themselves (not an ExceptionGroup): the first failing job cancels the
    rest and its exception is raised.
    """
    failure: list[BaseException] = []
    indexes = iter(range(count))

    async def worker(scope: anyio.CancelScope) -> None:
        for index in indexes:
            try:
                await job(index)
            except Exception as exc:
                if not failure:
                    failure.append(exc)
                scope.cancel()
                return

    async with anyio.create_task_group() as group:
        for _ in range(max(1, min(workers, count))):
            group.start_soon(worker, group.cancel_scope)
    if failure:
        raise failure[0]


async def run_in_thread(work: Callable[..., T], *args: Any) -> T:
    """``work(*args)`` in a worker thread, finished before this returns or raises, whatever
    cancels the caller. A native asyncio cancellation would otherwise abandon the wait but not
    the thread, which could then go on touching files after its caller let go of them (an
    output directory's lock, for one). Work that a cancellation stopped before it started
    never starts: the caller then has nothing to wait for."""
    outcome: list[tuple[bool, Any]] = []
    finished = threading.Event()
    claim = threading.Lock()
    state = {"started": False, "dropped": False}

    def job() -> None:
        with claim:
            if state["dropped"]:
                return
            state["started"] = True
        try:
            outcome.append((True, work(*args)))
        except BaseException as exc:  # handed to the caller below
            outcome.append((False, exc))
        finally:
            finished.set()

    try:
        await anyio.to_thread.run_sync(job)
    except BaseException:
        with claim:
            running = state["started"]
            state["dropped"] = True
        if running and not finished.is_set():
            try:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(finished.wait)
            except BaseException:  # cancelled again, natively: wait without the loop
                finished.wait()
        raise
    ok, value = outcome[0]
    if ok:
        return value  # type: ignore[no-any-return]
    raise value
