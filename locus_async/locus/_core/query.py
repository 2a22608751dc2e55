"""Checking and normalising the arguments of data and alert calls, before any I/O.

Owns: ids, field lists, field parameters, the time range of a data call, and the
partner-alert rules (``updatedSince`` at most 7 days ago, ``openDuring`` windows of at most
31 days). Every problem is a UsageError (or InvalidArgumentType) naming the argument.
Must never: do I/O or read a clock (``now`` is an argument).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Final
from zoneinfo import ZoneInfo

import attrs

from locus_async._core.checks import check_id
from locus_async.errors import InvalidArgumentType, UsageError
from locus_async.locus._core.windows import (
    DEFAULT_LIMITS,
    STEP_SECONDS,
    local_string,
    parse_granularity,
    resolve_tz,
    to_instant,
)
from locus_async.locus.models import Granularity

__all__ = [
    "ALERT_PRIORITIES",
    "ALERT_STATUSES",
    "DataQuery",
    "check_id",
    "merge_limits",
    "parse_fields",
    "prepare_data_query",
]

_FIELD: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_PARAM: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_RESERVED: Final = frozenset({"fields", "start", "end", "tz", "gran"})

ALERT_STATUSES: Final = ("open", "closed")
ALERT_PRIORITIES: Final = ("high", "medium", "low")

#: Partner alerts: how far back ``updatedSince`` may go, and the longest ``openDuring``.
UPDATED_SINCE_MAX_AGE: Final = timedelta(days=7)
OPEN_DURING_MAX: Final = timedelta(days=31)


def parse_fields(fields: object) -> tuple[str, ...]:
    """Field short names from a list or a comma string; order kept, duplicates dropped."""
    if isinstance(fields, str):
        items: list[object] = [part.strip() for part in fields.split(",")]
    elif isinstance(fields, Iterable) and not isinstance(fields, bytes | Mapping):
        items = list(fields)
    else:
        raise InvalidArgumentType(
            "fields must be a list of names or a comma-separated string, "
            f"not {type(fields).__name__}"
        )
    names: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidArgumentType(f"every field must be a string, got {type(item).__name__}")
        if not _FIELD.match(item):
            raise UsageError(
                f"field {item!r} is not a valid short name (letters, digits and '_', like 'Wh_sum')"
            )
        if item not in names:
            names.append(item)
    if not names:
        raise UsageError("fields is empty; name at least one field, for example ['Wh_sum']")
    return tuple(names)


def parse_params(params: Mapping[str, object] | None) -> tuple[tuple[str, str], ...]:
    """Field parameters (``modelType`` ...) as query pairs; booleans become ``true``/``false``."""
    if params is None:
        return ()
    if not isinstance(params, Mapping):
        raise InvalidArgumentType(f"field_params must be a mapping, not {type(params).__name__}")
    pairs: list[tuple[str, str]] = []
    for name, value in params.items():
        if not isinstance(name, str) or not _PARAM.match(name):
            raise UsageError(f"field parameter name {name!r} is not valid")
        if name in _RESERVED:
            raise UsageError(f"field parameter {name!r} clashes with a standard argument")
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str | int | float):
            text = str(value)
        else:
            raise InvalidArgumentType(
                f"field parameter {name!r} must be a string, number or bool, "
                f"not {type(value).__name__}"
            )
        pairs.append((name, text))
    return tuple(pairs)


def merge_limits(
    overrides: Mapping[Granularity | str, timedelta | None] | None,
) -> dict[Granularity, timedelta | None]:
    """The default limits table with a client's overrides applied."""
    limits = dict(DEFAULT_LIMITS)
    for key, value in (overrides or {}).items():
        gran = parse_granularity(key)
        if gran is Granularity.LATEST:
            raise UsageError("latest has no time range, so it takes no limit")
        if value is not None:
            if not isinstance(value, timedelta):
                raise InvalidArgumentType(
                    f"the {gran.value} limit must be a timedelta or None, "
                    f"not {type(value).__name__}"
                )
            step = STEP_SECONDS.get(gran, 86_400)
            if value.total_seconds() <= step:
                raise UsageError(f"the {gran.value} limit {value} is not longer than one bucket")
        limits[gran] = value
    return limits


@attrs.frozen
class DataQuery:
    """A checked data request: what to ask for and the whole range, as instants."""

    fields: tuple[str, ...]
    tz: ZoneInfo
    gran: Granularity
    start: int | None
    end: int | None
    params: tuple[tuple[str, str], ...] = ()

    def query(
        self, start: int | None = None, end: int | None = None
    ) -> tuple[tuple[str, str], ...]:
        """Query pairs for one window (none for ``latest``), in the reference's order."""
        pairs: list[tuple[str, str]] = [("fields", ",".join(self.fields))]
        if start is not None and end is not None:
            pairs += [("start", local_string(start, self.tz)), ("end", local_string(end, self.tz))]
        pairs += [("tz", self.tz.key), ("gran", self.gran.value)]
        return (*pairs, *self.params)


def prepare_data_query(
    *,
    fields: object,
    start: object,
    end: object,
    tz: object,
    gran: object,
    field_params: Mapping[str, object] | None = None,
    allow_latest: bool = True,
) -> DataQuery:
    """Check every argument of a data call and normalise it."""
    names = parse_fields(fields)
    granularity = parse_granularity(gran)
    zone = resolve_tz(tz)
    params = parse_params(field_params)
    if granularity is Granularity.LATEST:
        if not allow_latest:
            raise UsageError("latest is only available for component data")
        if start is not None or end is not None:
            raise UsageError("latest takes no start or end: it returns the newest point only")
        return DataQuery(names, zone, granularity, None, None, params)
    if start is None or end is None:
        missing = "start" if start is None else "end"
        raise UsageError(f"{missing} is required for {granularity.value} data")
    begin, begin_aware = to_instant(start, zone, name="start")
    finish, finish_aware = to_instant(end, zone, name="end")
    if begin_aware != finish_aware:
        raise UsageError(
            "start and end mix a naive and an aware datetime; give both as local times in tz "
            "(naive) or both with a UTC offset (aware)"
        )
    if begin >= finish:
        raise UsageError(
            f"start ({local_string(begin, zone)}) must be before end "
            f"({local_string(finish, zone)}) in {zone.key}"
        )
    return DataQuery(names, zone, granularity, begin, finish, params)


def check_choice(value: object, name: str, choices: tuple[str, ...]) -> str:
    """A comma list of values from ``choices`` (case-insensitive) as the wire string."""
    if isinstance(value, str):
        items: list[object] = [v.strip() for v in value.split(",")]
    elif isinstance(value, Iterable):
        items = list(value)
    else:
        raise InvalidArgumentType(f"{name} must be a string or a list of strings")
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidArgumentType(f"every {name} value must be a string")
        low = item.lower()
        if low not in choices:
            raise UsageError(f"{name} {item!r} is not one of: {', '.join(choices)}")
        out.append(low)
    if not out:
        raise UsageError(f"{name} is empty")
    return ",".join(out)


def alert_types_param(value: object) -> str:
    """Alert types as a comma list (kept as given: new types may appear)."""
    if isinstance(value, str):
        items: list[object] = [v.strip() for v in value.split(",")]
    elif isinstance(value, Iterable):
        items = list(value)
    else:
        raise InvalidArgumentType("alert_types must be a string or a list of strings")
    if not items or not all(isinstance(i, str) and i for i in items):
        raise UsageError("alert_types must be non-empty strings like 'Device Fault'")
    return ",".join(str(i) for i in items)
