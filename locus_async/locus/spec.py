"""What to backfill: ``BackfillSpec``, every argument checked when it is made.

Owns: the spec's fields and their checks (types named, one id is a list of one, a comma
string of fields is a list of fields), the query it stands for, and the fingerprint a
checkpoint keeps. Must never: do I/O.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Literal

import attrs

from locus_async._core.times import resolve_tz
from locus_async.errors import InvalidArgumentType, UsageError
from locus_async.locus._core.freshness import relative_moment
from locus_async.locus._core.query import DataQuery, check_id, parse_fields, prepare_data_query
from locus_async.locus._core.windows import to_instant
from locus_async.locus.models import Granularity

if TYPE_CHECKING:
    pass


__all__ = ["BackfillSpec", "Format"]

Format = Literal["parquet", "csv"]


def _ids(values: Iterable[int], name: str) -> tuple[int, ...]:
    return tuple(dict.fromkeys(check_id(v, name) for v in values))


def _sequence(value: object, name: str) -> tuple[object, ...]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise InvalidArgumentType(
            f"{name} must be a list or tuple, not {type(value).__name__}"
            + (" (wrap a single value in a list)" if isinstance(value, str | int) else "")
        )
    return tuple(value)


def _id_list(value: object, name: str, what: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)  # one id is fine too
    return _ids(_sequence(value, name), what)  # type: ignore[arg-type]


def _components(value: object) -> tuple[int, ...]:
    return _id_list(value, "components", "component id")


def _sites(value: object) -> tuple[int, ...]:
    return _id_list(value, "sites", "site id")


def _site_components(value: object) -> tuple[int, ...]:
    return _id_list(value, "site_components", "site id")


def _partner_components(value: object) -> tuple[int, ...]:
    return _id_list(value, "partner_components", "partner id")


def _node_types(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    items = _sequence(value, "node_types")
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise InvalidArgumentType(
                f"node_types must be names such as 'METER' or 'INVERTER', not {item!r}"
            )
    return tuple(str(item).strip() for item in items)


def _moment(value: object, name: str) -> date | str | None:
    if value is not None and not isinstance(value, date | str):
        raise InvalidArgumentType(
            f"{name} must be a datetime, a date or an ISO 8601 string, not {type(value).__name__}"
        )
    return value


def _start(value: object) -> date | str | None:
    return _moment(value, "start")


def _end(value: object) -> date | str | None:
    return _moment(value, "end")


def _text(value: object, name: str) -> str:
    if isinstance(value, Granularity):
        return value.value
    if not isinstance(value, str):
        raise InvalidArgumentType(f"{name} must be a str, not {type(value).__name__}")
    return value


def _tz(value: object) -> str:
    return _text(value, "tz")


def _gran(value: object) -> str:
    return _text(value, "gran")


@attrs.frozen
class BackfillSpec:
    """What to backfill. Entities come from any mix of the id lists; node types filter the
    components found through ``site_components`` and ``partner_components``. ``fields`` is
    a list of short names or one comma-separated string. ``start`` and ``end`` are local
    times in ``tz`` (or aware), and may be relative: ``end="now"`` keeps the dataset open
    (it grows with every sync), ``start="-30d"`` is 30 days before the first run. Every
    argument is checked here."""

    fields: tuple[str, ...] = attrs.field(converter=parse_fields)
    start: date | str | None = attrs.field(converter=_start)
    end: date | str | None = attrs.field(converter=_end)
    tz: str = attrs.field(converter=_tz)
    gran: str = attrs.field(converter=_gran)
    components: tuple[int, ...] = attrs.field(default=(), converter=_components)
    sites: tuple[int, ...] = attrs.field(default=(), converter=_sites)
    site_components: tuple[int, ...] = attrs.field(default=(), converter=_site_components)
    partner_components: tuple[int, ...] = attrs.field(default=(), converter=_partner_components)
    node_types: tuple[str, ...] = attrs.field(default=(), converter=_node_types)
    format: Format = "parquet"

    def __attrs_post_init__(self) -> None:
        if self.format not in ("parquet", "csv"):
            raise UsageError(f"format must be parquet or csv, not {self.format!r}")

    @property
    def open_end(self) -> bool:
        """True for ``end="now"``: the dataset runs up to the present and keeps growing."""
        return isinstance(self.end, str) and self.end.strip().lower() == "now"

    def query(self, now: float | None = None) -> DataQuery:
        """The checked query, with ``now`` and relative moments (``-30d``) read against
        ``now`` (unix seconds; default the wall clock)."""
        moment = time.time() if now is None else now
        start, end = self.start, self.end
        begin = relative_moment(start, moment, "start")
        finish = relative_moment(end, moment, "end")
        if begin is not None or finish is not None:
            zone = resolve_tz(self.tz)
            if begin is None and start is not None:
                begin = to_instant(start, zone, name="start")[0]
            if finish is None and end is not None:
                finish = to_instant(end, zone, name="end")[0]
            start = None if begin is None else datetime.fromtimestamp(begin, UTC)
            end = None if finish is None else datetime.fromtimestamp(finish, UTC)
        query = prepare_data_query(
            fields=list(self.fields), start=start, end=end, tz=self.tz, gran=self.gran
        )
        if query.gran is Granularity.LATEST:
            raise UsageError("a backfill needs a range; latest is a single request (use data)")
        return query

    def check(self, now: float | None = None) -> DataQuery:
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
        return self.query(now)
