"""Resumable backfills: entities x fields x range x granularity into Parquet or CSV files.

Owns: expanding the entities (components, sites, every component of a site or partner,
optionally by node type), planning windows (the time-series planner), fetching them
through the client's limiter at background priority, and writing each finished window
atomically. Must never: write a token or a secret anywhere, leave a partial file, or
write a row twice.

On disk (``out/``)::

    _locus_backfill.json            the spec and the failed windows (no secrets)
    component-54369_20241001T070000Z_20241031T065500Z.parquet
    ...                             one file per finished window

A window is done exactly when its file exists: files are written under a ``.tmp-`` name,
flushed to disk and then renamed, so a crash leaves either the whole file or none.
Running the same backfill again skips finished windows and retries the rest. Names
starting with ``_`` or ``.`` are ignored by Parquet readers, so
``pyarrow.parquet.read_table(out)`` and ``pandas.read_parquet(out)`` read the rows as one
table: ``id`` int64, ``ts`` timestamp (UTC), one float64 column per field.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import anyio
import anyio.to_thread
import attrs

from ._core.query import DataQuery, check_id, prepare_data_query
from ._core.windows import Window, plan_windows
from ._limiter import Priority
from .errors import AuthenticationError, LocusError, UsageError
from .models import Granularity
from .timeseries import TimeSeries, fetch_window

if TYPE_CHECKING:
    from .client import LocusClient

__all__ = ["Backfill", "BackfillProgress", "BackfillResult", "BackfillSpec", "WindowFailure"]

logger = logging.getLogger("locus_async.backfill")

CHECKPOINT: Final = "_locus_backfill.json"
_FORMAT_VERSION: Final = 1

Format = Literal["parquet", "csv"]


def _ids(values: Iterable[int], name: str) -> tuple[int, ...]:
    return tuple(dict.fromkeys(check_id(v, name) for v in values))


@attrs.frozen
class BackfillSpec:
    """What to backfill. Entities come from any mix of the id lists; node types filter the
    components found through ``site_components`` and ``partner_components``."""

    fields: tuple[str, ...]
    start: datetime | str
    end: datetime | str
    tz: str
    gran: str
    components: tuple[int, ...] = ()
    sites: tuple[int, ...] = ()
    site_components: tuple[int, ...] = ()
    partner_components: tuple[int, ...] = ()
    node_types: tuple[str, ...] = ()
    format: Format = "parquet"

    def query(self) -> DataQuery:
        query = prepare_data_query(
            fields=list(self.fields), start=self.start, end=self.end, tz=self.tz, gran=self.gran
        )
        if query.gran is Granularity.LATEST:
            raise UsageError("a backfill needs a range; latest is a single request (use data)")
        return query

    def check(self) -> DataQuery:
        """Validate everything that can be validated before any request."""
        if not (self.components or self.sites or self.site_components or self.partner_components):
            raise UsageError(
                "nothing to backfill: give components, sites, or a site's or partner's components"
            )
        _ids(self.components, "component id")
        _ids(self.sites, "site id")
        _ids(self.site_components, "site id")
        _ids(self.partner_components, "partner id")
        if self.format not in ("parquet", "csv"):
            raise UsageError(f"format must be parquet or csv, not {self.format!r}")
        return self.query()

    def fingerprint(self, query: DataQuery) -> dict[str, Any]:
        """What must not change between runs into one directory (no secrets here)."""
        return {
            "fields": list(query.fields),
            "gran": query.gran.value,
            "tz": query.tz.key,
            "start": query.start,
            "end": query.end,
            "format": self.format,
            "components": list(self.components),
            "sites": list(self.sites),
            "site_components": list(self.site_components),
            "partner_components": list(self.partner_components),
            "node_types": sorted(t.upper() for t in self.node_types),
        }


@attrs.frozen
class WindowFailure:
    """A window that failed after retries; it is retried by the next run."""

    kind: str
    entity_id: int
    start: str
    end: str
    error: str


@attrs.define
class BackfillProgress:
    """Live counters, passed to the progress callback after every window."""

    windows_total: int = 0
    windows_done: int = 0
    windows_skipped: int = 0
    windows_failed: int = 0
    rows: int = 0
    requests: int = 0
    rate_limited: int = 0
    retries: int = 0
    started: float = attrs.field(factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def remaining(self) -> int:
        return self.windows_total - self.windows_done - self.windows_skipped - self.windows_failed

    def eta(self) -> float | None:
        """Seconds left at the rate of this run's fetched windows, or None if unknown."""
        fetched = self.windows_done + self.windows_failed
        if fetched == 0:
            return None
        return self.elapsed / fetched * self.remaining


@attrs.frozen
class BackfillResult:
    """The outcome of one run."""

    out: Path
    windows_total: int
    windows_done: int
    windows_skipped: int
    failures: tuple[WindowFailure, ...]
    rows: int
    requests: int
    rate_limited: int
    retries: int
    token_grants: int
    busy_seconds: float
    elapsed: float
    entities: int

    @property
    def complete(self) -> bool:
        return not self.failures

    @property
    def slot_busy(self) -> float:
        """Share of the run's wall time the allowed slot(s) had a request on the wire."""
        return self.busy_seconds / self.elapsed if self.elapsed > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "complete": self.complete,
            "entities": self.entities,
            "windows_total": self.windows_total,
            "windows_written": self.windows_done,
            "windows_skipped": self.windows_skipped,
            "windows_failed": len(self.failures),
            "failures": [attrs.asdict(f) for f in self.failures],
            "rows": self.rows,
            "requests": self.requests,
            "rate_limited": self.rate_limited,
            "retries": self.retries,
            "token_grants": self.token_grants,
            "slot_busy": round(self.slot_busy, 4),
            "elapsed_seconds": round(self.elapsed, 3),
        }


@attrs.frozen
class _Task:
    kind: str  # "components" or "sites"
    entity_id: int
    window: Window

    @property
    def stem(self) -> str:
        window = self.window
        return f"{self.kind[:-1]}-{self.entity_id}_{_stamp(window.start)}_{_stamp(window.end)}"


def _stamp(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%dT%H%M%SZ")


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be fsynced
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write via ``write(tmp)``, fsync, then rename over ``path``: all or nothing."""
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _fsync_dir(path.parent)


def _write_bytes(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _write_parquet(series: TimeSeries, path: Path) -> None:
    import pyarrow.parquet as pq

    table = series.to_arrow(tz="UTC")
    _atomic_write(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def _write_csv(series: TimeSeries, path: Path) -> None:
    columns = series.columns
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "ts", *series.fields])
    values = [columns.values[name] for name in series.fields]
    for index, (ident, stamp) in enumerate(zip(columns.ids, columns.ts, strict=True)):
        writer.writerow(
            [
                ident,
                datetime.fromtimestamp(stamp, UTC).isoformat(),
                *("" if column[index] is None else repr(column[index]) for column in values),
            ]
        )
    data = buffer.getvalue().encode("utf-8")
    _atomic_write(path, lambda tmp: _write_bytes(tmp, data))


class Backfill:
    """One backfill run into ``out``. ``await Backfill(client, spec, out).run()``.

    ``progress`` is called after every window with the live counters. Authentication
    failures stop the run (``AuthenticationError``); other failures of a window (after
    the client's retries) are recorded and the run goes on: the result lists them and the
    next run retries them.
    """

    def __init__(
        self,
        client: LocusClient,
        spec: BackfillSpec,
        out: str | os.PathLike[str],
        *,
        progress: Callable[[BackfillProgress], None] | None = None,
        priority: Priority = Priority.BACKGROUND,
    ) -> None:
        self.client = client
        self.spec = spec
        self.out = Path(out)
        self.query = spec.check()
        self._progress = progress
        self._priority = priority

    # -- planning -------------------------------------------------------------------

    async def entities(self) -> list[tuple[str, int]]:
        """(kind, id) of everything to backfill, in a stable order."""
        spec = self.spec
        wanted_types = {t.upper() for t in spec.node_types}
        found: dict[tuple[str, int], None] = {}
        for ident in spec.components:
            found[("components", ident)] = None
        for ident in spec.sites:
            found[("sites", ident)] = None
        expanded = []
        for site_id in spec.site_components:
            expanded.extend(await self.client.sites.components(site_id))
        for partner_id in spec.partner_components:
            expanded.extend(await self.client.partners.components(partner_id))
        for component in sorted(expanded, key=lambda c: c.id):
            if wanted_types and component.node_type.upper() not in wanted_types:
                continue
            found[("components", component.id)] = None
        return list(found)

    def _plan(self, entities: Sequence[tuple[str, int]]) -> list[_Task]:
        query = self.query
        assert query.start is not None
        assert query.end is not None
        windows = plan_windows(
            query.start, query.end, query.tz, query.gran, self.client.limits[query.gran]
        )
        return [_Task(kind, ident, window) for kind, ident in entities for window in windows]

    # -- the checkpoint -------------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path:
        return self.out / CHECKPOINT

    def _load_checkpoint(self) -> dict[str, Any] | None:
        try:
            return dict(json.loads(self.checkpoint_path.read_text("utf-8")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise UsageError(
                f"{self.checkpoint_path} is unreadable ({exc}); remove it to start over"
            ) from None

    def _save_checkpoint(self, failures: Sequence[WindowFailure], state: str) -> None:
        body = {
            "version": _FORMAT_VERSION,
            "state": state,
            "spec": self.spec.fingerprint(self.query),
            "failed": [attrs.asdict(f) for f in failures],
            "updated": datetime.now(UTC).isoformat(),
        }
        data = json.dumps(body, indent=2).encode("utf-8")
        _atomic_write(self.checkpoint_path, lambda tmp: _write_bytes(tmp, data))

    def _prepare_directory(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        previous = self._load_checkpoint()
        fingerprint = self.spec.fingerprint(self.query)
        if previous is not None and previous.get("spec") != fingerprint:
            raise UsageError(
                f"{self.out} holds a different backfill (other fields, range, zone, granularity, "
                "entities or format); resume it with the same arguments or use another --out"
            )
        if previous is None and any(self._data_files()):
            raise UsageError(
                f"{self.out} already holds data files but no {CHECKPOINT}; use an empty directory"
            )
        for stale in self.out.glob(".tmp-*"):  # left by a crash mid-write
            with contextlib.suppress(OSError):
                stale.unlink()

    def _suffix(self) -> str:
        return ".parquet" if self.spec.format == "parquet" else ".csv"

    def _data_files(self) -> Iterable[Path]:
        return (p for p in self.out.glob(f"*{self._suffix()}") if not p.name.startswith(("_", ".")))

    # -- running --------------------------------------------------------------------

    async def run(self) -> BackfillResult:
        if self.spec.format == "parquet":
            try:
                import pyarrow.parquet  # noqa: F401
            except ImportError:
                raise UsageError(
                    "Parquet output needs pyarrow: pip install 'locus-async[arrow]' "
                    "(or use --format csv)"
                ) from None
        await anyio.to_thread.run_sync(self._prepare_directory)
        stats = self.client.stats
        before = (
            stats.requests,
            stats.rate_limited,
            stats.retries,
            sum(stats.token_grants.values()),
            stats.busy_seconds,
        )
        started = time.monotonic()
        entities = await self.entities()
        tasks = self._plan(entities)
        existing = {p.name for p in self._data_files()}
        todo = [t for t in tasks if t.stem + self._suffix() not in existing]
        progress = BackfillProgress(
            windows_total=len(tasks), windows_skipped=len(tasks) - len(todo)
        )
        failures: list[WindowFailure] = []
        self._report(progress, before)
        await anyio.to_thread.run_sync(self._save_checkpoint, failures, "running")
        logger.info(
            "backfill of %d windows (%d entities), %d already done",
            len(tasks),
            len(entities),
            progress.windows_skipped,
        )

        queue = iter(todo)
        auth_failure: list[BaseException] = []

        async def worker(scope: anyio.CancelScope) -> None:
            for task in queue:
                try:
                    series = await self._fetch(task)
                    await anyio.to_thread.run_sync(self._write, task, series)
                except AuthenticationError as exc:
                    auth_failure.append(exc)
                    scope.cancel()
                    return
                except (LocusError, OSError) as exc:
                    failures.append(
                        WindowFailure(
                            task.kind,
                            task.entity_id,
                            task.window.start_utc.isoformat(),
                            task.window.end_utc.isoformat(),
                            str(exc),
                        )
                    )
                    progress.windows_failed += 1
                    logger.warning("window %s failed: %s", task.stem, exc)
                else:
                    progress.windows_done += 1
                    progress.rows += len(series)
                self._report(progress, before)

        workers = min(len(todo), self.client.limiter.capacity + 2)
        try:
            async with anyio.create_task_group() as group:
                for _ in range(max(0, workers)):
                    group.start_soon(worker, group.cancel_scope)
        finally:
            state = "complete" if not failures and not auth_failure else "incomplete"
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._save_checkpoint, failures, state)
        if auth_failure:
            raise auth_failure[0]
        return BackfillResult(
            out=self.out,
            windows_total=len(tasks),
            windows_done=progress.windows_done,
            windows_skipped=progress.windows_skipped,
            failures=tuple(failures),
            rows=progress.rows,
            requests=stats.requests - before[0],
            rate_limited=stats.rate_limited - before[1],
            retries=stats.retries - before[2],
            token_grants=sum(stats.token_grants.values()) - before[3],
            busy_seconds=stats.busy_seconds - before[4],
            elapsed=time.monotonic() - started,
            entities=len(entities),
        )

    async def _fetch(self, task: _Task) -> TimeSeries:
        path = f"/v3/{task.kind}/{task.entity_id}/data"
        return await fetch_window(
            self.client._session, path, self.query, task.window, self._priority
        )

    def _write(self, task: _Task, series: TimeSeries) -> None:
        path = self.out / (task.stem + self._suffix())
        if self.spec.format == "parquet":
            _write_parquet(series, path)
        else:
            _write_csv(series, path)

    def _report(self, progress: BackfillProgress, before: tuple[int, int, int, int, float]) -> None:
        stats = self.client.stats
        progress.requests = stats.requests - before[0]
        progress.rate_limited = stats.rate_limited - before[1]
        progress.retries = stats.retries - before[2]
        if self._progress is not None:
            self._progress(progress)
