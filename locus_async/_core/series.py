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
from array import array
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import attrs

from ..errors import ResponseDecodeError
from .converter import decode_json

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


def parse_data_body(content: bytes, fields: Sequence[str], *, request: str = "") -> Columns:
    """Columns of the requested ``fields`` from a data response body."""
    body: Any = decode_json(content, request=request)
    if type(body) is not dict:
        raise _problem(f"expected an object, got {_kind(body)}", "$", request)
    rows = body.get("data")
    if type(rows) is not list:
        what = "missing" if rows is None and "data" not in body else f"{_kind(rows)}, not an array"
        raise _problem(f"'data' is {what}", "$.data", request)
    return parse_rows(rows, fields, request=request)


def parse_rows(rows: list[Any], fields: Sequence[str], *, request: str = "") -> Columns:
    """Columns from already-decoded row objects (see ``parse_data_body``)."""
    names = tuple(fields)
    ids: array[int] = array("q")
    stamps: array[int] = array("q")
    columns: list[list[float | None]] = [[] for _ in names]
    fromiso = datetime.fromisoformat
    last_text: object = _NOTHING
    last_value = 0
    for index, row in enumerate(rows):
        if type(row) is not dict:
            raise _problem(f"expected an object, got {_kind(row)}", f"$.data[{index}]", request)
        ident = row.get("id")
        if type(ident) is not int:
            raise _problem(
                f"'id' must be an integer, got {_kind(ident)}", f"$.data[{index}].id", request
            )
        text = row.get("ts")
        if text != last_text:
            if type(text) is not str:
                raise _problem(
                    f"'ts' must be a timestamp string, got {_kind(text)}",
                    f"$.data[{index}].ts",
                    request,
                )
            try:
                stamp = fromiso(text)
            except ValueError:
                raise _problem(
                    f"'ts' {text[:40]!r} is not ISO-8601", f"$.data[{index}].ts", request
                ) from None
            if stamp.tzinfo is None:
                raise _problem(
                    f"'ts' {text[:40]!r} has no UTC offset", f"$.data[{index}].ts", request
                )
            last_text, last_value = text, int(stamp.timestamp())
        ids.append(ident)
        stamps.append(last_value)
        for name, column in zip(names, columns, strict=True):
            value = row.get(name)
            kind = type(value)
            if kind is float or value is None:
                column.append(value)
            elif kind is int:
                column.append(float(value))
            else:
                raise _problem(
                    f"{name!r} must be a number or null, got {_kind(value)}",
                    f"$.data[{index}].{name}",
                    request,
                )
    out = Columns(names, ids, stamps)
    out.values = dict(zip(names, columns, strict=True))
    return out


def merge_columns(parts: Iterable[Columns], fields: Sequence[str]) -> Columns:
    """One Columns in ``(ts, id)`` order with one row per ``(id, ts)`` (the first seen wins)."""
    merged = Columns(tuple(fields))
    for part in parts:
        merged.extend(part)
    ts, ids = merged.ts, merged.ids
    ordered = all((ts[i], ids[i]) < (ts[i + 1], ids[i + 1]) for i in range(len(ts) - 1))
    if ordered:
        return merged
    seen: set[tuple[int, int]] = set()
    keep: list[int] = []
    for i in sorted(range(len(ts)), key=lambda i: (ts[i], ids[i])):
        key = (ts[i], ids[i])
        if key not in seen:
            seen.add(key)
            keep.append(i)
    # ``sorted`` is stable: among duplicates the earliest part's row comes first and stays.
    return merged.select(keep)
