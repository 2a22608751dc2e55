"""Data bodies to columns: no object per point.

Owns: reading ``{"data": [{"id", "ts", <field>...}, ...]}`` into columns (ids and unix
seconds as ``array('q')``, one ``list[float | None]`` per field), and merging columns from
several windows in time order without duplicate ``(id, ts)``. Must never: do I/O.

A row's absent field and an explicit ``null`` both become None (the API omits nulls). A
``ts`` without a UTC offset is an error: across a fall-back the offset is the only thing
that tells the two 01:30s apart.
"""

from __future__ import annotations

import itertools
import operator
from array import array
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

import attrs

from locus_async._core.converter import decode_json, note_forgiven
from locus_async.errors import ResponseDecodeError

__all__ = ["Columns", "merge_columns", "parse_data_body"]


@attrs.define
class Columns:
    """Column storage of a time series: ``ids[i]``, ``ts[i]`` (unix s), ``values[f][i]``."""

    fields: tuple[str, ...]
    ids: array[int] = attrs.field(factory=lambda: array("q"))
    ts: array[int] = attrs.field(factory=lambda: array("q"))
    values: dict[str, list[float | None]] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        for name in self.fields:
            self.values.setdefault(name, [])

    def __len__(self) -> int:
        return len(self.ts)

    def extend(self, other: Columns) -> None:
        self.ids.extend(other.ids)
        self.ts.extend(other.ts)
        for name in self.fields:
            self.values[name].extend(other.values.get(name) or [None] * len(other))

    def select(self, keep: Sequence[int]) -> Columns:
        """A new Columns with rows ``keep`` (indices, in the given order)."""
        ids, ts = self.ids, self.ts
        out = Columns(
            self.fields, array("q", [ids[i] for i in keep]), array("q", [ts[i] for i in keep])
        )
        for name in self.fields:
            column = self.values[name]
            out.values[name] = [column[i] for i in keep]
        return out

    def strictly_ordered(self) -> bool:
        """True when rows are in ``(ts, id)`` order with no repeated ``(id, ts)``."""
        ts, ids = self.ts, self.ids
        if len(ts) < 2:
            return True
        if ids.count(ids[0]) == len(ids):  # one entity: compare timestamps in C
            return all(map(operator.lt, ts, itertools.islice(ts, 1, None)))
        return all((ts[i], ids[i]) < (ts[i + 1], ids[i + 1]) for i in range(len(ts) - 1))

    def within(self, start: int | None, end: int | None) -> Columns:
        """Rows with ``start <= ts < end`` (None: unbounded); self when nothing falls outside."""
        low = -(2**63) if start is None else start
        high = 2**63 if end is None else end
        ts = self.ts
        if not ts or (ts[0] >= low and ts[-1] < high and _ascending(ts)):
            return self
        return self.select([i for i, t in enumerate(ts) if low <= t < high])


def _ascending(values: array[int]) -> bool:
    return all(a <= b for a, b in itertools.pairwise(values))


_NOTHING = object()


def _problem(message: str, path: str, request: str) -> ResponseDecodeError:
    return ResponseDecodeError(
        f"data row does not match the schema: {message} at {path}",
        path=path,
        problems=(f"{message} @ {path}",),
        request=request,
    )


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def parse_data_body(
    content: bytes, fields: Sequence[str], *, request: str = "", strict: bool = True
) -> Columns:
    """Columns of the requested ``fields`` from a data response body.

    ``strict=False`` forgives what the lenient converter forgives (noted in its
    ``forgiving()`` collector): a value that is not a number or null is read as null, and
    a row without an integer ``id`` or a valid ``ts`` (the row's key) is left out. A body
    that is not ``{"data": [...]}`` raises either way.
    """
    body: Any = decode_json(content, request=request)
    if type(body) is not dict:
        raise _problem(f"expected an object, got {_kind(body)}", "$", request)
    rows = body.get("data")
    if type(rows) is not list:
        what = "missing" if rows is None and "data" not in body else f"{_kind(rows)}, not an array"
        raise _problem(f"'data' is {what}", "$.data", request)
    if strict:
        return parse_rows(rows, fields, request=request)
    try:
        return parse_rows(rows, fields, request=request)
    except ResponseDecodeError:
        return parse_rows(_forgiven_rows(rows, fields), fields, request=request)


def _forgiven_rows(rows: list[Any], fields: Sequence[str]) -> list[Any]:
    """The rows lenient mode keeps, values it cannot read put to null (each noted)."""
    kept = []
    for index, row in enumerate(rows):
        if type(row) is not dict:
            note_forgiven("data", f"expected an object, got {_kind(row)}")
            continue
        if type(row.get("id")) is not int:
            note_forgiven("data", f"id: expected an integer, got {_kind(row.get('id'))}")
            continue
        try:
            _slow_stamp(row.get("ts"), index, "")
        except ResponseDecodeError as exc:
            note_forgiven("data", exc.problems[0].split(" @ ")[0].replace("'ts' ", "ts: "))
            continue
        fixed: dict[str, Any] | None = None
        for name in fields:
            value = row.get(name)
            if type(value) not in (float, int, _NONE_TYPE):
                fixed = dict(row) if fixed is None else fixed
                fixed[name] = None
                note_forgiven(
                    f"data.{name}", f"expected a number or null, got {_kind(value)}", "None"
                )
        kept.append(row if fixed is None else fixed)
    return kept


_NONE_TYPE = type(None)
_VALUE_TYPES = frozenset({float, _NONE_TYPE})
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _day_seconds(text: str) -> int | None:
    """Unix seconds of midnight UTC of a ``YYYY-MM-DD`` date, or None if invalid."""
    try:
        return (date.fromisoformat(text).toordinal() - _EPOCH_ORDINAL) * 86_400
    except ValueError:
        return None


def _clock_seconds(text: str) -> int | None:
    """Seconds of an ``hh:mm:ss`` clock time, or None if invalid."""
    if (
        len(text) != 8
        or text[2] != ":"
        or text[5] != ":"
        or not (text[:2] + text[3:5] + text[6:]).isdigit()
    ):
        return None
    hour, minute, second = int(text[:2]), int(text[3:5]), int(text[6:])
    if hour > 23 or minute > 59 or second > 59:
        return None
    return hour * 3600 + minute * 60 + second


def _offset_seconds(text: str) -> int | None:
    """Seconds east of UTC of a ``+hh:mm``/``-hh:mm`` offset, or None if invalid."""
    if (
        len(text) != 6
        or text[0] not in "+-"
        or text[3] != ":"
        or not (text[1:3] + text[4:]).isdigit()
    ):
        return None
    seconds = int(text[1:3]) * 3600 + int(text[4:]) * 60
    if seconds >= 86_400:
        return None
    return -seconds if text[0] == "-" else seconds


def _slow_stamp(text: object, index: int, request: str) -> int:
    if type(text) is not str:
        raise _problem(
            f"'ts' must be a timestamp string, got {_kind(text)}", f"$.data[{index}].ts", request
        )
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise _problem(
            f"'ts' {text[:40]!r} is not ISO-8601", f"$.data[{index}].ts", request
        ) from None
    if stamp.tzinfo is None:
        raise _problem(f"'ts' {text[:40]!r} has no UTC offset", f"$.data[{index}].ts", request)
    return int(stamp.timestamp())


_DAY_PART = operator.itemgetter(slice(0, 10))
_REST_PART = operator.itemgetter(slice(11, None))

#: Dates already validated, as unix seconds of their midnight UTC (process-wide, bounded).
_KNOWN_DAYS: dict[str, int] = {}
#: ``hh:mm:ss+hh:mm`` already validated, as clock seconds minus the offset. When an offset
#: is first seen, all 1,440 whole-minute clocks are added for it at once.
_KNOWN_RESTS: dict[str, int] = {}
_CACHE_LIMIT = 200_000
_WHOLE_MINUTES = [(f"{h:02d}:{m:02d}:00", h * 3600 + m * 60) for h in range(24) for m in range(60)]


def _learn_days(parts: set[str]) -> bool:
    for text in parts.difference(_KNOWN_DAYS):
        if len(text) != 10:
            return False
        value = _day_seconds(text)
        if value is None:
            return False
        _KNOWN_DAYS[text] = value
    return True


def _learn_rests(parts: set[str]) -> bool:
    for text in parts.difference(_KNOWN_RESTS):
        if len(text) != 14:
            return False
        clock, zone = _clock_seconds(text[:8]), _offset_seconds(text[8:])
        if clock is None or zone is None:
            return False
        _KNOWN_RESTS[text] = clock - zone
        if clock % 60 == 0:
            suffix = text[8:]
            for label, seconds in _WHOLE_MINUTES:
                _KNOWN_RESTS[label + suffix] = seconds - zone
    return True


def _add_known(texts: list[Any]) -> array[int]:
    """The fast path's sum; KeyError when a part was never validated."""
    return array(
        "q",
        map(
            operator.add,
            map(_KNOWN_DAYS.__getitem__, map(_DAY_PART, texts)),
            map(_KNOWN_RESTS.__getitem__, map(_REST_PART, texts)),
        ),
    )


def _parse_stamps(texts: list[Any], request: str) -> array[int]:
    """Unix seconds of each ``ts``.

    The API's fixed shape ``YYYY-MM-DDThh:mm:ss+hh:mm`` is read in one C pipeline: the
    date (10 characters) and the rest (``hh:mm:ss+hh:mm``, 14) are looked up among parts
    already validated, and added. A part not seen before is validated once and remembered;
    only validated parts are ever in the tables, so a string is accepted exactly when it
    is a valid 25-character stamp. Anything else (``Z``, fractions, a non-string, an
    error) takes the per-row path, which also names a bad row's path.
    """
    if len(_KNOWN_DAYS) + len(_KNOWN_RESTS) > _CACHE_LIMIT:
        _KNOWN_DAYS.clear()
        _KNOWN_RESTS.clear()
    try:
        try:
            return _add_known(texts)
        except KeyError:
            days = set(map(_DAY_PART, texts))
            rests = set(map(_REST_PART, texts))
            if _learn_days(days) and _learn_rests(rests):
                return _add_known(texts)
    except (TypeError, KeyError):  # a non-string (no slicing, or unhashable slices)
        pass
    return array("q", [_slow_stamp(text, index, request) for index, text in enumerate(texts)])


def parse_rows(rows: list[Any], fields: Sequence[str], *, request: str = "") -> Columns:
    """Columns from already-decoded row objects (see ``parse_data_body``).

    Column-wise: each column is gathered with one comprehension and checked by the set of
    types in it; only when that check fails does a row-by-row pass find the exact path.
    """
    names = tuple(fields)
    try:
        id_list = [row["id"] for row in rows]
        text_list = [row.get("ts") for row in rows]
    except (KeyError, TypeError, AttributeError):
        _find_row_problem(rows, request)
        raise  # pragma: no cover - _find_row_problem always raises here
    if rows and set(map(type, id_list)) != {int}:
        _find_row_problem(rows, request)
    ids: array[int] = array("q", id_list)
    stamps = _parse_stamps(text_list, request)
    out = Columns(names, ids, stamps)
    for name in names:
        column = [row.get(name) for row in rows]
        kinds = set(map(type, column))
        if not kinds <= _VALUE_TYPES:
            if kinds <= {float, int, _NONE_TYPE}:
                column = [float(v) if type(v) is int else v for v in column]
            else:
                for index, value in enumerate(column):
                    if type(value) not in (float, int, _NONE_TYPE):
                        raise _problem(
                            f"{name!r} must be a number or null, got {_kind(value)}",
                            f"$.data[{index}].{name}",
                            request,
                        )
        out.values[name] = column
    return out


def _find_row_problem(rows: list[Any], request: str) -> None:
    """Raise the error for the first row that is not an object with an integer id."""
    for index, row in enumerate(rows):
        if type(row) is not dict:
            raise _problem(f"expected an object, got {_kind(row)}", f"$.data[{index}]", request)
        ident = row.get("id")
        if type(ident) is not int:
            raise _problem(
                f"'id' must be an integer, got {_kind(ident)}", f"$.data[{index}].id", request
            )


def merge_columns(parts: Iterable[Columns], fields: Sequence[str]) -> Columns:
    """One Columns in ``(ts, id)`` order with one row per ``(id, ts)`` (the first seen wins)."""
    parts = list(parts)
    if len(parts) == 1 and parts[0].fields == tuple(fields) and parts[0].strictly_ordered():
        return parts[0]
    merged = Columns(tuple(fields))
    for part in parts:
        merged.extend(part)
    if merged.strictly_ordered():
        return merged
    ts, ids = merged.ts, merged.ids
    seen: set[tuple[int, int]] = set()
    keep: list[int] = []
    for i in sorted(range(len(ts)), key=lambda i: (ts[i], ids[i])):
        key = (ts[i], ids[i])
        if key not in seen:
            seen.add(key)
            keep.append(i)
    # ``sorted`` is stable: among duplicates the earliest part's row comes first and stays.
    return merged.select(keep)
