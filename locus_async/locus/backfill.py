"""Resumable backfills: entities x fields x range x granularity into Parquet or CSV files.

Owns: expanding the entities (components, sites, every component of a site or partner,
optionally by node type), planning windows (the time-series planner), fetching them
through the client's limiter at background priority, and writing each finished window
atomically. Must never: write a token or a secret anywhere, leave a partial file, or
write a row twice.

On disk (``out/``)::

    _locus_backfill.json            the spec, the state and the failed windows (no secrets)
    .locus-backfill.lock            held by the run in progress (see ``_outdir``)
    _locus_backfill.owner.json      who that run is: host, pid, start time
    component-54369_20241001T070000Z_20241031T065500Z.parquet
    ...                             one file per finished window

A window is done exactly when its file exists: files are written under a ``.locus-tmp-``
name, flushed to disk and then renamed, so a crash leaves either the whole file or none.
Nothing is created before the credentials were accepted and the entities are known; one
run at a time holds the directory. The checkpoint is checked as a whole when read; a lost
or damaged one is rebuilt from the finished files by ``repair``. Its ``state`` is
``running``, ``complete``, ``incomplete`` (failed windows) or ``interrupted``.
Running the same backfill again skips finished windows and retries the rest. Names
starting with ``_`` or ``.`` are ignored by Parquet readers, so
``pyarrow.parquet.read_table(out)`` and ``pandas.read_parquet(out)`` read the rows as one
table: ``id`` int64, ``ts`` timestamp (UTC), one float64 column per field.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import attrs

from locus_async._shell.fanout import run_in_thread
from locus_async._shell.limiter import Priority
from locus_async._shell.outdir import OutputDir, OutputLocked, atomic_write
from locus_async.errors import AuthenticationError, InvalidArgumentType, LocusError, UsageError
from locus_async.locus._core.windows import Window, plan_windows
from locus_async.locus.checkpoint import (
    CHECKPOINT,
    FORMAT_VERSION,
    CheckpointError,
    checkpoint_problem,
    file_columns,
)
from locus_async.locus.spec import BackfillSpec
from locus_async.locus.timeseries import TimeSeries

if TYPE_CHECKING:
    from locus_async.locus.client import LocusClient

__all__ = [
    "Backfill",
    "BackfillProgress",
    "BackfillResult",
    "BackfillSpec",
    "CheckpointError",
    "OutputLocked",
    "WindowFailure",
]

logger = logging.getLogger("locus_async.locus.backfill")


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


def _write_bytes(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _write_parquet(series: TimeSeries, path: Path) -> None:
    import pyarrow.parquet as pq

    table = series.to_arrow(tz="UTC")
    atomic_write(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


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
    atomic_write(path, lambda tmp: _write_bytes(tmp, data))


class Backfill:
    """One backfill run into ``out``. ``await Backfill(client, spec, out).run()``.

    ``progress`` is called after every window with the live counters. Authentication
    failures stop the run (``AuthenticationError``); other failures of a window (after
    the client's retries) are recorded and the run goes on: the result lists them and the
    next run retries them. One run at a time holds ``out`` (``OutputLocked`` otherwise);
    ``repair=True`` rebuilds a lost or damaged checkpoint from the finished files.
    """

    def __init__(
        self,
        client: LocusClient,
        spec: BackfillSpec,
        out: str | os.PathLike[str],
        *,
        progress: Callable[[BackfillProgress], None] | None = None,
        priority: Priority = Priority.BACKGROUND,
        repair: bool = False,
    ) -> None:
        if not isinstance(spec, BackfillSpec):
            raise InvalidArgumentType(f"spec must be a BackfillSpec, not {type(spec).__name__}")
        if progress is not None and not callable(progress):
            raise InvalidArgumentType(f"progress must be callable, not {type(progress).__name__}")
        if not isinstance(priority, Priority):
            raise InvalidArgumentType("priority must be a Priority (INTERACTIVE or BACKGROUND)")
        if not isinstance(repair, bool):
            raise InvalidArgumentType(f"repair must be True or False, not {repair!r}")
        self.client = client
        self.spec = spec
        self.query = spec.check()
        self._dir = OutputDir(out, label="out")
        self.out = self._dir.path
        self.repair = repair
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
        """The checkpoint, checked as a whole; None if there is none."""
        try:
            raw = self.checkpoint_path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CheckpointError(self.checkpoint_path, exc.strerror or str(exc)) from None
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise CheckpointError(self.checkpoint_path, f"not JSON: {exc}") from None
        problem = checkpoint_problem(body)
        if problem:
            raise CheckpointError(self.checkpoint_path, problem)
        return dict(body)

    def _save_checkpoint(self, failures: Sequence[WindowFailure], state: str) -> None:
        body = {
            "version": FORMAT_VERSION,
            "state": state,
            "spec": self.spec.fingerprint(self.query),
            "failed": [attrs.asdict(f) for f in failures],
            "updated": datetime.now(UTC).isoformat(),
        }
        data = json.dumps(body, indent=2).encode("utf-8")
        atomic_write(self.checkpoint_path, lambda tmp: _write_bytes(tmp, data))

    def _prepare_directory(self, tasks: Sequence[_Task]) -> None:
        """Holding the lock: check the checkpoint against this spec (or rebuild it from the
        finished files with ``repair``), then remove temporary files a crash left."""
        fingerprint = self.spec.fingerprint(self.query)
        try:
            previous = self._load_checkpoint()
        except CheckpointError:
            if not self.repair:
                raise
            previous = None
        if previous is not None and previous["spec"] != fingerprint:
            raise UsageError(
                f"{self.out} holds a different backfill (other fields, range, zone, granularity, "
                "entities or format); resume it with the same arguments or use another --out"
            )
        if previous is None and any(self._data_files()):
            if not self.repair:
                raise UsageError(
                    f"{self.out} holds data files but no {CHECKPOINT}; run the same backfill "
                    "with --repair to adopt the finished files, or use an empty directory"
                )
            self._repair(tasks)
        self._dir.remove_our_temporaries()

    def _repair(self, tasks: Sequence[_Task]) -> None:
        """Rebuild the checkpoint from the data files: each must be a window of this spec
        with the columns it would have; a damaged one is removed (it is fetched again)."""
        names = {t.stem + self._suffix() for t in tasks}
        files = list(self._data_files())
        foreign = sorted(p.name for p in files if p.name not in names)
        if foreign:
            raise UsageError(
                f"--repair: {len(foreign)} file(s) in {self.out} are not windows of this backfill "
                f"(first: {foreign[0]}); give the arguments it was started with"
            )
        columns = ["id", "ts", *self.query.fields]
        damaged = [p for p in files if file_columns(p, self.spec.format) != columns]
        for path in damaged:
            path.unlink()
        logger.warning(
            "rebuilt %s from %d finished file(s); %d damaged file(s) removed, to be fetched again",
            CHECKPOINT,
            len(files) - len(damaged),
            len(damaged),
        )
        self._save_checkpoint((), "incomplete")

    def _suffix(self) -> str:
        return ".parquet" if self.spec.format == "parquet" else ".csv"

    def _data_files(self) -> Iterable[Path]:
        if not self.out.is_dir():
            return ()
        return (p for p in self.out.glob(f"*{self._suffix()}") if not p.name.startswith(("_", ".")))

    # -- running --------------------------------------------------------------------

    async def run(self) -> BackfillResult:
        """Authenticate, list the entities, then lock ``out`` and fetch what is missing.
        Nothing is created in ``out`` before the first two succeeded; a new ``out`` is
        created only once a first window came back (a caller's own bearer token cannot be
        checked any other way)."""
        if self.spec.format == "parquet":
            try:
                import pyarrow.parquet  # noqa: F401
            except ImportError:
                raise UsageError(
                    "Parquet output needs pyarrow: pip install 'locus-async[arrow]' "
                    "(or use --format csv)"
                ) from None
        stats = self.client.stats
        before = (
            stats.requests,
            stats.rate_limited,
            stats.retries,
            sum(stats.token_grants.values()),
            stats.busy_seconds,
        )
        started = time.monotonic()
        await self.client.authenticate()
        entities = await self.entities()
        if not entities:
            raise UsageError(f"nothing to backfill: {self._empty_reason()}")
        tasks = self._plan(entities)
        fetched: dict[_Task, TimeSeries | LocusError] = {}
        if tasks and not self.out.exists():
            try:
                fetched[tasks[0]] = await self._fetch(tasks[0])
            except AuthenticationError:
                raise
            except LocusError as exc:  # recorded by the run as that window's failure
                fetched[tasks[0]] = exc
        with self._dir.lock():
            await run_in_thread(self._prepare_directory, tasks)
            return await self._run_locked(entities, tasks, before, started, fetched)

    def _empty_reason(self) -> str:
        spec = self.spec
        where = [f"site {i}" for i in spec.site_components] + [
            f"partner {i}" for i in spec.partner_components
        ]
        types = f" of node type {', '.join(spec.node_types)}" if spec.node_types else ""
        return f"{' and '.join(where)} ha{'s' if len(where) == 1 else 've'} no components{types}"

    async def _run_locked(
        self,
        entities: Sequence[tuple[str, int]],
        tasks: Sequence[_Task],
        before: tuple[int, int, int, int, float],
        started: float,
        fetched: dict[_Task, TimeSeries | LocusError],
    ) -> BackfillResult:
        stats = self.client.stats
        existing = {p.name for p in self._data_files()}
        todo = [t for t in tasks if t.stem + self._suffix() not in existing]
        progress = BackfillProgress(
            windows_total=len(tasks), windows_skipped=len(tasks) - len(todo)
        )
        failures: list[WindowFailure] = []
        self._report(progress, before)
        await run_in_thread(self._save_checkpoint, failures, "running")
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
                    series = await self._fetch(task) if task not in fetched else fetched.pop(task)
                    if isinstance(series, LocusError):
                        raise series
                    await run_in_thread(self._write, task, series)
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
        state = "interrupted"  # unless the task group ends normally: Ctrl-C, cancellation
        try:
            async with anyio.create_task_group() as group:
                for _ in range(max(0, workers)):
                    group.start_soon(worker, group.cancel_scope)
            state = "complete" if not failures and not auth_failure else "incomplete"
        finally:
            with anyio.CancelScope(shield=True):
                await run_in_thread(self._save_checkpoint, failures, state)
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
        return await self.client.fetch_window(
            task.kind, task.entity_id, self.query, task.window, priority=self._priority
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
