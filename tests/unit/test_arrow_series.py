"""The Arrow fast path agrees with the column parser on every body: what it takes it reads
to the same rows, and a body the column parser refuses (or merges) it leaves to it."""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from locus_async.errors import ResponseDecodeError
from locus_async.locus._core.arrow_series import parse_data_arrow
from locus_async.locus._core.series import merge_columns, parse_data_body

FIELDS = ("W_avg", "Wh_sum")
GOOD = {"id": 54369, "ts": "2024-10-20T00:00:00-07:00", "W_avg": 1.5, "Wh_sum": None}


def _reference(content: bytes) -> pa.Table | None:
    """What the column parser and the merge make of a body (None: it refuses it)."""
    try:
        columns = merge_columns([parse_data_body(content, FIELDS)], FIELDS)
    except ResponseDecodeError:
        return None
    stamps = pa.array(columns.ts, pa.int64()).cast(pa.timestamp("s", tz="UTC"))
    return pa.table({
        "id": pa.array(columns.ids, pa.int64()),
        "ts": stamps.cast(pa.timestamp("us", tz="UTC")),
        **{f: pa.array(columns.values[f], pa.float64()) for f in FIELDS},
    })  # fmt: skip


def _agrees(content: bytes) -> None:
    fast = parse_data_arrow(content, FIELDS)
    reference = _reference(content)
    if fast is not None:
        assert reference is not None, content[:200]
        assert fast.equals(reference), content[:200]


def test_a_typical_body_takes_the_fast_path_with_the_same_rows() -> None:
    """A well-formed minute series in order: read by the fast path, equal to the parser."""
    rows = [
        {**GOOD, "ts": f"2024-10-20T{h:02d}:{m:02d}:00-07:00", "W_avg": h + m / 100}
        for h in range(24) for m in range(60)
    ]  # fmt: skip
    content = orjson.dumps({"data": rows, "extra": 1})
    fast = parse_data_arrow(content, FIELDS)
    assert fast is not None
    assert fast.num_rows == 1440
    assert fast.equals(_reference(content))
    assert fast.schema.field("ts").type == pa.timestamp("us", tz="UTC")


@pytest.mark.parametrize(
    "row",
    [
        {**GOOD, "id": 1.0}, {**GOOD, "id": True}, {**GOOD, "id": "1"}, {"ts": GOOD["ts"]},
        {**GOOD, "ts": None}, {**GOOD, "ts": 1729407600}, {**GOOD, "ts": "2024-10-20T00:00:00"},
        {**GOOD, "ts": "2024-10-20T00:00:00Z"}, {**GOOD, "ts": "2024-10-20T00:00:00.5-07:00"},
        {**GOOD, "ts": "2024-02-30T00:00:00+00:00"}, {**GOOD, "ts": "2024-10-20T24:00:00+00:00"},
        {**GOOD, "ts": "2024-10-20T00:00:00+24:00"}, {**GOOD, "W_avg": "1.5"},
        {**GOOD, "W_avg": True}, {**GOOD, "W_avg": [1]}, {**GOOD, "W_avg": 2}, [1, 2],
    ],
    ids=lambda r: orjson.dumps(r).decode()[:60],
)  # fmt: skip
def test_every_odd_row_is_left_to_the_column_parser_or_read_the_same(row: Any) -> None:
    """Wrong types, missing keys, other timestamp shapes, impossible dates: the fast path
    returns None (the parser raises its typed error, or reads the unusual form) or, for an
    int value, the same row."""
    content = orjson.dumps({"data": [GOOD | {"ts": "2024-10-19T23:59:00-07:00"}, row]})
    _agrees(content)
    if row == {**GOOD, "W_avg": 2}:
        assert parse_data_arrow(content, FIELDS) is not None
    else:
        assert parse_data_arrow(content, FIELDS) is None


@pytest.mark.parametrize(
    "content",
    [b"", b"null", b"[]", b'{"data": null}', b'{"data": {}}', b'{"nodata": []}', b"{",
     b'{"data": []} x', b'{"data": [NaN]}'],
)  # fmt: skip
def test_bodies_that_are_not_a_data_object_are_left_to_the_column_parser(
    content: bytes,
) -> None:
    """Not JSON, not an object, no data array: None (an empty array is zero rows)."""
    _agrees(content)
    assert parse_data_arrow(content, FIELDS) is None


def test_rows_out_of_order_or_repeated_are_left_to_the_merge() -> None:
    """Repeated or unordered (ts, id): None, so the merge's first-wins rule applies."""
    late = {**GOOD, "ts": "2024-10-20T00:01:00-07:00"}
    for rows in ([late, GOOD], [GOOD, GOOD], [GOOD, {**GOOD, "W_avg": 9.0}]):
        content = orjson.dumps({"data": rows})
        assert parse_data_arrow(content, FIELDS) is None
        _agrees(content)
    assert parse_data_arrow(orjson.dumps({"data": []}), FIELDS).num_rows == 0  # type: ignore[union-attr]


_stamp = st.builds(
    "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}{}{:02d}:{:02d}".format,
    st.integers(1990, 2030), st.integers(0, 13), st.integers(0, 32), st.integers(0, 25),
    st.integers(0, 60), st.integers(0, 60), st.sampled_from("+-"), st.integers(0, 25),
    st.sampled_from([0, 30, 45, 60]),
) | st.sampled_from(["2024-10-20T00:00:00Z", "2024-10-20 00:00:00+00:00", "x", ""])  # fmt: skip
_value = st.none() | st.floats(allow_nan=False, allow_infinity=False) | st.integers(-10, 10) | st.booleans() | st.text(max_size=3)  # fmt: skip
_row = st.fixed_dictionaries(
    {"id": st.integers(1, 3) | st.just(1.0), "ts": _stamp},
    optional={"W_avg": _value, "Wh_sum": _value, "other": _value},
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_row, max_size=6))
def test_the_two_parsers_agree_on_any_body(rows: list[dict[str, Any]]) -> None:
    """Hypothesis: for any rows (valid or not), the fast path's table, when it gives one,
    equals the column parser's; it never accepts what that parser refuses."""
    _agrees(orjson.dumps({"data": rows}))
