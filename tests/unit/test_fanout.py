"""run_in_thread: file work finishes before its caller goes on, and never hangs a cancelled one."""

from __future__ import annotations

import asyncio
import threading

import anyio
import pytest

from locus_async._shell.fanout import run_in_thread


class _HeldWork:
    """File work that starts, then waits until the test releases it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.done: list[str] = []

    def __call__(self) -> None:
        self.entered.set()
        self.release.wait()
        self.done.append("written")


@pytest.mark.anyio
async def test_a_result_and_an_error_come_back_as_themselves() -> None:
    """The work's return value is returned and its exception raised unchanged."""

    def fail() -> None:
        raise ValueError("disk full")

    assert await run_in_thread(lambda a, b: a + b, 2, 3) == 5
    with pytest.raises(ValueError, match="disk full"):
        await run_in_thread(fail)


@pytest.mark.anyio
async def test_work_cancelled_before_it_starts_never_runs_and_never_hangs() -> None:
    """A cancel already pending when the call begins returns at once and the work never runs."""
    ran: list[int] = []
    with anyio.CancelScope() as scope:
        scope.cancel()
        await run_in_thread(ran.append, 1)
    assert scope.cancelled_caught
    assert await run_in_thread(len, "next") == 4  # the next call goes through at once
    assert ran == []


@pytest.mark.anyio
async def test_work_cancelled_while_running_is_finished_before_the_cancel_goes_on() -> None:
    """A cancel that lands while the work runs waits for the work to end, then propagates."""
    work = _HeldWork()
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as group:
            group.start_soon(run_in_thread, work)
            await anyio.to_thread.run_sync(work.entered.wait)
            scope.cancel()
            work.release.set()
    assert work.done == ["written"]
    assert await run_in_thread(len, "next") == 4  # the next call goes through at once


@pytest.mark.asyncio
async def test_a_native_asyncio_cancel_waits_for_running_work_and_skips_unstarted_work() -> None:
    """task.cancel() neither abandons running work nor hangs on work that never started."""
    work = _HeldWork()
    task = asyncio.ensure_future(run_in_thread(work))
    await asyncio.to_thread(work.entered.wait)
    task.cancel()
    await asyncio.sleep(0)
    assert not task.done()  # still waiting for the thread, not abandoning it
    work.release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert work.done == ["written"]

    ran: list[int] = []
    early = asyncio.ensure_future(run_in_thread(ran.append, 1))
    await asyncio.sleep(0)  # it is now at its first await, before the thread has the work
    early.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(early, timeout=60)
    assert ran == []
    assert await run_in_thread(len, "next") == 4  # the next call goes through at once
