"""What a Dask worker needs to run the partitions safely (imported only where Dask is).

Owns: ``ProfilerOff``, the worker plugin that stops a worker's statistical profiler on
Python 3.11. That profiler calls ``sys._current_frames()`` every 10 ms from the worker's
event loop; on 3.11 a garbage collection that starts inside that call can deadlock the
whole process (CPython gh-106883, fixed from 3.12 only): the worker stops answering the
scheduler and every thread waits for the interpreter lock, until the scheduler gives the
worker up minutes later. Dask already leaves its profiling thread off on 3.11, not this
callback. A worker of ours runs several event-loop threads and makes garbage steadily,
which makes the deadlock frequent (3 stalls in 46 runs of a fleet on a 2-core machine
under load; none in 80 with this plugin). Must never: touch anything of the worker but
its two profiling callbacks.
"""

from __future__ import annotations

import sys
from typing import Any, Final

from distributed.diagnostics.plugin import WorkerPlugin

__all__ = ["PROFILER_CALLBACKS", "ProfilerOff", "profiler_deadlocks"]

#: The worker's periodic callbacks that sample every thread's frames.
PROFILER_CALLBACKS: Final = ("profile", "profile-cycle")


def profiler_deadlocks(version: tuple[object, ...] | None = None) -> bool:
    """Whether ``sys._current_frames()`` can deadlock with the GC on this Python."""
    major, minor = (sys.version_info if version is None else version)[:2]
    return (major, minor) < (3, 12)


class ProfilerOff(WorkerPlugin):
    """Registered by every run on a cluster (once per worker, restarts included): on
    Python 3.11, the worker's profiling callbacks are stopped and removed (so a worker
    still starting never starts them). The Dask dashboard shows no profile for it."""

    name = "locus-async-profiler-off"
    #: Registered again by every run: the first registration stands.
    idempotent = True

    def setup(self, worker: Any) -> None:  # runs on the worker's event loop
        if not profiler_deadlocks():
            return
        for name in PROFILER_CALLBACKS:
            callback = worker.periodic_callbacks.pop(name, None)
            if callback is not None:
                callback.stop()
