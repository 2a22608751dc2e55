"""Data bodies straight into columns: values, nulls, merging, and typed errors for bad data."""

from __future__ import annotations

import math
from zoneinfo import ZoneInfo

import orjson
import pytest

from locus_async import Granularity, ResponseDecodeError, TimeSeries
from locus_async.locus._core.series import merge_columns, parse_data_body, parse_rows
from tests import reference_examples as ex


def test_reference_rows_become_columns() -> None:
    """ids, unix-second timestamps and one float column per field; ints become floats."""
    columns = parse_data_body(orjson.dumps(ex.DATA_HOURLY), ["W_avg", "Wh_sum"])
    assert list(columns.ids) == [123, 123]
    assert list(columns.ts) == [1396378800, 1396382400]
    assert columns.values == {"W_avg": [23.717, 10.373], "Wh_sum": [5936.0, 2372.0]}


def test_missing_and_null_values_are_none() -> None:
    """A field absent from a row and an explicit null both read as None."""
    body = {
        "data": [
            {"id": 1, "ts": "2024-01-01T00:00:00Z"},
            {"id": 1, "ts": "2024-01-01T01:00:00Z", "x": None},
        ]
    }
    assert parse_data_body(orjson.dumps(body), ["x"]).values == {"x": [None, None]}


def test_unrequested_fields_are_ignored() -> None:
    """Extra keys in a row (new API fields) do not break parsing."""
    body = {"data": [{"id": 1, "ts": "2024-01-01T00:00:00Z", "x": 1, "surprise": "!"}]}
    assert parse_data_body(orjson.dumps(body), ["x"]).values == {"x": [1.0]}


@pytest.mark.parametrize(
    ("body", "path", "words"),
    [
        (b"<html>502</html>", "$", "not JSON"),
        (b'{"data": [{"id": 1, "ts": "2024-01-01T00:00:00Z"', "$", "not JSON"),
        (b"", "$", "empty"),
        (b"[]", "$", "expected an object"),
        (b'{"statusCode": 200}', "$.data", "missing"),
        (b'{"data": null}', "$.data", "null"),
        (b'{"data": {"id": 1}}', "$.data", "not an array"),
        (b'{"data": [7]}', "$.data[0]", "expected an object"),
        (b'{"data": [{"ts": "2024-01-01T00:00:00Z"}]}', "$.data[0].id", "'id' must be an integer"),
        (b'{"data": [{"id": "1", "ts": "2024-01-01T00:00:00Z"}]}', "$.data[0].id", "got str"),
        (b'{"data": [{"id": 1.5, "ts": "2024-01-01T00:00:00Z"}]}', "$.data[0].id", "got float"),
        (b'{"data": [{"id": 1}]}', "$.data[0].ts", "got null"),
        (b'{"data": [{"id": 1, "ts": ""}]}', "$.data[0].ts", "not ISO-8601"),
        (b'{"data": [{"id": 1, "ts": "2024-01-01T00:00:00"}]}', "$.data[0].ts", "no UTC offset"),
        (b'{"data": [{"id": 1, "ts": 1704067200}]}', "$.data[0].ts", "timestamp string"),
        (
            b'{"data": [{"id": 1, "ts": "2024-01-01T00:00:00Z", "x": "12"}]}',
            "$.data[0].x",
            "number or null",
        ),
        (
            b'{"data": [{"id": 1, "ts": "2024-01-01T00:00:00Z", "x": true}]}',
            "$.data[0].x",
            "got bool",
        ),
        (
            b'{"data": [{"id": 1, "ts": "2024-01-01T00:00:00Z", "x": [1]}]}',
            "$.data[0].x",
            "got list",
        ),
    ],
)
def test_bad_data_bodies_are_typed_errors_naming_the_path(
    body: bytes, path: str, words: str
) -> None:
    """Every kind of bad data body is a ResponseDecodeError with the JSON path, never a KeyError."""
    with pytest.raises(ResponseDecodeError) as caught:
        parse_data_body(body, ["x"], request="GET /v3/components/1/data")
    assert caught.value.path == path
    assert words in str(caught.value)
    assert "GET /v3/components/1/data" in str(caught.value)


def test_repeated_ts_strings_are_parsed_once_but_validated_each_time() -> None:
    """A valid ts followed by an invalid one still fails on the invalid one."""
    rows = [
        {"id": 1, "ts": "2024-01-01T00:00:00Z"},
        {"id": 1, "ts": "2024-01-01T00:00:00Z"},
        {"id": 1, "ts": None},
    ]
    with pytest.raises(ResponseDecodeError) as caught:
        parse_rows(rows, [])
    assert caught.value.path == "$.data[2].ts"


def test_merge_orders_by_time_then_id_and_drops_duplicates() -> None:
    """Overlapping parts merge to one row per (id, ts); the first one seen wins."""
    a = parse_rows(
        [
            {"id": 1, "ts": "2024-01-01T00:00:00Z", "x": 1},
            {"id": 1, "ts": "2024-01-01T01:00:00Z", "x": 2},
        ],
        ["x"],
    )
    b = parse_rows(
        [
            {"id": 1, "ts": "2024-01-01T01:00:00Z", "x": 99},
            {"id": 2, "ts": "2024-01-01T00:00:00Z", "x": 3},
        ],
        ["x"],
    )
    merged = merge_columns([a, b], ["x"])
    assert [
        (i, t % 86400 // 3600, v)
        for i, t, v in zip(merged.ids, merged.ts, merged.values["x"], strict=True)
    ] == [
        (1, 0, 1.0),
        (2, 0, 3.0),
        (1, 1, 2.0),
    ]


def test_timeseries_rows_and_concat() -> None:
    """TimeSeries rows carry aware datetimes in the zone; concat sums request counts."""
    tz = ZoneInfo("Europe/Berlin")
    part = TimeSeries(
        parse_rows([{"id": 1, "ts": "2024-07-01T00:00:00+02:00", "x": 2.5}], ["x"]),
        tz=tz,
        gran=Granularity.HOURLY,
        requests=1,
    )
    merged = TimeSeries.concat([part, part])
    assert len(merged) == 1
    assert merged.requests == 2
    (row,) = list(merged)
    assert row["ts"].tzinfo == tz
    assert row["ts"].hour == 0
    assert math.isclose(row["x"], 2.5)
    assert "rows=1" in repr(merged)


from datetime import datetime, timedelta, timezone  # noqa: E402

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from locus_async.locus._core.series import _parse_stamps  # noqa: E402


@given(
    st.lists(
        st.tuples(
            st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2199, 12, 31)),
            st.integers(-23 * 60 - 59, 23 * 60 + 59),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_fast_timestamps_agree_with_fromisoformat(items: list[tuple[datetime, int]]) -> None:
    """The column-wise reader gives what fromisoformat gives, for any valid stamp."""
    texts = [
        moment.replace(microsecond=0, tzinfo=timezone(timedelta(minutes=offset))).isoformat()
        for moment, offset in items
    ]
    assert list(_parse_stamps(texts, "")) == [
        int(datetime.fromisoformat(t).timestamp()) for t in texts
    ]


@given(st.text(alphabet="0123456789-+:T", min_size=25, max_size=25))
def test_fast_timestamps_reject_what_fromisoformat_rejects(text: str) -> None:
    """A 25-character string is accepted exactly when fromisoformat reads it with an offset."""
    try:
        parsed = datetime.fromisoformat(text)
        expected: int | None = int(parsed.timestamp()) if parsed.tzinfo is not None else None
    except (ValueError, OverflowError, OSError):
        expected = None
    try:
        got: int | None = _parse_stamps([text, "2024-01-01T00:00:00+00:00"], "")[0]
    except ResponseDecodeError:
        got = None
    assert got == expected


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-01T24:00:00+00:00",
        "2024-01-01T00:60:00+00:00",
        "2024-02-30T00:00:00+00:00",
        "2024-01-01T00:00:00+24:00",
    ],
)
def test_fast_timestamps_refuse_impossible_values(text: str) -> None:
    """Hour 24, minute 60, 30 February and a 24-hour offset are errors with the row's path."""
    with pytest.raises(ResponseDecodeError) as caught:
        _parse_stamps(["2024-01-01T00:00:00+00:00", text], "")
    assert caught.value.path == "$.data[1].ts"
