"""Resumable backfills and syncs: entities x fields x range x granularity into Parquet or
CSV files, kept current run after run.

Owns: expanding the entities (components, sites, every component of a site or partner,
optionally by node type), checking each entity's fields against its ``dataavailable``,
planning windows on the dataset's stable grid (``_core.freshness``), fetching them through
the client's limiter at background priority, writing each window atomically, and deciding
which windows are final. Must never: write a token or a secret anywhere, leave a partial
file, write a row twice, or store a row without any value.

On disk (``out/`` and its state ``out.locus/`` beside it; see ``_shell.store``)::

    out/month=2024-10/component-54369_20241001T070000Z_20241031T065500Z.parquet
    out/month=2024-10/part-3f2a9c0d1e4b5a69.parquet     final windows, compacted
    out.locus/checkpoint.json      the dataset, its finished windows, provisional and
                                   failed ones
    out.locus/lock, owner.json     the run in progress

A window's rows are written as pieces, one per partition it touches (``_core.layout``),
each whole or not at all; the window is *finished* once all are, and the checkpoint's
index says so (a resume reads no directory). A finished window is *final* unless the
checkpoint lists it as *provisional*: the server did not have all of its data yet (it
ends after now, or the entity has no data after it). Every later run refetches
provisional windows until they are final or older than ``max_lag``; a window that may turn
out provisional is listed before its pieces are written, so a crash never freezes one.
``lookback`` refetches final windows of the recent past and replaces those whose rows
changed. A window the server refused (400, 403, 404) is recorded and not asked again
unless ``retry_failed``; other failures are retried by the next run. At the end of a run
the partitions where it is worthwhile are compacted (``locus.compaction``).

A dataset grows: another run into the same ``out`` may add entities, move the start
earlier or the end later (or open it: ``end="now"``); its fields, granularity, time zone
and format are fixed. ``Backfill.sync(client, out)`` runs the stored dataset up to now.
``out`` holds only data files, so every engine reads it as one table: ``id`` int64,
``kind``, ``ts`` timestamp (UTC), one float64 column per field, and the partition column.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from locus_async._core.times import resolve_tz
from locus_async._shell.fanout import run_bounded, run_in_thread
from locus_async._shell.limiter import Priority
from locus_async._shell.store import OutputLocked, Store, open_store
from locus_async.distributed import DEFAULT_PARTITION_WINDOWS
from locus_async.errors import (
    APIError,
    AuthenticationError,
    BadRequest,
    InvalidArgumentType,
    LocusError,
    NotFound,
    PermissionDenied,
    UsageError,
)
from locus_async.locus._core.freshness import (
    dataset_windows,
    is_final,
    keep_valued,
    parse_duration,
    requested,
)
from locus_async.locus._core.layout import (
    Ranges,
    parse_piece,
    partition_unit,
    period_bounds,
    stamp,
)
from locus_async.locus._core.query import DataQuery, check_id
from locus_async.locus._core.windows import STEP_SECONDS, Window, parse_granularity
from locus_async.locus.checkpoint import (
    CHECKPOINT,
    Checkpoint,
    CheckpointError,
    WindowFailure,
    entity_key,
)
from locus_async.locus.compaction import CompactionResult, compact, compact_dataset, recover
from locus_async.locus.dataset import DatasetFiles
from locus_async.locus.requester import fields_offered
from locus_async.locus.spec import BackfillSpec
from locus_async.locus.timeseries import TimeSeries

if TYPE_CHECKING:
    from locus_async.distributed import Credential, DaskFetcher
    from locus_async.locus.client import LocusClient

__all__ = [
    "Backfill",
    "BackfillPlan",
    "BackfillProgress",
    "BackfillResult",
    "BackfillSpec",
    "CheckpointError",
    "CompactionResult",
    "OutputLocked",
    "WindowFailure",
    "compact_dataset",
]

logger = logging.getLogger("locus_async.locus.backfill")

#: A window older than this is final whatever its data (``max_lag``).
DEFAULT_MAX_LAG = timedelta(days=7)

#: A long run saves its checkpoint after this many windows, so a kill loses little.
_SAVE_EVERY = 200

#: The statuses that mean the request itself is wrong: asking again gets the same answer.
_PERMANENT = (BadRequest, PermissionDenied, NotFound)


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
    """The outcome of one run. ``failures``: this run's transient failures (the next run
    retries them); ``permanent_failures``: every window the server refused, not asked
    again; ``skipped_entities``: entities with none of the dataset's fields."""

    out: str
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
    windows_provisional: int = 0
    windows_refreshed: int = 0
    windows_revised: int = 0
    permanent_failures: tuple[WindowFailure, ...] = ()
    new_permanent: int = 0
    skipped_entities: tuple[tuple[str, int, str], ...] = ()
    new_entities: tuple[tuple[str, int], ...] = ()
    gaps: tuple[tuple[str, int, str, str, int], ...] = ()
    lagging: tuple[tuple[str, int, str | None], ...] = ()
    partitions_compacted: int = 0

    @property
    def complete(self) -> bool:
        """No window failed in this run (refused windows of earlier runs aside)."""
        return not self.failures and not self.new_permanent

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
            "windows_failed_permanent": len(self.permanent_failures),
            "windows_provisional": self.windows_provisional,
            "windows_refreshed": self.windows_refreshed,
            "windows_revised": self.windows_revised,
            "failures": [attrs.asdict(f) for f in self.failures],
            "permanent_failures": [attrs.asdict(f) for f in self.permanent_failures],
            "skipped_entities": [
                {"kind": k, "entity_id": i, "reason": r} for k, i, r in self.skipped_entities
            ],
            "new_entities": [{"kind": k, "entity_id": i} for k, i in self.new_entities],
            "gaps": [
                {"kind": k, "entity_id": i, "start": s, "end": e, "missing_rows": n}
                for k, i, s, e, n in self.gaps
            ],
            "lagging": [{"kind": k, "entity_id": i, "data_until": u} for k, i, u in self.lagging],
            "partitions_compacted": self.partitions_compacted,
            "rows": self.rows,
            "requests": self.requests,
            "rate_limited": self.rate_limited,
            "retries": self.retries,
            "token_grants": self.token_grants,
            "slot_busy": round(self.slot_busy, 4),
            "elapsed_seconds": round(self.elapsed, 3),
        }


@attrs.frozen
class BackfillPlan:
    """What a run would do, found without fetching any data (``Backfill.plan``)."""

    out: str
    entities: tuple[tuple[str, int, tuple[str, ...]], ...]
    skipped_entities: tuple[tuple[str, int, str], ...]
    windows_total: int
    windows_new: int
    windows_provisional: int
    windows_lookback: int
    windows_refused: int
    windows_done: int
    requests: int
    allowance: int
    seconds_per_request: float

    @property
    def estimated_seconds(self) -> float:
        """The run's duration at the allowance, one request at a time per slot."""
        return math.ceil(self.requests / max(1, self.allowance)) * self.seconds_per_request

    def summary(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "entities": [
                {"kind": k, "entity_id": i, "fields": list(f)} for k, i, f in self.entities
            ],
            "skipped_entities": [
                {"kind": k, "entity_id": i, "reason": r} for k, i, r in self.skipped_entities
            ],
            "windows_total": self.windows_total,
            "windows_new": self.windows_new,
            "windows_provisional": self.windows_provisional,
            "windows_lookback": self.windows_lookback,
            "windows_refused": self.windows_refused,
            "windows_done": self.windows_done,
            "requests": self.requests,
            "allowance": self.allowance,
            "seconds_per_request": round(self.seconds_per_request, 4),
            "estimated_seconds": round(self.estimated_seconds, 1),
        }


@attrs.frozen
class _Task:
    kind: str  # "components" or "sites"
    entity_id: int
    window: Window
    fields: tuple[str, ...]  # the dataset's fields this entity has

    @property
    def stem(self) -> str:
        window = self.window
        return _stem(self.kind, self.entity_id, window.start, window.end)

    @property
    def key(self) -> str:
        return entity_key(self.kind, self.entity_id)


def _stem(kind: str, ident: int, start: int, end: int) -> str:
    return f"{kind[:-1]}-{ident}_{_stamp(start)}_{_stamp(end)}"


@functools.lru_cache(maxsize=65_536)
def _stamp(ts: int) -> str:
    return stamp(ts)


def _iso(ts: int | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


# --------------------------------------------------------------------------- the dataset


def _new_dataset(spec: BackfillSpec, query: DataQuery) -> Checkpoint:
    assert query.start is not None
    assert query.end is not None
    return Checkpoint(
        fields=tuple(query.fields),
        gran=query.gran.value,
        tz=query.tz.key,
        format=spec.format,
        starts=[query.start],
        end=None if spec.open_end else query.end,
        entities={
            "components": list(spec.components),
            "sites": list(spec.sites),
            "site_components": list(spec.site_components),
            "partner_components": list(spec.partner_components),
        },
        node_types=sorted(t.upper() for t in spec.node_types),
    )


def _grow(out: str, stored: Checkpoint, spec: BackfillSpec, query: DataQuery) -> None:
    """Grow ``stored`` to cover ``spec`` too, or refuse a change that would mix rows."""
    theirs = (list(stored.fields), stored.gran, stored.tz, stored.format)
    ours = (list(query.fields), query.gran.value, query.tz.key, spec.format)
    names = ("fields", "granularity", "time zone", "format")
    for name, old, new in zip(names, theirs, ours, strict=True):
        if old != new:
            shown = ",".join(old) if isinstance(old, list) else old
            wanted = ",".join(new) if isinstance(new, list) else new
            raise UsageError(
                f"{out} holds a different backfill: its {name} is {shown}, not {wanted}; a "
                "dataset keeps one set of fields, granularity, time zone and format (rows "
                "of another would not mix), so use another --out for this one"
            )
    types = sorted(t.upper() for t in spec.node_types)
    if types != stored.node_types:
        raise UsageError(
            f"{out} holds a different backfill: its node types are "
            f"{','.join(stored.node_types) or 'all'}, not {','.join(types) or 'all'}; add "
            "single components with --add-component, or use another --out"
        )
    assert query.start is not None
    assert query.end is not None
    if query.start < stored.starts[0]:
        stored.starts.insert(0, query.start)
    if spec.open_end or stored.end is None:
        stored.end = None
    else:
        stored.end = max(stored.end, query.end)
    lists = {
        "components": spec.components,
        "sites": spec.sites,
        "site_components": spec.site_components,
        "partner_components": spec.partner_components,
    }
    for name, ids in lists.items():
        _add(stored.entities.setdefault(name, []), ids)


def _add(target: list[int], ids: Iterable[int]) -> None:
    for ident in ids:
        if ident not in target:
            target.append(ident)


class Backfill:
    """One backfill (or sync) run into ``out``. ``await Backfill(client, spec, out).run()``.

    ``progress`` is called after every window with the live counters. Authentication
    failures stop the run (``AuthenticationError``); other failures of a window (after
    the client's retries) are recorded and the run goes on. One run at a time holds
    ``out`` (``OutputLocked`` otherwise); ``repair=True`` rebuilds a lost or damaged
    checkpoint from the finished files.

    ``spec=None`` runs the dataset stored in ``out`` up to now (``Backfill.sync``).
    ``max_lag``: how long a window stays provisional (default 7 days); ``lookback``:
    refetch final windows that end within it; ``retry_failed``: ask again for windows
    the server refused and refresh the entities' ``dataavailable``; ``add_components``,
    ``add_sites``: entities to add to the dataset; ``clock``: unix seconds now;
    ``compact``: merge final windows at the end of the run where worthwhile (default);
    ``storage_options``: for an object-store ``out`` (``s3://...``), passed to fsspec.
    Durations are seconds, ``timedelta``s or strings such as ``"7d"``.
    """

    def __init__(
        self,
        client: LocusClient,
        spec: BackfillSpec | None,
        out: str | os.PathLike[str],
        *,
        progress: Callable[[BackfillProgress], None] | None = None,
        priority: Priority = Priority.BACKGROUND,
        repair: bool = False,
        max_lag: object = DEFAULT_MAX_LAG,
        lookback: object = 0,
        retry_failed: bool = False,
        add_components: Iterable[int] = (),
        add_sites: Iterable[int] = (),
        clock: Callable[[], float] = time.time,
        compact: bool = True,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        if spec is not None and not isinstance(spec, BackfillSpec):
            raise InvalidArgumentType(f"spec must be a BackfillSpec, not {type(spec).__name__}")
        if progress is not None and not callable(progress):
            raise InvalidArgumentType(f"progress must be callable, not {type(progress).__name__}")
        if not isinstance(priority, Priority):
            raise InvalidArgumentType("priority must be a Priority (INTERACTIVE or BACKGROUND)")
        for name, flag in (
            ("repair", repair), ("retry_failed", retry_failed), ("compact", compact)
        ):  # fmt: skip
            if not isinstance(flag, bool):
                raise InvalidArgumentType(f"{name} must be True or False, not {flag!r}")
        if not callable(clock):
            raise InvalidArgumentType(f"clock must be callable, not {type(clock).__name__}")
        self.client = client
        self.spec = spec
        self.clock = clock
        self.query = spec.check(clock()) if spec is not None else None
        self._store: Store = open_store(out, label="out", storage_options=storage_options)
        self._files = DatasetFiles(self._store)
        self.out = self._store.url
        self.compact = compact
        self.repair = repair
        self.max_lag = parse_duration(max_lag, "max_lag")
        self.lookback = parse_duration(lookback, "lookback")
        self.retry_failed = retry_failed
        self.add_components = tuple(check_id(i, "component id") for i in add_components)
        self.add_sites = tuple(check_id(i, "site id") for i in add_sites)
        if spec is None and repair:
            raise UsageError(
                "--repair needs the dataset's arguments: run backfill with them and --repair"
            )
        self._progress = progress
        self._priority = priority
        self._now = 0.0
        self._dataset: Checkpoint | None = None
        self._upgrade = self._adopt = self._legacy = False
        self._refused_entities = 0
        #: Where windows are fetched when not by ``client`` (a Dask cluster: ``run_on``).
        self._remote: DaskFetcher | None = None

    @classmethod
    def sync(cls, client: LocusClient, out: str | os.PathLike[str], **options: Any) -> Backfill:
        """A run of the dataset stored in ``out`` up to now (no spec to repeat)."""
        return cls(client, None, out, **options)

    # -- the dataset ----------------------------------------------------------------

    @property
    def checkpoint_url(self) -> str:
        """Where the dataset's checkpoint is (in its state, beside ``out``)."""
        return self._store.state_url(CHECKPOINT)

    def _read_dataset(self) -> Checkpoint:
        """The dataset this run keeps: the stored one grown by the spec and the additions
        (or a new one). Sets ``_upgrade`` when its recent windows must be checked again
        (a version 1 checkpoint, or one rebuilt by ``repair``), ``_legacy`` when its files
        are in the first releases' flat layout."""
        try:
            found = self._files.load()
        except CheckpointError:
            if not self.repair:
                raise
            found = None
        self._upgrade = self._adopt = self._legacy = False
        stored = None
        if found is not None:
            stored, version, self._legacy = found
            self._upgrade = version == 1
        elif self._has_data():
            if not self.repair:
                raise UsageError(
                    f"{self.out} holds data files but no {CHECKPOINT} in its state "
                    f"({self.checkpoint_url}); run the same backfill with --repair to adopt "
                    "the finished files, or use an empty directory"
                )
            self._upgrade = self._adopt = True
        if stored is None:
            if self.spec is None or self.query is None:
                raise UsageError(
                    f"{self.out} holds no dataset ({self.checkpoint_url} is missing): start "
                    "one with backfill (for example --start -30d --end now), then sync it"
                )
            dataset = _new_dataset(self.spec, self.query)
        else:
            dataset = stored
            if self.spec is not None and self.query is not None:
                _grow(self.out, dataset, self.spec, self.query)
            else:
                dataset.end = None  # a sync runs up to now
        _add(dataset.entities.setdefault("components", []), self.add_components)
        _add(dataset.entities.setdefault("sites", []), self.add_sites)
        return dataset

    def _has_data(self) -> bool:
        store = self._store
        return bool(store.partitions()) or any(
            n.endswith((".parquet", ".csv")) for n in store.files("")
        )

    def _query_for(self, fields: Sequence[str]) -> DataQuery:
        dataset = self._dataset
        assert dataset is not None
        return DataQuery(
            tuple(fields),
            resolve_tz(dataset.tz),
            parse_granularity(dataset.gran),
            dataset.starts[0],
            None,
        )

    def _encode_checkpoint(self, state: str) -> bytes:
        dataset = self._dataset
        assert dataset is not None
        dataset.state = state
        dataset.updated = datetime.fromtimestamp(self.clock(), UTC).isoformat()
        return self._files.encode(dataset)

    def _save_checkpoint(self, state: str) -> None:
        self._files.save(self._encode_checkpoint(state))

    # -- planning -------------------------------------------------------------------

    async def entities(self) -> list[tuple[str, int]]:
        """(kind, id) of everything in the dataset, in a stable order: the given ids and
        the components its sites and partners list now (by node type, if it has any)."""
        if self._dataset is None:
            self._now = self.clock()
            self._dataset = self._read_dataset()
        dataset = self._dataset
        wanted_types = set(dataset.node_types)
        found: dict[tuple[str, int], None] = {}
        for ident in dataset.entities["components"]:
            found[("components", ident)] = None
        for ident in dataset.entities["sites"]:
            found[("sites", ident)] = None
        expanded = []
        for site_id in dataset.entities["site_components"]:
            expanded.extend(await self.client.sites.components(site_id))
        for partner_id in dataset.entities["partner_components"]:
            expanded.extend(await self.client.partners.components(partner_id))
        for component in sorted(expanded, key=lambda c: c.id):
            if wanted_types and component.node_type.upper() not in wanted_types:
                continue
            found[("components", component.id)] = None
        return list(found)

    async def _fields_of(
        self, entities: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], tuple[str, ...]]:
        """The dataset's fields each entity has, from its ``dataavailable`` (asked once per
        entity, kept in the checkpoint; again with ``retry_failed``). An entity with none
        of them, or whose ``dataavailable`` is refused, is skipped."""
        dataset = self._dataset
        assert dataset is not None
        unasked = [
            (kind, ident)
            for kind, ident in entities
            if entity_key(kind, ident) not in dataset.available or self.retry_failed
        ]
        unknown: set[str] = set()  # dataavailable failed for now: ask for every field

        async def ask(index: int) -> None:
            kind, ident = unasked[index]
            key = entity_key(kind, ident)
            api = self.client.components if kind == "components" else self.client.sites
            try:
                offered = await api.data_available(ident, refresh=self.retry_failed)
            except _PERMANENT as exc:
                dataset.available[key] = []
                dataset.skipped[key] = f"dataavailable refused: {exc}"
                self._refused_entities += 1
                return
            except AuthenticationError:
                raise
            except LocusError as exc:
                logger.warning("dataavailable of %s failed (%s): asking for every field", key, exc)
                unknown.add(key)
                return
            names = fields_offered(offered, dataset.gran)
            dataset.available[key] = [f for f in dataset.fields if f in names]
            dataset.skipped.pop(key, None)

        await run_bounded(len(unasked), self.client.limiter.capacity + 1, ask)
        out: dict[tuple[str, int], tuple[str, ...]] = {}
        for kind, ident in entities:
            key = entity_key(kind, ident)
            if key in unknown:
                out[(kind, ident)] = tuple(dataset.fields)
                continue
            has = tuple(dataset.available[key])
            if not has:
                dataset.skipped.setdefault(
                    key, f"has none of {','.join(dataset.fields)} at {dataset.gran}"
                )
                continue
            out[(kind, ident)] = has
        return out

    def _windows(self) -> list[Window]:
        dataset = self._dataset
        assert dataset is not None
        query = self._query_for(dataset.fields)
        return dataset_windows(
            dataset.starts, dataset.end, now=self._now, tz=query.tz, gran=query.gran,
            limit=self.client.limits[query.gran],
        )  # fmt: skip

    def _classify(self, fields: dict[tuple[str, int], tuple[str, ...]]) -> _Work:
        """What each window of each entity needs, from the checkpoint alone (its index
        of finished windows: no directory is read). Only the windows to fetch are kept."""
        dataset = self._dataset
        assert dataset is not None
        now = self._now
        windows = self._windows()
        refused = set() if self.retry_failed else {
            (f.kind, f.entity_id, f.start, f.end) for f in dataset.failed if f.permanent
        }  # fmt: skip
        provisional = dataset.provisional
        recent_after = now - self.max_lag
        lookback_after = now - self.lookback if self.lookback else None
        work = _Work(total=len(windows) * len(fields), entities=list(fields))
        empty = Ranges()
        for (kind, ident), has in fields.items():
            done = dataset.done.get(entity_key(kind, ident), empty)
            for window in windows:
                task = _Task(kind, ident, window, has)
                finished = done.covers(window.start, window.end)
                reason = None
                if refused and (
                    kind, ident, window.start_utc.isoformat(), window.end_utc.isoformat()
                ) in refused:  # fmt: skip
                    work.refused.append(task)
                    continue
                if finished and (
                    (provisional and task.stem in provisional)
                    or (self._upgrade and window.end > recent_after)
                ):
                    reason = "provisional"
                elif not finished:
                    reason = "new"
                elif lookback_after is not None and window.end > lookback_after:
                    reason = "lookback"
                if reason is None:
                    work.done += 1
                    continue
                work.todo.append(task)
                work.reason[task] = reason
                if finished:
                    work.had_file.add(task)
        return work

    async def plan(self) -> BackfillPlan:
        """What ``run`` would do, without fetching any data or writing anything: the
        entities (with the fields each is asked for), the windows by kind and the data
        requests, and the time they take at the client's allowance (from the dataset's
        measured request time, else the planning requests' own). No request is sent for
        explicit ids: an entity whose ``dataavailable`` is not known yet counts as having
        every field, and its ``dataavailable`` as one more request."""
        stats = self.client.stats
        requests, busy = stats.requests, stats.busy_seconds
        self._now = self.clock()
        self._dataset = await run_in_thread(self._read_dataset)
        entities = await self.entities()
        dataset = self._dataset
        fields: dict[tuple[str, int], tuple[str, ...]] = {}
        unknown = 0
        for kind, ident in entities:
            key = entity_key(kind, ident)
            if key in dataset.available and not self.retry_failed:
                if dataset.available[key]:
                    fields[(kind, ident)] = tuple(dataset.available[key])
            else:
                unknown += 1
                fields[(kind, ident)] = tuple(dataset.fields)
        work = self._classify(fields)
        measured = (stats.busy_seconds - busy) / max(1, stats.requests - requests)
        reasons = list(work.reason.values())
        return BackfillPlan(
            out=self.out,
            entities=tuple((kind, ident, has) for (kind, ident), has in fields.items()),
            skipped_entities=self._skipped(entities),
            windows_total=work.total,
            windows_new=reasons.count("new"),
            windows_provisional=reasons.count("provisional"),
            windows_lookback=reasons.count("lookback"),
            windows_refused=len(work.refused),
            windows_done=work.done,
            requests=len(work.todo) + unknown,
            allowance=self.client.limiter.capacity,
            seconds_per_request=dataset.window_seconds or measured or 1.0,
        )

    def _skipped(self, entities: Sequence[tuple[str, int]]) -> tuple[tuple[str, int, str], ...]:
        dataset = self._dataset
        assert dataset is not None
        return tuple(
            (kind, ident, dataset.skipped[entity_key(kind, ident)])
            for kind, ident in entities
            if entity_key(kind, ident) in dataset.skipped
        )

    # -- the directory --------------------------------------------------------------

    def _prepare_directory(self, fields: dict[tuple[str, int], tuple[str, ...]]) -> None:
        """Holding the lock: finish or drop a compaction a killed run left, remove its
        temporaries, move the first releases' flat files into partitions, rebuild the
        index of a lost checkpoint from the files (``repair``), and after a run that did
        not end (killed), adopt the windows it wrote after its last checkpoint."""
        dataset = self._dataset
        assert dataset is not None
        store = self._store
        store.remove_temporaries()
        recover(store)
        self._files.forget()
        if self._legacy:
            moved = self._files.upgrade_legacy(dataset)
            self._save_checkpoint("running")
            self._files.finish_upgrade()
            logger.warning(
                "moved %d window file(s) of %s into partitions (this release's layout)",
                moved,
                self.out,
            )
            self._legacy = False
        if dataset.state in ("running", "interrupted") and not self._adopt:
            adopted = 0
            windows = self._windows()  # the grid is the same for every entity
            for kind, ident in fields:
                done = dataset.done.get(entity_key(kind, ident), Ranges())
                for window in windows:
                    if not done.covers(window.start, window.end):
                        adopted += self._files.adopt(dataset, kind, ident, window.start, window.end)
            if adopted:
                logger.info(
                    "adopted %d window(s) a stopped run wrote after its checkpoint", adopted
                )
        if self._adopt:
            adopted, damaged = self._files.rebuild(dataset)
            logger.warning(
                "rebuilt %s from %d finished file(s); %d damaged file(s) removed, to be "
                "fetched again",
                CHECKPOINT,
                adopted,
                damaged,
            )

    # -- running --------------------------------------------------------------------

    def _require_arrow(self) -> None:
        dataset = self._dataset
        fmt = dataset.format if dataset is not None else None
        if fmt == "parquet":
            try:
                import pyarrow.parquet  # noqa: F401
            except ImportError:
                raise UsageError(
                    "Parquet output needs pyarrow: pip install 'locus-async[arrow]' "
                    "(or use --format csv)"
                ) from None

    async def run(self) -> BackfillResult:
        """Authenticate, list the entities, then lock ``out`` and fetch what is missing,
        provisional or inside the lookback. Nothing is created in ``out`` before the first
        two succeeded; a new ``out`` is created only once a first window came back (a
        caller's own bearer token cannot be checked any other way)."""
        stats = self.client.stats
        before = (
            stats.requests,
            stats.rate_limited,
            stats.retries,
            sum(stats.token_grants.values()),
            stats.busy_seconds,
        )
        started = time.monotonic()
        self._now = self.clock()
        self._refused_entities = 0
        try:
            self._dataset = self._read_dataset()
        except UsageError:
            if self._store.exists():
                with self._store.lock():  # a run in progress is the first thing to say
                    pass
            raise
        self._require_arrow()
        await run_in_thread(self._store.check)  # an object store's bucket, before the API
        await self.client.authenticate()
        entities = await self.entities()
        if not entities:
            raise UsageError(f"nothing to backfill: {self._empty_reason()}")
        fields = await self._fields_of(entities)
        if not fields:
            raise UsageError(f"nothing to backfill: {self._none_has_fields(entities)}")
        fetched: dict[_Task, TimeSeries | LocusError] = {}
        if not self._store.exists():
            first = self._classify(fields).todo[:1]
            for task in first:
                try:
                    fetched[task] = await self._fetch(task)
                except AuthenticationError:
                    raise
                except LocusError as exc:  # recorded by the run as that window's failure
                    fetched[task] = exc
        with self._store.lock():
            known = self._dataset
            # Read again holding the lock: another run may have finished in between.
            self._dataset = await run_in_thread(self._read_dataset)
            for key, value in known.available.items():
                if key not in self._dataset.available or self.retry_failed:
                    self._dataset.available[key] = value
            for key, reason in known.skipped.items():
                self._dataset.skipped.setdefault(key, reason)
            await run_in_thread(self._prepare_directory, fields)
            work = await run_in_thread(self._classify, fields)
            return await self._run_locked(
                entities, work, before=before, started=started, fetched=fetched
            )

    async def run_on(
        self,
        dask_client: Any,
        credential: Credential,
        *,
        partition_windows: int = DEFAULT_PARTITION_WINDOWS,
    ) -> BackfillResult:
        """``run()`` with the windows fetched on a Dask cluster (the ``dask`` extra).

        The windows are cut into partitions (``partition_windows`` consecutive windows of
        one entity), each a Dask task; every worker fetches with its own client of
        ``credential``, built from that worker's environment (no secret travels in a
        task), inside the allowance shared through ``credential.redis``. This process
        plans, and writes each window once as it comes back: a partition that runs twice,
        or is lost with its worker and runs again, changes nothing. ``client`` (best
        ``credential.client()``) plans the run: entities and their fields.
        """
        from locus_async.distributed import DaskFetcher

        remote = DaskFetcher(dask_client, credential, partition_windows=partition_windows)
        await remote.prepare()
        self._remote = remote
        try:
            return await self.run()
        finally:
            self._remote.close()
            self._remote = None

    def _none_has_fields(self, entities: Sequence[tuple[str, int]]) -> str:
        dataset = self._dataset
        assert dataset is not None
        kind, ident = entities[0]
        reason = dataset.skipped.get(entity_key(kind, ident), "")
        return (
            f"none of the {len(entities)} entities has {','.join(dataset.fields)} at "
            f"{dataset.gran} (first: {kind[:-1]} {ident} {reason.removeprefix('has ')}); check "
            "--fields and --gran against `locus-async available`"
        )

    def _empty_reason(self) -> str:
        dataset = self._dataset
        assert dataset is not None
        where = [f"site {i}" for i in dataset.entities["site_components"]] + [
            f"partner {i}" for i in dataset.entities["partner_components"]
        ]
        types = f" of node type {', '.join(dataset.node_types)}" if dataset.node_types else ""
        return f"{' and '.join(where)} ha{'s' if len(where) == 1 else 've'} no components{types}"

    async def _run_locked(  # noqa: PLR0915 - one run's bookkeeping in one place
        self,
        entities: Sequence[tuple[str, int]],
        work: _Work,
        *,
        before: tuple[int, int, int, int, float],
        started: float,
        fetched: dict[_Task, TimeSeries | LocusError],
    ) -> BackfillResult:
        dataset = self._dataset
        assert dataset is not None
        stats = self.client.stats
        now = self._now
        todo = work.todo
        progress = BackfillProgress(
            windows_total=work.total, windows_skipped=work.total - len(todo)
        )
        failures: list[WindowFailure] = []
        outcome: dict[_Task, tuple[int, bool]] = {}  # rows without values, file written
        before_run = set(dataset.found)
        new_entities = tuple(e for e in entities if e not in before_run)
        retried = {(t.kind, t.entity_id, t.window.start_utc.isoformat()) for t in todo}
        kept = [
            f
            for f in dataset.failed
            if f.permanent and (f.kind, f.entity_id, f.start) not in retried
        ]
        for task in work.refused:  # not asked again: what it has is all it gets
            dataset.provisional.discard(task.stem)
        # A window that may turn out provisional is listed before its file is written.
        for task in todo:
            if task.window.end > now - self.max_lag:
                dataset.provisional.add(task.stem)
        self._report(progress, before)
        logger.info(
            "backfill of %d windows (%d entities), %d already done",
            work.total,
            len(entities),
            progress.windows_skipped,
        )

        queue = iter(todo)
        auth_failure: list[BaseException] = []
        unsaved = 0

        async def worker(scope: anyio.CancelScope) -> None:
            nonlocal unsaved
            for task in queue:
                try:
                    series = await self._fetch(task) if task not in fetched else fetched.pop(task)
                    if isinstance(series, LocusError):
                        raise series
                    empty, count, last, written = await run_in_thread(
                        self._write, task, series, work
                    )
                except AuthenticationError as exc:
                    auth_failure.append(exc)
                    scope.cancel()
                    return
                except (LocusError, OSError) as exc:
                    failures.append(_failure(task, exc))
                    progress.windows_failed += 1
                    logger.warning("window %s failed: %s", task.stem, exc)
                else:
                    outcome[task] = (empty, written)
                    if last is not None and last > dataset.frontiers.get(task.key, -(2**62)):
                        dataset.frontiers[task.key] = last
                    dataset.ranges(task.key).add(task.window.start, task.window.end)
                    progress.windows_done += 1
                    progress.rows += count
                    unsaved += 1
                    if unsaved >= _SAVE_EVERY:  # so a killed run loses little
                        unsaved = 0
                        data = self._encode_checkpoint("running")
                        await run_in_thread(self._files.save, data)
                self._report(progress, before)

        remote = self._remote
        if remote is not None:
            jobs = [(t, *self._request(t)) for t in todo if t not in fetched]
            remote.plan(jobs, arrow=self._arrow)
        writers = remote.concurrency if remote is not None else self.client.limiter.capacity + 2
        workers = min(len(todo), writers)
        state = "interrupted"  # unless the task group ends normally: Ctrl-C, cancellation
        gaps: list[tuple[str, int, str, str, int]] = []
        try:
            # Inside the try: a cancel while it is written still ends in "interrupted".
            await run_in_thread(self._save_checkpoint, "running")
            async with anyio.create_task_group() as group:
                for _ in range(max(0, workers)):
                    group.start_soon(worker, group.cancel_scope)
            state = "complete" if not failures and not auth_failure else "incomplete"
        finally:
            gaps = self._finalize(outcome, work)
            self._prune_provisional()
            dataset.failed = kept + failures
            dataset.found = list(entities)
            requests = stats.requests - before[0]
            if requests:
                dataset.window_seconds = (stats.busy_seconds - before[4]) / requests
            with anyio.CancelScope(shield=True):
                await run_in_thread(self._save_checkpoint, state)
        if auth_failure:
            raise auth_failure[0]
        compacted = CompactionResult()
        touched = self._touched(outcome) | work.staged
        if self.compact and touched:  # only where this run wrote: no listing otherwise
            keep_after = int(now - self.lookback) if self.lookback else None
            try:
                compacted = await run_in_thread(
                    functools.partial(
                        compact, self._store, dataset, auto=True, keep_after=keep_after,
                        only=touched,
                    )
                )  # fmt: skip
            except BaseException:  # stopped during the compaction: the run did not end
                with anyio.CancelScope(shield=True):
                    await run_in_thread(self._save_checkpoint, "interrupted")
                raise
        refreshed = [t for t in outcome if t in work.had_file]
        return BackfillResult(
            out=self.out,
            windows_total=work.total,
            windows_done=progress.windows_done,
            windows_skipped=progress.windows_skipped,
            failures=tuple(f for f in failures if not f.permanent),
            rows=progress.rows,
            requests=stats.requests - before[0],
            rate_limited=stats.rate_limited - before[1],
            retries=stats.retries - before[2],
            token_grants=sum(stats.token_grants.values()) - before[3],
            busy_seconds=stats.busy_seconds - before[4],
            elapsed=time.monotonic() - started,
            entities=len(entities),
            windows_provisional=len(dataset.provisional),
            windows_refreshed=len(refreshed),
            windows_revised=sum(
                1 for t in refreshed if work.reason.get(t) == "lookback" and outcome[t][1]
            ),
            permanent_failures=tuple(f for f in dataset.failed if f.permanent),
            new_permanent=sum(1 for f in failures if f.permanent) + self._refused_entities,
            skipped_entities=self._skipped(entities),
            new_entities=new_entities,
            gaps=tuple(gaps),
            lagging=self._lagging(work.entities),
            partitions_compacted=compacted.partitions,
        )

    def _finalize(
        self, outcome: dict[_Task, tuple[int, bool]], work: _Work
    ) -> list[tuple[str, int, str, str, int]]:
        """Mark the fetched windows whose data can no longer grow final; the gaps of those
        that turned final by age."""
        dataset = self._dataset
        assert dataset is not None
        gaps = []
        for task, (empty, _) in outcome.items():
            if task.stem not in dataset.provisional:
                continue
            frontier = dataset.frontiers.get(task.key)
            if not is_final(task.window, frontier, self._now, self.max_lag):
                continue
            dataset.provisional.discard(task.stem)
            aged = task.window.end <= self._now - self.max_lag
            if empty and aged and work.reason.get(task) == "provisional":
                window = task.window
                gaps.append(
                    (task.kind, task.entity_id, window.start_utc.isoformat(),
                     window.end_utc.isoformat(), empty)
                )  # fmt: skip
        return gaps

    def _touched(self, outcome: dict[_Task, tuple[int, bool]]) -> set[str]:
        """The partitions the fetched windows have pieces in."""
        dataset = self._dataset
        assert dataset is not None
        tz = resolve_tz(dataset.tz)
        unit = partition_unit(parse_granularity(dataset.gran))
        return {
            name
            for task in outcome
            for name, _, _ in period_bounds(task.window.start, task.window.end, tz, unit)
        }

    def _prune_provisional(self) -> None:
        """Forget provisional windows that are no longer on the grid (a longer window
        with the same start replaced them)."""
        dataset = self._dataset
        assert dataset is not None
        if not dataset.provisional:
            return
        spans = {(w.start, w.end) for w in self._windows()}
        for stem in list(dataset.provisional):
            found = parse_piece(stem + ".parquet")
            if found is None or (found[2], found[3]) not in spans:
                dataset.provisional.discard(stem)

    def _lagging(
        self, entities: Sequence[tuple[str, int]]
    ) -> tuple[tuple[str, int, str | None], ...]:
        """Entities whose newest data is more than an hour (or a bucket) behind the newest
        of the dataset, or that have none: their windows stay provisional, the others'
        do not wait for them."""
        dataset = self._dataset
        assert dataset is not None
        frontiers = {e: dataset.frontiers.get(entity_key(*e)) for e in entities}
        known = [f for f in frontiers.values() if f is not None]
        if not known:
            return ()
        step = STEP_SECONDS.get(parse_granularity(dataset.gran), 86_400)
        limit = max(known) - max(3600, step)
        return tuple(
            (kind, ident, _iso(frontier))
            for (kind, ident), frontier in frontiers.items()
            if frontier is None or frontier < limit
        )

    def _request(self, task: _Task) -> tuple[DataQuery, Window]:
        """What to ask for ``task``: its fields' query and the window as requested now."""
        query = self._query_for(task.fields)
        return query, requested(task.window, self._now, query.gran)

    @property
    def _arrow(self) -> bool:
        return self._dataset is not None and self._dataset.format == "parquet"

    async def _fetch(self, task: _Task) -> TimeSeries:
        query, window = self._request(task)
        if self._remote is not None:
            return await self._remote.fetch(task, query, window, arrow=self._arrow)
        return await self.client.fetch_window(
            task.kind, task.entity_id, query, window, priority=self._priority, arrow=self._arrow
        )

    def _valued(self, series: TimeSeries) -> tuple[Any, int, int, int | None]:
        """The rows with at least one value, in the dataset's fields (Arrow when the
        series is held as Arrow), how many had none, how many are kept, the newest
        timestamp kept."""
        dataset = self._dataset
        assert dataset is not None
        table = series.arrow
        if table is None:
            columns, empty = keep_valued(series.columns, dataset.fields)
            return columns, empty, len(columns), columns.ts[-1] if len(columns) else None
        import pyarrow as pa
        import pyarrow.compute as pc

        present = [n for n in dataset.fields if n in table.column_names]
        if present:
            mask = pc.is_valid(table[present[0]])
            for name in present[1:]:
                mask = pc.or_(mask, pc.is_valid(table[name]))
            kept = table.filter(mask)
        else:
            kept = table.slice(0, 0)
        last = pc.max(kept["ts"].cast(pa.int64())).as_py() if kept.num_rows else None
        newest = None if last is None else last // 1_000_000
        return kept, table.num_rows - kept.num_rows, kept.num_rows, newest

    def _write(
        self, task: _Task, series: TimeSeries, work: _Work
    ) -> tuple[int, int, int | None, bool]:
        """Write a fetched window's valued rows (in a thread): rows without a value, rows
        kept, the newest timestamp kept, whether a file changed."""
        dataset = self._dataset
        assert dataset is not None
        window = task.window
        rows, empty, count, last = self._valued(series)
        written, staged = self._files.write_window(
            dataset, task.kind, task.entity_id, window.start, window.end, rows
        )
        work.staged.update(staged)
        return empty, count, last, written

    def _report(self, progress: BackfillProgress, before: tuple[int, int, int, int, float]) -> None:
        stats = self.client.stats
        progress.requests = stats.requests - before[0]
        progress.rate_limited = stats.rate_limited - before[1]
        progress.retries = stats.retries - before[2]
        if self._progress is not None:
            self._progress(progress)


@attrs.define
class _Work:
    """A run's windows by what they need."""

    total: int = 0
    done: int = 0
    entities: list[tuple[str, int]] = attrs.field(factory=list)
    todo: list[_Task] = attrs.field(factory=list)
    refused: list[_Task] = attrs.field(factory=list)
    reason: dict[_Task, str] = attrs.field(factory=dict)  # new, provisional, lookback
    had_file: set[_Task] = attrs.field(factory=set)  # finished before this run
    staged: set[str] = attrs.field(factory=set)  # partitions with staged replacements


def _failure(task: _Task, exc: BaseException) -> WindowFailure:
    window = task.window
    status = exc.status_code if isinstance(exc, APIError) else None
    return WindowFailure(
        task.kind,
        task.entity_id,
        window.start_utc.isoformat(),
        window.end_utc.isoformat(),
        str(exc),
        status,
        isinstance(exc, _PERMANENT),
    )
