"""Where a dataset lives: its data (what readers read) and its state (what runs keep),
on a local disk or an object store, with one run at a time holding it.

Owns: reading ``--out`` (a path, ``file://``, ``s3://``, ``gs://``, ``az://``...) into a
``Store``; refusing an unusable one before any request; the run lock; atomic writes; the
names of our temporary files. Must never: remove a file that is not its own, or write
anything before ``Store.lock()``.

Two places, so that readers never trip over our state (polars and DuckDB read every file
under a directory, hidden ones included)::

    out/                       only data files: pyarrow, pandas, polars, DuckDB read it
      month=2024-10/...        (partitions; see ``locus._core.layout``)
    out.locus/                 the dataset's state, beside it
      checkpoint.json          what the dataset is and how far it is
      lock                     the run lock (local: an OS lock; object store: a lease)
      owner.json               who holds it (local; on an object store the lease says)
      tmp/                     files being written (local: renamed into place when whole)

Local files are written to ``tmp/``, flushed and renamed (``filelock`` holds the OS lock,
which the kernel drops when its holder dies). On an object store (through ``fsspec``: s3fs,
gcsfs, adlfs) an object appears whole or not at all when its upload completes, so files
are written in place; the lock is a *lease* object created only if absent (S3's
conditional ``If-None-Match: *``), renewed by its holder and taken over (``If-Match`` its
ETag) only once expired, so a killed run blocks the next one for at most a lease.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

import filelock

from locus_async.errors import LocusError, UsageError

__all__ = [
    "LEASE_SECONDS",
    "LocalStore",
    "ObjectStore",
    "OutputLocked",
    "Store",
    "open_store",
]

logger = logging.getLogger("locus_async.store")

STATE_SUFFIX: Final = ".locus"
LOCK_NAME: Final = "lock"
OWNER_NAME: Final = "owner.json"
TMP_DIR: Final = "tmp"
#: An object-store lease lasts this long unless its holder renews it (every third of it).
LEASE_SECONDS: Final = 60.0
_TMP: Final = re.compile(r"\A[0-9a-f]{32}\.tmp\Z")
_REMOTE: Final = re.compile(r"\A([a-z][a-z0-9+.-]*)://(.*)\Z", re.DOTALL)


class OutputLocked(LocusError):
    """Another run holds the output. ``holder`` is what it recorded (host, pid, started),
    possibly empty; nothing was written."""

    def __init__(self, message: str, *, holder: dict[str, Any]) -> None:
        super().__init__(message)
        self.holder = holder


def writer(data: bytes) -> Callable[[IO[bytes]], None]:
    """A ``write`` callback that writes ``data``."""

    def write(handle: IO[bytes]) -> None:
        handle.write(data)

    return write


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be fsynced
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "holder not recorded yet"
    return (
        f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, "
        f"started {holder.get('started', '?')}"
    )


def _record() -> dict[str, Any]:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }


class Store:
    """A dataset's data and state. Partitions are directory names under the data root
    (``""``: the root itself); names are file names. Every method blocks (run them in a
    thread from async code)."""

    url: str
    label: str

    # -- checks and the lock ---------------------------------------------------------

    def check(self) -> None:
        """Refuse, before any request, an output that cannot become a dataset."""

    def exists(self) -> bool:
        """Whether the data root exists (a new dataset creates it when it first writes)."""
        raise NotImplementedError

    def lock(self) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def holder(self) -> dict[str, Any]:
        """What the lock's holder recorded (empty if nothing, or unreadable)."""
        raise NotImplementedError

    def remove_temporaries(self) -> int:
        """Remove what a killed run of ours was writing (holding the lock)."""
        return 0

    # -- state -----------------------------------------------------------------------

    def read_state(self, name: str) -> bytes | None:
        raise NotImplementedError

    def write_state(self, name: str, data: bytes) -> None:
        raise NotImplementedError

    def delete_state(self, name: str) -> None:
        raise NotImplementedError

    def state_url(self, name: str) -> str:
        raise NotImplementedError

    def list_state(self, prefix: str) -> list[str]:
        """The names (``prefix/...``) of the state files under ``prefix``, sorted."""
        raise NotImplementedError

    # -- data ------------------------------------------------------------------------

    def partitions(self) -> list[str]:
        """The partition directories under the data root (``key=value`` names)."""
        raise NotImplementedError

    def files(self, partition: str) -> list[str]:
        """The file names in one partition (``""``: the root), sorted; none if absent."""
        raise NotImplementedError

    def write(self, partition: str, name: str, write: Callable[[IO[bytes]], None]) -> None:
        """Write a file whole or not at all through ``write(handle)``."""
        raise NotImplementedError

    def open(self, partition: str, name: str) -> IO[bytes]:
        raise NotImplementedError

    def read_bytes(self, partition: str, name: str) -> bytes | None:
        """A data file's bytes, or None if it is not there."""
        try:
            with self.open(partition, name) as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    def delete(self, partition: str, names: Iterable[str]) -> None:
        """Remove these files (those already gone are no error)."""
        raise NotImplementedError

    def data_url(self, partition: str = "", name: str = "") -> str:
        raise NotImplementedError


# --------------------------------------------------------------------------- local disk


class LocalStore(Store):
    """A dataset on a local (or mounted) filesystem."""

    def __init__(self, path: Path, *, label: str, url: str) -> None:
        self.path = path
        self.state = path.with_name(path.name + STATE_SUFFIX)
        self.label = label
        self.url = url
        self.check()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.path)!r})"

    def check(self) -> None:
        try:
            self._check()
        except (OSError, ValueError) as exc:  # too long, a NUL byte, a dangling mount...
            if isinstance(exc, UsageError):
                raise
            reason = getattr(exc, "strerror", None) or str(exc)
            raise UsageError(
                f"{self.label} {str(self.path)[:200]!r} cannot be used ({reason})"
            ) from None

    def _check(self) -> None:
        for path in (self.path, self.state):
            if path.exists() and not path.is_dir():
                raise UsageError(f"{self.label} {str(path)!r} is a file, not a directory")
        where = _nearest_existing(self.path.parent)
        if not where.is_dir():
            raise UsageError(f"{self.label} {str(self.path)!r}: {str(where)!r} is not a directory")
        for path in (self.path, self.state):
            target = path if path.exists() else where
            if not os.access(target, os.W_OK | os.X_OK):
                raise UsageError(
                    f"{self.label} {str(self.path)!r}: {str(target)!r} is not writable"
                )
        with contextlib.suppress(OSError, AttributeError):
            if os.statvfs(where).f_flag & os.ST_RDONLY:
                raise UsageError(
                    f"{self.label} {str(self.path)!r} is on a read-only filesystem ({str(where)!r})"
                )

    def exists(self) -> bool:
        return self.path.is_dir()

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Create both directories and hold the lock for the body; refuse at once if
        another run holds it (``OutputLocked``, quoting the holder)."""
        self.check()
        self.state.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(
            str(self.state / LOCK_NAME), timeout=0, is_singleton=False, fallback_to_soft=False
        )
        try:
            lock.acquire()
        except filelock.Timeout:
            holder = self.holder()
            raise OutputLocked(
                f"{self.label} {str(self.path)!r} is in use by another run "
                f"({_describe(holder)}); wait for it to finish or use another directory",
                holder=holder,
            ) from None
        except (NotImplementedError, OSError) as exc:
            raise UsageError(
                f"{self.label} {str(self.path)!r} cannot be locked on this filesystem ({exc})"
            ) from None
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._tmp().mkdir(exist_ok=True)
            self.write_state(OWNER_NAME, json.dumps(_record()).encode("utf-8"))
            yield
        finally:
            with contextlib.suppress(OSError):
                (self.state / OWNER_NAME).unlink()
            lock.release()

    def _tmp(self) -> Path:
        # Renames are atomic within one filesystem: if the data root is a mount point of
        # its own, temporaries go to a hidden directory inside it instead.
        try:
            if os.stat(self.state).st_dev != os.stat(self.path).st_dev:
                return self.path / ".locus-tmp"
        except OSError:
            pass
        return self.state / TMP_DIR

    def holder(self) -> dict[str, Any]:
        try:
            value = json.loads((self.state / OWNER_NAME).read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def remove_temporaries(self) -> int:
        removed = 0
        tmp = self._tmp()
        for entry in tmp.iterdir() if tmp.is_dir() else ():
            if _TMP.match(entry.name) and entry.is_file():
                with contextlib.suppress(OSError):
                    entry.unlink()
                    removed += 1
        return removed

    def _atomic(self, path: Path, write: Callable[[IO[bytes]], None]) -> None:
        tmp = self._tmp() / f"{uuid.uuid4().hex}.tmp"
        try:
            with open(tmp, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        fsync_dir(path.parent)

    def read_state(self, name: str) -> bytes | None:
        try:
            return (self.state / name).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def write_state(self, name: str, data: bytes) -> None:
        path = self.state / name
        if "/" in name:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._atomic(path, writer(data))

    def delete_state(self, name: str) -> None:
        path = self.state / name
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        parent = path.parent
        while parent != self.state:  # emptied subdirectories go with their last file
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def state_url(self, name: str) -> str:
        return str(self.state / name)

    def list_state(self, prefix: str) -> list[str]:
        where = self.state / prefix
        if not where.is_dir():
            return []
        return sorted(p.relative_to(self.state).as_posix() for p in where.rglob("*") if p.is_file())

    def partitions(self) -> list[str]:
        if not self.path.is_dir():
            return []
        return sorted(p.name for p in self.path.iterdir() if p.is_dir() and "=" in p.name)

    def files(self, partition: str) -> list[str]:
        where = self.path / partition if partition else self.path
        try:
            return sorted(p.name for p in where.iterdir() if p.is_file())
        except (FileNotFoundError, NotADirectoryError):
            return []

    def write(self, partition: str, name: str, write: Callable[[IO[bytes]], None]) -> None:
        where = self.path / partition if partition else self.path
        where.mkdir(exist_ok=True)
        self._atomic(where / name, write)

    def open(self, partition: str, name: str) -> IO[bytes]:
        return open(self.path / partition / name, "rb")

    def delete(self, partition: str, names: Iterable[str]) -> None:
        where = self.path / partition if partition else self.path
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                (where / name).unlink()
        if partition and where.is_dir() and not any(where.iterdir()):
            with contextlib.suppress(OSError):
                where.rmdir()

    def data_url(self, partition: str = "", name: str = "") -> str:
        return str(Path(self.path, partition, name)) if partition or name else str(self.path)

    def discard(self) -> None:
        """Remove the state directory of a dataset that holds no data (tests, repair)."""
        shutil.rmtree(self.state, ignore_errors=True)


def _nearest_existing(path: Path) -> Path:
    current = path.absolute()
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


# --------------------------------------------------------------------------- object stores


class ObjectStore(Store):
    """A dataset on an object store through an ``fsspec`` filesystem."""

    def __init__(
        self,
        fs: Any,
        root: str,
        *,
        label: str,
        url: str,
        lease_seconds: float = LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.fs = fs
        self.protocol = url.split("://", 1)[0]
        self.root = root.rstrip("/")
        self.state = self.root + STATE_SUFFIX
        self.label = label
        self.url = url
        self.lease_seconds = lease_seconds
        self.clock = clock
        self._lease: dict[str, Any] | None = None
        self._lost = False

    def __repr__(self) -> str:
        return f"ObjectStore({self.url!r})"

    def _path(self, partition: str, name: str = "") -> str:
        return "/".join(p for p in (self.root, partition, name) if p)

    def exists(self) -> bool:
        return bool(self.fs.exists(self.root))

    # -- the lease -------------------------------------------------------------------

    def check(self) -> None:
        """The bucket exists and answers (one request to the store, none to the API)."""
        bucket = self.root.split("/", 1)[0]
        try:
            found = self.fs.exists(bucket)
        except OSError as exc:  # credentials, endpoint, permissions: one line
            raise UsageError(f"{self.label} {self.url!r} cannot be used ({exc})") from None
        if not found:
            raise UsageError(f"{self.label} {self.url!r}: the bucket {bucket!r} does not exist")

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        self.check()
        key = f"{self.state}/{LOCK_NAME}"
        token = uuid.uuid4().hex
        self._acquire(key, token)
        stop = threading.Event()
        renewer = threading.Thread(
            target=self._renew, args=(key, token, stop), name="locus-lease", daemon=True
        )
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join()
            self._release(key, token)

    def _body(self, token: str) -> bytes:
        record = {**_record(), "token": token, "expires": self.clock() + self.lease_seconds}
        return json.dumps(record).encode("utf-8")

    def _acquire(self, key: str, token: str) -> None:
        try:
            self.fs.pipe_file(key, self._body(token), mode="create")
        except FileExistsError:
            holder, etag = self._read_lease(key)
            expires = holder.get("expires")
            if not isinstance(expires, int | float) or expires > self.clock():
                shown = {k: v for k, v in holder.items() if k in ("host", "pid", "started")}
                raise OutputLocked(
                    f"{self.label} {self.url!r} is in use by another run ({_describe(shown)}); "
                    "wait for it to finish or use another prefix",
                    holder=shown,
                ) from None
            try:  # its holder stopped renewing it: take it over, unless another run did
                self.fs.pipe_file(key, self._body(token), IfMatch=etag)
            except OSError:
                raise OutputLocked(
                    f"{self.label} {self.url!r} was just taken by another run",
                    holder={},
                ) from None
            logger.warning("took over %s: its lease expired", self.state_url(LOCK_NAME))
        self._lease = {"token": token, "etag": self._read_lease(key)[1]}
        self._lost = False

    def _read_lease(self, key: str) -> tuple[dict[str, Any], str | None]:
        try:
            info = self.fs.info(key, refresh=True)
            body = json.loads(self.fs.cat_file(key))
        except (FileNotFoundError, ValueError):
            return {}, None
        return (body if isinstance(body, dict) else {}), info.get("ETag")

    def _renew(self, key: str, token: str, stop: threading.Event) -> None:
        while not stop.wait(self.lease_seconds / 3):
            lease = self._lease
            if lease is None or lease["token"] != token:
                return
            try:
                self.fs.pipe_file(key, self._body(token), IfMatch=lease["etag"])
                lease["etag"] = self._read_lease(key)[1]
            except OSError as exc:
                self._lost = True
                logger.error("lost the lease on %s (%s)", self.url, exc)  # noqa: TRY400
                return

    def _release(self, key: str, token: str) -> None:
        holder, _ = self._read_lease(key)
        if holder.get("token") == token:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(key)
        self._lease = None

    def _held(self) -> None:
        if self._lost:
            raise OutputLocked(
                f"{self.label} {self.url!r}: this run's lease was lost (paused longer than "
                f"{self.lease_seconds:.0f} s?); stopped before writing more",
                holder={},
            )

    def holder(self) -> dict[str, Any]:
        holder, _ = self._read_lease(f"{self.state}/{LOCK_NAME}")
        return {k: v for k, v in holder.items() if k in ("host", "pid", "started")}

    # -- state and data --------------------------------------------------------------

    def read_state(self, name: str) -> bytes | None:
        try:
            return bytes(self.fs.cat_file(f"{self.state}/{name}"))
        except FileNotFoundError:
            return None

    def write_state(self, name: str, data: bytes) -> None:
        self._held()
        self.fs.pipe_file(f"{self.state}/{name}", data)

    def delete_state(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(f"{self.state}/{name}")

    def state_url(self, name: str) -> str:
        return f"{self.protocol}://{self.state}/{name}"

    def list_state(self, prefix: str) -> list[str]:
        try:
            found = self.fs.find(f"{self.state}/{prefix}", refresh=True)
        except FileNotFoundError:
            return []
        return sorted(p[len(self.state) + 1 :] for p in found)

    def partitions(self) -> list[str]:
        try:
            entries = self.fs.ls(self.root, detail=True, refresh=True)
        except FileNotFoundError:
            return []
        names = (
            e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e["type"] == "directory"
        )
        return sorted(n for n in names if "=" in n)

    def files(self, partition: str) -> list[str]:
        try:
            entries = self.fs.ls(self._path(partition), detail=True, refresh=True)
        except FileNotFoundError:
            return []
        return sorted(e["name"].rsplit("/", 1)[-1] for e in entries if e["type"] == "file")

    def write(self, partition: str, name: str, write: Callable[[IO[bytes]], None]) -> None:
        # Written whole in memory first: an upload that fails half-way must not complete
        # (a buffered remote file would commit what it has when closed by the error).
        self._held()
        buffer = io.BytesIO()
        write(buffer)
        self.fs.pipe_file(self._path(partition, name), buffer.getvalue())

    def open(self, partition: str, name: str) -> IO[bytes]:
        handle: IO[bytes] = self.fs.open(self._path(partition, name), "rb")
        return handle

    def delete(self, partition: str, names: Iterable[str]) -> None:
        paths = [self._path(partition, name) for name in names]
        if paths:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm(paths)

    def data_url(self, partition: str = "", name: str = "") -> str:
        return f"{self.protocol}://{self._path(partition, name)}"


# --------------------------------------------------------------------------- opening


def open_store(
    out: object, *, label: str = "out", storage_options: dict[str, Any] | None = None
) -> Store:
    """The store ``out`` names: a path or ``file://`` URL (local), or another fsspec URL
    (``s3://bucket/prefix``, ``gs://``, ``az://``...; its filesystem package must be
    installed, and ``storage_options`` are passed to it)."""
    if isinstance(out, str):
        if not out.strip():
            raise UsageError(f"{label} must name a directory; it is empty")
    elif not isinstance(out, os.PathLike):
        raise UsageError(f"{label} must be a path (str or os.PathLike), not {out!r}")
    text = os.fspath(out)
    if not isinstance(text, str):
        raise UsageError(f"{label} must be a text path, not bytes")
    remote = _REMOTE.match(text)
    if remote is None or remote.group(1) == "file":
        path = Path(remote.group(2) if remote else text)
        if path.absolute() == path.absolute().parent:
            raise UsageError(f"{label} {text!r} has no parent to keep the dataset's state in")
        return LocalStore(Path(os.path.normpath(path)), label=label, url=text)
    protocol, rest = remote.groups()
    root = rest.strip("/")
    if "/" not in root:
        raise UsageError(
            f"{label} {text!r} needs a prefix ({protocol}://bucket/name): the dataset's "
            "state is kept beside it, in name.locus"
        )
    try:
        import fsspec
    except ImportError:
        raise UsageError(
            f"{label} {text!r} needs fsspec and its {protocol} filesystem: pip install "
            f"'locus-async[{_EXTRAS.get(protocol, 's3')}]'"
        ) from None
    try:
        # A new instance each time: fsspec's cache would keep an old endpoint or credentials.
        fs = fsspec.filesystem(protocol, skip_instance_cache=True, **(storage_options or {}))
    except (ImportError, ValueError) as exc:
        raise UsageError(
            f"{label} {text!r}: no filesystem for {protocol}:// ({str(exc).splitlines()[0]}); "
            f"pip install 'locus-async[{_EXTRAS.get(protocol, 's3')}]'"
        ) from None
    return ObjectStore(fs, root, label=label, url=f"{protocol}://{root}")


_EXTRAS: Final = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "az": "azure",
    "abfs": "azure",
}
