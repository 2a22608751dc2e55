"""Backfills and syncs past one machine: windows fetched on a Dask cluster, one allowance
per credential (the ``dask`` and ``redis`` extras).

Owns: ``Credential`` (a credential by name: which environment variables hold its secrets
on every machine, its allowance, base URL and the Redis that shares its limiter and token),
the partitions (an entity's consecutive windows, fetched by one Dask task), the worker
side (one blocking client per credential per worker process, built from the worker's own
environment), the coordinator side (``DaskFetcher``: partitions submitted a bounded
distance ahead, their windows handed to the backfill's writer), and the fleet file
(``load_fleet``: many credentials and their datasets). Must never: put a secret in a
task, a key or a result, or write a file on a worker.

A partition only reads: the coordinator alone writes, each window once, whole (see
``Backfill``). So a partition may run twice, or be lost with its worker and run again
elsewhere, and the dataset is the same.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import re
import threading
import tomllib
import uuid
from collections import Counter, OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.to_thread
import attrs

from locus_async._core.checks import check_whole
from locus_async._core.http import check_base_url
from locus_async.errors import (
    AuthenticationError,
    InvalidArgumentType,
    LocusError,
    TransportError,
    UsageError,
)

if TYPE_CHECKING:
    from locus_async.locus.backfill import BackfillSpec
    from locus_async.locus.client import LocusClient
    from locus_async.locus.sync import LocusClient as SyncLocusClient
    from locus_async.locus.timeseries import TimeSeries

__all__ = ["Credential", "DaskFetcher", "FleetDataset", "load_fleet"]

#: The variables of a credential, without their prefix (see ``LocusClient.from_env``).
_VARIABLES: Final = (
    "AUTH",
    "ACCESS_TOKEN",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "USERNAME",
    "PASSWORD",
    "COGNITO_CLIENT_ID",
    "COGNITO_REGION",
    "COGNITO_ENDPOINT",
)
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_PREFIX: Final = re.compile(r"[A-Z][A-Z0-9_]*_")

#: Windows per partition: enough to amortise a task's start, few enough to rebalance.
DEFAULT_PARTITION_WINDOWS: Final = 8


def _check_redis(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith(("redis://", "rediss://")):
        raise UsageError(f"redis must be a redis:// or rediss:// URL, not {value!r}")
    return value


@attrs.frozen
class Credential:
    """One Locus credential, by name: what a task carries instead of a secret.

    ``name``: how it is known (keys in Redis, progress lines); ``env_prefix``: its
    variables on every machine are the ``LOCUS_*`` ones with this prefix instead of
    ``LOCUS_`` (``ACME_CLIENT_ID``, ``ACME_PASSWORD``...); ``allowance``: requests it may
    have in progress, across all workers; ``base_url``: its API host (None: the default);
    ``redis``: the Redis URL whose limiter and token store it shares (needed on a cluster).
    """

    name: str = attrs.field()
    env_prefix: str = attrs.field(default="LOCUS_")
    allowance: int = attrs.field(default=1)
    base_url: str | None = attrs.field(default=None)
    redis: str | None = attrs.field(default=None, converter=_check_redis)

    @name.validator
    def _name(self, _: object, value: object) -> None:
        if not isinstance(value, str) or not _NAME.fullmatch(value):
            raise UsageError(f"credential name {value!r} must be letters, digits, '.', '-', '_'")

    @env_prefix.validator
    def _prefix(self, _: object, value: object) -> None:
        if not isinstance(value, str) or not _PREFIX.fullmatch(value):
            raise UsageError(f"env_prefix {value!r} must be upper case and end in '_' (ACME_)")

    @allowance.validator
    def _allowance(self, _: object, value: object) -> None:
        check_whole(value, "allowance")

    @base_url.validator
    def _base_url(self, _: object, value: object) -> None:
        if value is not None:
            check_base_url(value)  # type: ignore[arg-type]

    def environment(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """Its ``LOCUS_*`` variables, read from ``environ`` (default: this process's)."""
        source = os.environ if environ is None else environ
        env = {
            f"LOCUS_{name}": source[self.env_prefix + name]
            for name in _VARIABLES
            if source.get(self.env_prefix + name)
        }
        if not env:
            raise UsageError(
                f"credential {self.name!r}: none of its variables is set on this machine "
                f"({self.env_prefix}CLIENT_ID, {self.env_prefix}PASSWORD...)"
            )
        return env

    def _options(self, environ: Mapping[str, str] | None) -> dict[str, Any]:
        from locus_async.locus.client import auth_from_env

        store = limiter = None
        if self.redis is not None:
            from locus_async._shell.redis import RedisLimiter, RedisTokenStore

            store = RedisTokenStore(self.redis, key=f"locus:{self.name}:token")
            limiter = RedisLimiter(self.redis, key=f"locus:{self.name}", capacity=self.allowance)
        options: dict[str, Any] = {"auth": auth_from_env(self.environment(environ), store=store)}
        if limiter is not None:
            options["limiter"] = limiter
        else:
            options["max_concurrency"] = self.allowance
        if self.base_url is not None:
            options["base_url"] = self.base_url
        return options

    def client(self, environ: Mapping[str, str] | None = None, **kwargs: Any) -> LocusClient:
        """An async client of this credential: its secrets from ``environ``, its allowance
        (shared through Redis when ``redis`` is set). ``kwargs`` go to ``LocusClient``."""
        from locus_async.locus.client import LocusClient

        return LocusClient(**{**self._options(environ), **kwargs})

    def blocking_client(self, environ: Mapping[str, str] | None = None) -> SyncLocusClient:
        """The blocking client a worker uses (its event loop on a thread of its own)."""
        from locus_async.locus.sync import LocusClient as SyncLocusClient

        return SyncLocusClient(**self._options(environ))


# --------------------------------------------------------------------- the worker side

#: This process's clients, least recently used first; how many calls use each now.
_CLIENTS: OrderedDict[Credential, SyncLocusClient] = OrderedDict()
_IN_USE: Counter[Credential] = Counter()
_CLIENTS_LOCK = threading.Lock()
#: Clients kept beyond those in use: the least recently used idle ones are closed (each
#: holds a thread, its connections and its Redis pool).
MAX_IDLE_CLIENTS: Final = 16


@contextlib.contextmanager
def _worker_client(credential: Credential) -> Iterator[SyncLocusClient]:
    """This process's client of ``credential``, made once from its own environment and
    kept for the next partitions; idle clients past ``MAX_IDLE_CLIENTS`` are closed."""
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(credential)
        if client is None:
            client = _CLIENTS[credential] = credential.blocking_client()
        _CLIENTS.move_to_end(credential)
        _IN_USE[credential] += 1
    try:
        yield client
    finally:
        with _CLIENTS_LOCK:
            _IN_USE[credential] -= 1
            if not _IN_USE[credential]:
                del _IN_USE[credential]
            _CLIENTS.move_to_end(credential)  # used last: the last to retire
            idle = [c for c in _CLIENTS if c not in _IN_USE]
            retired = [_CLIENTS.pop(c) for c in idle[: max(0, len(idle) - MAX_IDLE_CLIENTS)]]
        for old in retired:
            old.close()


async def _fetch_all(
    client: LocusClient,
    kind: str,
    entity_id: int,
    query: Any,
    windows: Sequence[Any],
    *,
    arrow: bool,
) -> list[TimeSeries | LocusError]:
    """The windows at once through the client's limiter (which keeps them to the
    allowance), so that one window's decoding overlaps the next one's request."""
    results: list[TimeSeries | LocusError | None] = [None] * len(windows)
    refused: list[AuthenticationError] = []

    async def one(index: int, window: Any) -> None:
        try:
            results[index] = await client.fetch_window(kind, entity_id, query, window, arrow=arrow)
        except AuthenticationError as exc:
            refused.append(exc)
            group.cancel_scope.cancel()
        except LocusError as exc:
            results[index] = exc

    async with anyio.create_task_group() as group:
        for index, window in enumerate(windows):
            group.start_soon(one, index, window)
    if refused:
        raise refused[0]
    return [r for r in results if r is not None]


def fetch_partition(
    credential: Credential,
    kind: str,
    entity_id: int,
    query: Any,
    windows: Sequence[Any],
    *,
    arrow: bool,
) -> list[TimeSeries | LocusError]:
    """A Dask task: ``windows`` of one entity, in order, each a series or the error the
    API gave it. An authentication failure fails the task (the run stops)."""
    with _worker_client(credential) as client:
        results = client._loop.run(
            functools.partial(
                _fetch_all, client.client, kind, entity_id, query, windows, arrow=arrow
            )
        )
    assert len(results) == len(windows)
    return results


# ---------------------------------------------------------------- the coordinator side


@attrs.define(eq=False)
class _Partition:
    tasks: list[Any]
    kind: str
    entity_id: int
    query: Any
    windows: list[Any]
    rank: int = 0
    left: int = 0
    future: Any = None
    submitted: anyio.Event = attrs.field(factory=anyio.Event)
    #: Its result, gathered once for all its windows (or why it failed).
    results: list[Any] | None = None
    failure: BaseException | None = None
    gathering: bool = False
    #: Set when the result arrived, or when the window gathering it gave up (cancelled).
    changed: anyio.Event = attrs.field(factory=anyio.Event)


class DaskFetcher:
    """Fetches a backfill's windows on a Dask cluster, a partition per task, and hands
    each window to the backfill's writer.

    At most ``ahead`` partitions of the run are on the cluster at once (default: the
    credential's allowance). More would only wait on the worker for the credential's
    Redis slot, holding a worker thread that another credential's partition could use.
    Partitions go out in the order they are written; the next one leaves as soon as one
    finishes.
    """

    def __init__(
        self,
        dask_client: Any,
        credential: Credential,
        *,
        partition_windows: int = DEFAULT_PARTITION_WINDOWS,
        ahead: int | None = None,
    ) -> None:
        if not isinstance(credential, Credential):
            raise InvalidArgumentType(
                f"credential must be a Credential, not {type(credential).__name__}"
            )
        if not callable(getattr(dask_client, "submit", None)):
            raise InvalidArgumentType(
                f"dask_client must be a dask.distributed.Client, not {type(dask_client).__name__}"
            )
        if credential.redis is None:
            raise UsageError(
                f"credential {credential.name!r} needs redis= (--redis URL) on a cluster: it "
                "is what keeps every worker inside its allowance and its token grants to one"
            )
        self.dask = dask_client
        self.credential = credential
        self.partition_windows = check_whole(partition_windows, "partition_windows")
        self.ahead = check_whole(ahead, "ahead") if ahead is not None else credential.allowance
        #: Writers the backfill runs: the windows of the partitions out, and of the next.
        self.concurrency = (self.ahead + 1) * self.partition_windows
        self._of: dict[Any, _Partition] = {}
        self._order: list[_Partition] = []
        self._out: set[_Partition] = set()
        self._next = 0
        self._arrow = False
        self.partitions_submitted = 0

    async def prepare(self) -> None:
        """Ready the cluster's workers, before the first partition: on Python 3.11, the
        plugin that switches Dask's profiler off (CPython gh-106883; see
        ``_shell/dask_plugin.py``), on every worker and on those that start later."""
        from locus_async._shell.dask_plugin import ProfilerOff, profiler_deadlocks
        from locus_async._shell.fanout import run_in_thread

        if profiler_deadlocks():
            await run_in_thread(self.dask.register_plugin, ProfilerOff())

    def plan(self, jobs: Sequence[tuple[Any, Any, Any]], *, arrow: bool) -> None:
        """Cut ``jobs`` (task, query, window: in the order they will be written) into
        partitions of one entity's consecutive windows, and send out the first ones."""
        self._arrow = arrow
        for (kind, entity_id, _), group in itertools.groupby(
            jobs, key=lambda job: (job[0].kind, job[0].entity_id, job[0].fields)
        ):
            rows = list(group)
            for start in range(0, len(rows), self.partition_windows):
                chunk = rows[start : start + self.partition_windows]
                part = _Partition(
                    tasks=[row[0] for row in chunk],
                    kind=kind,
                    entity_id=entity_id,
                    query=chunk[0][1],
                    windows=[row[2] for row in chunk],
                    rank=len(self._order),
                    left=len(chunk),
                )
                self._order.append(part)
                for row in chunk:
                    self._of[row[0]] = part
        self._top_up()

    def _submit(self, part: _Partition) -> None:
        key = f"locus-{self.credential.name}-{part.kind}-{part.entity_id}-{uuid.uuid4().hex}"
        part.future = self.dask.submit(
            fetch_partition,
            self.credential,
            part.kind,
            part.entity_id,
            part.query,
            part.windows,
            arrow=self._arrow,
            key=key,
            pure=False,
            # The k-th partition of every run goes before any run's (k+1)-th: runs of
            # several credentials at once take turns.
            priority=-part.rank,
        )
        self.partitions_submitted += 1
        self._out.add(part)
        part.submitted.set()

    def _top_up(self) -> None:
        """Send out the next partitions while fewer than ``ahead`` are unfinished."""
        self._out = {p for p in self._out if p.future is not None and not p.future.done()}
        while len(self._out) < self.ahead and self._next < len(self._order):
            self._submit(self._order[self._next])
            self._next += 1

    async def _gather(self, part: _Partition) -> list[Any]:
        """The partition's result, fetched from the cluster once (the first window to
        ask fetches it; the others wait for it), then let go on the cluster."""
        while part.results is None and part.failure is None:
            if part.gathering:
                await part.changed.wait()
                continue
            part.gathering = True
            try:
                part.results = await anyio.to_thread.run_sync(
                    part.future.result, abandon_on_cancel=True
                )
            except (LocusError, OSError) as exc:
                part.failure = exc
            except Exception as exc:  # the task failed on the cluster (a worker lost too often)
                part.failure = TransportError(
                    f"the Dask task for {part.kind} {part.entity_id} failed: "
                    f"{type(exc).__name__}: {exc}"
                )
            except BaseException:  # cancelled: another window of it takes over
                part.gathering = False
                gave_up, part.changed = part.changed, anyio.Event()
                gave_up.set()
                raise
            part.future = None  # Dask forgets the result once nobody holds it
            part.changed.set()
            self._top_up()
        if part.failure is not None:
            raise part.failure
        assert part.results is not None
        return part.results

    async def fetch(self, task: Any, query: Any, window: Any, *, arrow: bool) -> TimeSeries:
        """The series of ``task``'s window, from its partition's result."""
        part = self._of.pop(task, None)
        if part is None:  # not planned (the first window of a new dataset): a partition alone
            self._arrow = arrow
            part = _Partition([task], task.kind, task.entity_id, query, [window], left=1)
            self._submit(part)
        await part.submitted.wait()
        try:
            value = (await self._gather(part))[part.tasks.index(task)]
        finally:
            part.left -= 1
            if part.left == 0:
                part.results = None
        if isinstance(value, BaseException):
            raise value
        return value  # type: ignore[no-any-return]

    def close(self) -> None:
        """Cancel the partitions nobody will read."""
        for part in self._order:
            if part.future is not None:
                part.future.cancel()
                part.future = None


# ---------------------------------------------------------------------- the fleet file


@attrs.frozen
class FleetDataset:
    """One dataset of a fleet file: its credential, its ``out`` and (to create it) spec."""

    credential: Credential
    out: str
    spec: BackfillSpec | None


_SPEC_KEYS: Final = (
    "fields", "start", "end", "tz", "gran", "components", "sites", "site_components",
    "partner_components", "node_types", "format",
)  # fmt: skip


def load_fleet(path: str | os.PathLike[str], *, redis: str | None = None) -> list[FleetDataset]:
    """The datasets of a fleet file (TOML): ``[credentials.NAME]`` tables (``env_prefix``,
    ``allowance``, ``base_url``) and ``[[datasets]]`` (``credential``, ``out`` and the
    ``BackfillSpec`` fields to create it; an existing dataset is synced as stored).
    ``redis``: the Redis URL (default: the file's top-level ``redis``)."""
    from locus_async.locus.backfill import BackfillSpec

    where = Path(path)
    try:
        document = tomllib.loads(where.read_text("utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read the fleet file {str(where)!r}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"the fleet file {str(where)!r} is not TOML: {exc}") from None
    redis = redis or document.get("redis")
    tables = document.get("credentials")
    if not isinstance(tables, dict) or not tables:
        raise UsageError(f"{where.name}: no [credentials.NAME] table")
    credentials: dict[str, Credential] = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise UsageError(f"{where.name}: credentials.{name} must be a table")
        unknown = sorted(set(table) - {"env_prefix", "allowance", "base_url"})
        if unknown:
            raise UsageError(f"{where.name}: credentials.{name}: unknown key {unknown[0]!r}")
        credentials[name] = Credential(name=name, redis=redis, **table)
    datasets: list[FleetDataset] = []
    entries = document.get("datasets")
    if not isinstance(entries, list) or not entries:
        raise UsageError(f"{where.name}: no [[datasets]] entry")
    for index, entry in enumerate(entries, 1):
        label = f"{where.name}: datasets #{index}"
        if not isinstance(entry, dict):
            raise UsageError(f"{label} must be a table")
        unknown = sorted(set(entry) - {"credential", "out", *_SPEC_KEYS})
        if unknown:
            raise UsageError(f"{label}: unknown key {unknown[0]!r}")
        credential = credentials.get(str(entry.get("credential")))
        if credential is None:
            raise UsageError(f"{label}: credential {entry.get('credential')!r} is not defined")
        out = entry.get("out")
        if not isinstance(out, str) or not out:
            raise UsageError(f"{label}: out must be a path or URL")
        given = {key: entry[key] for key in _SPEC_KEYS if key in entry}
        for key in ("components", "sites", "site_components", "partner_components", "node_types"):
            if key in given:
                given[key] = tuple(given[key])
        if "fields" in given and isinstance(given["fields"], list):
            given["fields"] = tuple(given["fields"])
        spec = BackfillSpec(**given) if given else None
        datasets.append(FleetDataset(credential=credential, out=out, spec=spec))
    return datasets
