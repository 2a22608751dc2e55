"""Data bodies straight into Arrow, the pure part: a typed decode (msgspec) of the rows and
Arrow's own timestamp parsing, for bodies the column parser (``series``) would accept
exactly as they are.

Owns: ``parse_data_arrow`` (a table of ``id`` int64, ``ts`` timestamp[us, UTC], one float64
per field, in ``(ts, id)`` order with one row per ``(id, ts)``) and ``arrow_available``.
Must never: accept a body the column parser refuses, or differ from it on one it accepts.

The fast path takes a body only when every check holds at C speed: the body decodes to
``{"data": [{"id": int, "ts": str, <field>: number | null}, ...]}`` (msgspec: ints are
accepted as floats, booleans and strings are not), every ``ts`` has the API's fixed shape
``YYYY-MM-DDThh:mm:ss+hh:mm`` (25 characters that Arrow's cast accepts, so the two parsers
agree on it), and the rows are already
in strict ``(ts, id)`` order (no repeat). Anything else returns None, and the caller uses
the column parser, which raises the typed error with the JSON path, or handles the
unusual but valid body (``Z`` offsets, fractions, rows out of order, repeated rows).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import pyarrow

__all__ = ["arrow_available", "parse_data_arrow"]

#: ``YYYY-MM-DDThh:mm:ss+hh:mm``: of the strings of this length, Arrow's ISO-8601 cast
#: (which requires the offset) accepts only this shape (or a space for the ``T``, which
#: the column parser reads the same way); anything else fails the cast.
_LENGTH: Final = 25


@functools.cache
def arrow_available() -> bool:
    """Whether pyarrow and msgspec are installed (the ``arrow`` extra)."""
    try:
        import msgspec  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


@functools.lru_cache(maxsize=64)
def _decoder(fields: tuple[str, ...]) -> Any:
    import msgspec

    row = msgspec.defstruct(
        "Row",
        [("id", int), ("ts", str), *((name, float | None, None) for name in fields)],
        forbid_unknown_fields=False,
        gc=False,  # rows hold no references back: no cycle tracking (faster)
    )
    body = msgspec.defstruct("Body", [("data", list[row])], forbid_unknown_fields=False)  # type: ignore[valid-type]
    return msgspec.json.Decoder(body)


def parse_data_arrow(content: bytes, fields: Sequence[str]) -> pyarrow.Table | None:
    """The rows of a data body as an Arrow table, or None when the column parser must
    read it (see the module docs)."""
    import msgspec
    import pyarrow as pa
    import pyarrow.compute as pc

    names = tuple(fields)
    try:
        rows = _decoder(names).decode(content).data
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    count = len(rows)
    stamps = pa.array(list(map(operator.attrgetter("ts"), rows)), pa.string())
    if count and not pc.all(pc.equal(pc.binary_length(stamps), _LENGTH)).as_py():
        return None
    try:
        seconds = pc.cast(stamps, pa.timestamp("s", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # an impossible date or time
        return None
    numbers = list(map(operator.attrgetter("id"), rows))
    # One entity per window is the usual body: its ids are one value, repeated.
    single = count > 0 and numbers.count(numbers[0]) == count
    try:
        if single:
            ids = pa.repeat(pa.scalar(numbers[0], pa.int64()), count)
        else:
            ids = pa.array(numbers, pa.int64())
    except (OverflowError, pa.ArrowInvalid):  # beyond int64: the column parser decides
        return None
    if count > 1:
        ts = seconds.cast(pa.int64())
        head, tail = ts.slice(0, count - 1), ts.slice(1)
        later = pc.greater(tail, head)
        if not single:
            same = pc.equal(tail, head)
            later = pc.or_(later, pc.and_(same, pc.greater(ids.slice(1), ids.slice(0, count - 1))))
        if not pc.all(later).as_py():
            return None  # out of order or repeated: the column parser merges
    columns = {
        "id": ids,
        "ts": seconds.cast(pa.timestamp("us", tz="UTC")),
        **{
            name: pa.array(list(map(operator.attrgetter(name), rows)), pa.float64())
            for name in names
        },
    }
    return pa.table(columns)
