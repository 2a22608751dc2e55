"""Fan-out: many jobs on a few concurrent workers, the first error as itself.

Owns: ``run_bounded``, which both providers' multi-request calls use (windows of a series,
spans of alerts, a prefetch batch). Must never: hold a limiter slot (the jobs do, one
request at a time, through the session).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio

__all__ = ["run_bounded"]


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
