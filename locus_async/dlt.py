"""A dlt source for the Locus API (the ``dlt`` extra): every dlt destination (DuckDB,
Postgres, BigQuery, Snowflake...) without code of ours per warehouse::

    import dlt
    from locus_async.dlt import locus_source

    pipeline = dlt.pipeline("locus", destination="duckdb", dataset_name="fleet")
    pipeline.run(locus_source(partner_id=111, fields="W_avg,Wh_sum", gran="hourly"))

Owns: ``locus_source``, its resources ``sites``, ``components``, ``alerts`` and
``timeseries`` (merged on their keys), and the time series' incremental state, per
component, in dlt's own resource state: where each component's data had reached (its
frontier), and a digest of each row that may still change, so that a scheduled run loads
exactly the rows that are new or were revised. Late data is treated as ``sync`` treats it:
what lies after a component's frontier is asked again on every run, until it is older than
``max_lag``; ``lookback`` asks again for the last span of that length before now, for late
revisions. Every request goes through one blocking client, so through its
limiter. Must never: redo what the client does (windows, retries, decoding, limits).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import attrs

try:
    import dlt
except ImportError as exc:  # pragma: no cover - exercised by the light-install test
    raise ImportError("locus_async.dlt needs dlt: pip install 'locus-async[dlt]'") from exc

from locus_async._core.checks import check_id
from locus_async._core.times import resolve_tz
from locus_async.errors import BadRequest, NotFound, PermissionDenied, UsageError
from locus_async.locus._core.freshness import parse_duration, relative_moment
from locus_async.locus._core.query import UPDATED_SINCE_MAX_AGE, parse_fields
from locus_async.locus._core.windows import (
    bucket_ceil,
    bucket_floor,
    later_unambiguous,
    to_instant,
)
from locus_async.locus.models import Granularity
from locus_async.locus.requester import fields_offered
from locus_async.locus.sync import LocusClient

__all__ = ["locus_source"]

#: Granularities whose buckets a lookback in whole seconds keeps aligned.
GRANULARITIES = ("1min", "5min", "15min", "hourly", "daily")
_REFUSED = (BadRequest, NotFound, PermissionDenied)


def _digest(values: Sequence[float | None]) -> int:
    """A short, stable fingerprint of one row's values (to tell a revised row)."""
    return zlib.crc32(repr(tuple(values)).encode())


def _start_moment(start: object, now: float, tz: ZoneInfo) -> int:
    """Unix seconds of ``start``: ``-30d`` before now, or a time as the client reads one
    (naive is wall time in ``tz``, DST-safe)."""
    relative = relative_moment(start, now, "start")
    return relative if relative is not None else to_instant(start, tz, name="start")[0]


def _begin(
    first: int, frontier: int | None, asked: int | None, oldest: int, lookback: float | None
) -> int:
    """Where a component's next request starts: everything on its first run; then from
    its frontier (what follows it may still arrive), unless that was older than
    ``oldest`` (the end of the wait for late data, as of the last run), never after what
    was last asked for (a pipeline left unrun for long misses nothing), and from
    ``lookback`` (a moment) if that is earlier (late revisions of final rows)."""
    if asked is None:
        return first
    tail = frontier if frontier is not None else first
    begin = min(max(tail, oldest), asked)
    if lookback is not None:
        begin = min(begin, int(lookback))
    return max(begin, first)


@attrs.frozen
class _Loader:
    """One source's checked arguments and what its resources fetch."""

    api: LocusClient
    partner_id: int
    names: tuple[str, ...]
    gran: Granularity
    zone: ZoneInfo
    start_at: int
    ids: tuple[int, ...] | None
    lookback: int
    max_lag: int
    clock: Callable[[], float]

    def alerts(self, since: datetime) -> list[dict[str, Any]]:
        """Alerts updated since ``since`` (dlt's cursor). The API takes updated_since up
        to 7 days back; a first run from further back, or a pipeline left unrun for a
        week, asks for the alerts open meanwhile instead."""
        moment = self.clock()
        since = since.astimezone(self.zone)
        partners, tz = self.api.partners, self.zone.key
        if moment - since.timestamp() < UPDATED_SINCE_MAX_AGE.total_seconds() - 60:
            found = partners.alerts(self.partner_id, tz=tz, updated_since=since)
        else:
            span = (since, datetime.fromtimestamp(moment, self.zone))
            found = partners.alerts(self.partner_id, tz=tz, open_during=span)
        return _rows(found)

    def fields_of(self, ident: int) -> list[str]:
        """The source's fields the component has at this granularity (asked once: a
        refusal means none, as ``sync`` records a permanent failure)."""
        try:
            offered = self.api.components.data_available(ident)
        except _REFUSED:
            return []
        short = fields_offered(offered, self.gran)
        return [name for name in self.names if name in short]

    def timeseries(self, state: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """Each component's rows that are new or changed since the last run (``state``:
        dlt's resource state, updated in place as each component is done)."""
        known: dict[str, Any] = state.setdefault("components", {})
        first = int(state.setdefault("start", self.start_at))  # the first run's, kept
        moment = self.clock()
        gran, zone = self.gran, self.zone
        end = later_unambiguous(bucket_ceil(int(moment) + 1, gran, zone), gran, zone)
        oldest = bucket_floor(int(moment) - self.max_lag, gran, zone)
        since = moment - self.lookback if self.lookback else None
        wanted = self.ids
        if wanted is None:
            wanted = tuple(c.id for c in self.api.partners.components(self.partner_id))
        for ident in wanted:
            entry = known.setdefault(str(ident), {"frontier": None, "seen": {}})
            if entry.get("fields") is None:
                entry["fields"] = self.fields_of(ident)
            if not entry["fields"]:
                continue
            # What lay after the frontier last time is asked again, whatever its age now;
            # only what was already past max_lag then is final.
            then = entry.get("oldest", oldest)
            begin = _begin(first, entry["frontier"], entry.get("asked"), then, since)
            begin = bucket_floor(begin, gran, zone)
            if begin >= end:
                continue
            series = self.api.components.data(
                ident,
                fields=list(entry["fields"]),
                gran=gran,
                start=datetime.fromtimestamp(begin, UTC),
                end=datetime.fromtimestamp(end, UTC),
                tz=zone.key,
            )
            batch = self._changed(ident, series, entry)
            entry["asked"], entry["oldest"] = end, oldest
            # Digests of the rows a later run may ask for again (from its earliest start).
            keep = _begin(first, entry["frontier"], end, oldest, since)
            entry["seen"] = {ts: d for ts, d in entry["seen"].items() if int(ts) >= keep}
            if batch:
                yield batch

    def _changed(self, ident: int, series: Any, entry: dict[str, Any]) -> list[dict[str, Any]]:
        """The valued rows of ``series`` not loaded before as they are now; moves the
        component's frontier to its newest valued row."""
        seen: dict[str, int] = entry["seen"]
        frontier: int | None = entry["frontier"]
        batch: list[dict[str, Any]] = []
        for row in series:
            values = [row.get(name) for name in self.names]
            if all(value is None for value in values):
                continue  # past the component's data frontier: not stored
            stamp = int(row["ts"].timestamp())
            frontier = stamp if frontier is None else max(frontier, stamp)
            digest = _digest(values)
            if seen.get(str(stamp)) == digest:
                continue  # loaded before, unchanged
            seen[str(stamp)] = digest
            out = {"id": ident, "ts": row["ts"].astimezone(UTC)}
            out.update(zip(self.names, values, strict=True))
            batch.append(out)
        entry["frontier"] = frontier
        return batch


def _rows(items: Sequence[Any]) -> list[dict[str, Any]]:
    return [attrs.asdict(item) for item in items]


def locus_source(
    partner_id: int,
    *,
    fields: str | Sequence[str],
    gran: str = "hourly",
    tz: str = "UTC",
    start: datetime | str = "-30d",
    components: Sequence[int] | None = None,
    lookback: str | float = 0,
    max_lag: str | float = "7d",
    client: LocusClient | None = None,
    now: Callable[[], float] | None = None,
) -> Any:
    """The dlt source of one partner: ``sites``, ``components``, ``alerts`` (merged on
    ``id``) and ``timeseries`` (merged on ``(id, ts)``, ``ts`` in UTC, one column per
    field, rows without any value left out).

    ``fields``/``gran``/``tz``: what to load (``gran`` from 1min to daily); ``start``: the
    first moment of the first run (``-30d``, an ISO time or a datetime; naive means wall
    time in ``tz``); ``components``: these ids instead of every component of the partner;
    ``lookback``: also ask again for the last span of that length before now (late
    revisions of final rows), ``max_lag``: how long data after a component's frontier
    is waited for (then its gaps are final). ``client``: a blocking
    ``locus_async.sync.LocusClient`` (yours to close), default one from the ``LOCUS_*``
    variables; ``now``: the clock (unix seconds; default the client's).
    """
    if gran not in GRANULARITIES:
        raise UsageError(f"gran must be one of {', '.join(GRANULARITIES)}, not {gran!r}")
    names = parse_fields(fields)
    zone = resolve_tz(tz)
    back, lag = parse_duration(lookback, "lookback"), parse_duration(max_lag, "max_lag")
    ids = None if components is None else tuple(check_id(c, "component id") for c in components)
    api = client if client is not None else LocusClient.from_env()
    clock = now or api.now
    loader = _Loader(
        api, check_id(partner_id, "partner_id"), names, Granularity(gran), zone,
        _start_moment(start, clock(), zone), ids, back, lag, clock,
    )  # fmt: skip
    cursor = dlt.sources.incremental(
        "updated",
        initial_value=datetime.fromtimestamp(loader.start_at, UTC),
        on_cursor_value_missing="include",
    )

    @dlt.resource(name="sites", primary_key="id", write_disposition="merge")
    def sites() -> Iterator[list[dict[str, Any]]]:
        yield _rows(api.partners.sites(loader.partner_id))

    @dlt.resource(name="components", primary_key="id", write_disposition="merge")
    def components_() -> Iterator[list[dict[str, Any]]]:
        yield _rows(api.partners.components(loader.partner_id))

    @dlt.resource(name="alerts", primary_key="id", write_disposition="merge")
    def alerts(updated: Any = cursor) -> Iterator[list[dict[str, Any]]]:
        yield loader.alerts(updated.last_value)

    @dlt.resource(name="timeseries", primary_key=["id", "ts"], write_disposition="merge")
    def timeseries() -> Iterator[list[dict[str, Any]]]:
        yield from loader.timeseries(dlt.current.resource_state())

    return dlt.source(name="locus", max_table_nesting=0)(
        lambda: (sites, components_, alerts, timeseries)
    )()
