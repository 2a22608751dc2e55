"""An output directory that one run at a time owns: checks, the lock, atomic files.

Owns: refusing an unusable ``--out`` before any request (empty, a file, unwritable), the
run lock (``filelock``: an OS lock the kernel drops when its process dies, so a killed run
never blocks the next one), the holder record that a refused run quotes, the names of our
temporary files, and atomic writes (write a temporary file, fsync, rename). Must never:
remove a file that is not its own, or write anything before ``OutputDir.lock()``.

In the directory::

    .locus-backfill.lock             the OS lock (its content means nothing)
    _locus_backfill.owner.json       who holds the lock: host, pid, start time
    .locus-tmp-<32 hex>-<name>       a file being written (renamed to <name> when whole)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import filelock

from locus_async.errors import LocusError, UsageError

__all__ = ["LOCK_NAME", "OWNER_NAME", "OutputDir", "OutputLocked", "atomic_write"]

LOCK_NAME: Final = ".locus-backfill.lock"
OWNER_NAME: Final = "_locus_backfill.owner.json"
_TMP_PREFIX: Final = ".locus-tmp-"
# Ours, and only ours: this prefix, then a uuid4 hex, then the final name. Earlier versions
# wrote ``.tmp-<hex>-<name>`` for the data files and the checkpoint: those names are
# matched exactly, so a user's own ``.tmp-notes.txt`` is never touched.
_OUR_TMP: Final = re.compile(
    r"^\.locus-tmp-[0-9a-f]{32}-.+$"
    r"|^\.tmp-[0-9a-f]{32}-((component|site)-\d+_\d{8}T\d{6}Z_\d{8}T\d{6}Z\.(parquet|csv)"
    r"|_locus_backfill\.json)$"
)


class OutputLocked(LocusError):
    """Another run holds the output directory. ``holder`` is what it recorded (host, pid,
    started), possibly empty; nothing was written."""

    def __init__(self, message: str, *, holder: dict[str, Any]) -> None:
        super().__init__(message)
        self.holder = holder


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be fsynced
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write via ``write(tmp)``, fsync, then rename over ``path``: all or nothing."""
    tmp = path.with_name(f"{_TMP_PREFIX}{uuid.uuid4().hex}-{path.name}")
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    fsync_dir(path.parent)


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def is_our_temporary(name: str) -> bool:
    return bool(_OUR_TMP.match(name))


def _nearest_existing(path: Path) -> Path:
    current = path.absolute()
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


class OutputDir:
    """``--out``: checked when made (nothing is created), locked by ``lock()``."""

    def __init__(self, out: object, *, label: str = "out") -> None:
        if isinstance(out, str):
            if not out.strip():
                raise UsageError(f"{label} must name a directory; it is empty")
        elif not isinstance(out, os.PathLike):
            raise UsageError(f"{label} must be a path (str or os.PathLike), not {out!r}")
        self.path = Path(os.fspath(out))
        self._label = label
        self.check()

    def check(self) -> None:
        """Refuse, before any request, a path that cannot become our output directory."""
        try:
            self._check()
        except (OSError, ValueError) as exc:  # too long, a NUL byte, a dangling mount...
            if isinstance(exc, UsageError):
                raise
            reason = getattr(exc, "strerror", None) or str(exc)
            raise UsageError(
                f"{self._label} {str(self.path)[:200]!r} cannot be used ({reason})"
            ) from None

    def _check(self) -> None:
        path = self.path
        if path.exists() and not path.is_dir():
            raise UsageError(f"{self._label} {str(path)!r} is a file, not a directory")
        where = _nearest_existing(path)
        if not where.is_dir():
            raise UsageError(f"{self._label} {str(path)!r}: {str(where)!r} is not a directory")
        if not os.access(where, os.W_OK | os.X_OK):
            raise UsageError(f"{self._label} {str(path)!r}: {str(where)!r} is not writable")
        with contextlib.suppress(OSError, AttributeError):
            if os.statvfs(where).f_flag & os.ST_RDONLY:
                raise UsageError(
                    f"{self._label} {str(path)!r} is on a read-only filesystem ({str(where)!r})"
                )

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Create the directory and hold its lock for the body; refuse at once if another
        run holds it (``OutputLocked``, quoting the holder)."""
        self.check()
        self.path.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(
            str(self.path / LOCK_NAME), timeout=0, is_singleton=False, fallback_to_soft=False
        )
        try:
            lock.acquire()
        except filelock.Timeout:
            holder = self.holder()
            raise OutputLocked(
                f"{self._label} {str(self.path)!r} is in use by another run "
                f"({_describe(holder)}); wait for it to finish or use another directory",
                holder=holder,
            ) from None
        except (NotImplementedError, OSError) as exc:
            raise UsageError(
                f"{self._label} {str(self.path)!r} cannot be locked on this filesystem ({exc})"
            ) from None
        owner = self.path / OWNER_NAME
        try:
            record = {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "started": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            data = json.dumps(record).encode("utf-8")
            atomic_write(owner, lambda tmp: _write(tmp, data))
            yield
        finally:
            with contextlib.suppress(OSError):
                owner.unlink()
            lock.release()

    def holder(self) -> dict[str, Any]:
        """What the lock's holder recorded (empty if it has not yet, or it is unreadable)."""
        try:
            value = json.loads((self.path / OWNER_NAME).read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def remove_our_temporaries(self) -> int:
        """Remove temporary files a crashed run of ours left (call it holding the lock)."""
        removed = 0
        for entry in self.path.iterdir():
            if is_our_temporary(entry.name) and entry.is_file():
                with contextlib.suppress(OSError):
                    entry.unlink()
                    removed += 1
        return removed


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "holder not recorded yet"
    return (
        f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, "
        f"started {holder.get('started', '?')}"
    )
