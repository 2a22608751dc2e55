"""Request parameters and bodies, checked before any I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import orjson
import pytest

from locus_async.errors import InvalidArgumentType, UsageError
from locus_async.solarnetwork import DatumAuxiliary, Metadata
from locus_async.solarnetwork._core import wire

T = datetime(2019, 2, 6, 18, 37, 28, 244000, tzinfo=UTC)


def test_instants() -> None:
    """Instants are sent in UTC with milliseconds (microseconds when given)."""
    assert wire.utc_instant(T, "start") == "2019-02-06 18:37:28.244Z"
    assert wire.utc_instant(T.replace(microsecond=123456), "s") == "2019-02-06 18:37:28.123456Z"
    assert wire.utc_instant(T.astimezone(timezone(timedelta(hours=13))), "s") == (
        "2019-02-06 18:37:28.244Z"
    )
    assert wire.utc_instant(date(2019, 2, 6), "s") == "2019-02-06"
    assert wire.utc_instant("2019-02-06T18:37:28.244Z", "s") == "2019-02-06 18:37:28.244Z"
    with pytest.raises(UsageError, match="timezone-aware"):
        wire.utc_instant(datetime(2019, 2, 6), "start")
    with pytest.raises(UsageError, match="not an ISO-8601 instant"):
        wire.utc_instant("yesterday", "start")
    with pytest.raises(InvalidArgumentType):
        wire.utc_instant(12, "start")


def test_minutes() -> None:
    """Minute parameters are UTC or local minutes, or dates; seconds are refused."""
    assert wire.utc_minute(datetime(2019, 4, 10, 12, 0, tzinfo=UTC), "start") == "2019-04-10T12:00"
    assert wire.utc_minute(date(2019, 4, 10), "start") == "2019-04-10"
    with pytest.raises(UsageError, match="whole minutes"):
        wire.utc_minute(datetime(2019, 4, 10, 12, 0, 1, tzinfo=UTC), "start")
    assert wire.local_minute(datetime(2019, 4, 10, 12, 30), "s") == "2019-04-10T12:30"
    with pytest.raises(UsageError, match="naive"):
        wire.local_minute(datetime(2019, 4, 10, tzinfo=UTC), "local_start")


def test_epoch_millis() -> None:
    """Epoch milliseconds are exact; sub-millisecond instants are refused."""
    assert wire.epoch_millis(T, "created") == 1549478248244
    with pytest.raises(UsageError, match="sub-millisecond"):
        wire.epoch_millis(T.replace(microsecond=1), "created")


def test_node_and_source_params() -> None:
    """Node and source ids become nodeId(s) and sourceId(s), deduplicated; bad ones refused."""
    assert wire.node_params(5) == [("nodeId", "5")]
    assert wire.node_params([5, 6, 5]) == [("nodeIds", "5,6")]
    assert wire.source_params("/power/1") == [("sourceId", "/power/1")]
    assert wire.source_params(["/a,b", "/c"]) == [("sourceIds", "/a,b"), ("sourceIds", "/c")]
    for bad, error in (
        (0, UsageError),
        (True, InvalidArgumentType),
        ([], UsageError),
        ("5", InvalidArgumentType),
    ):
        with pytest.raises(error):
            wire.node_params(bad)
    with pytest.raises(UsageError):
        wire.source_params([" /x"])
    with pytest.raises(InvalidArgumentType):
        wire.source_params([1])


def test_paging_and_sorting() -> None:
    """Paging and sorting parameters have the documented names and values."""
    assert wire.page_params(100, 200, count=False) == [
        ("max", "100"),
        ("offset", "200"),
        ("withoutTotalResultsCount", "true"),
    ]
    assert wire.page_params(10, 0, count=True) == [("max", "10"), ("offset", "0")]
    for size in (0, 1001):
        with pytest.raises(UsageError):
            wire.page_params(size, 0, count=True)
    with pytest.raises(UsageError):
        wire.page_params(10, -1, count=True)
    assert wire.sort_params(["created", "-node"], ("created", "node")) == [
        ("sorts[0].sortKey", "created"),
        ("sorts[1].sortKey", "node"),
        ("sorts[1].descending", "true"),
    ]
    with pytest.raises(UsageError, match="not one of"):
        wire.sort_params("bogus", ("created",))


@pytest.mark.parametrize(
    ("got", "asked", "offset", "total", "largest", "more"),
    [
        (100, 100, 100, 250, 0, True),
        (50, 100, 250, 250, 100, False),
        (50, 100, 150, 250, 50, True),  # a server cap below what we asked: follow the total
        (0, 100, 100, 250, 100, False),
        (100, 100, 100, None, 0, True),
        (7, 100, 7, None, 0, True),  # first short page: one confirming request
        (7, 100, 207, None, 100, False),
        (50, 100, 100, None, 50, True),  # a cap: equal pages keep going
    ],
)
def test_more_pages(
    got: int, asked: int, offset: int, total: int | None, largest: int, more: bool
) -> None:
    """Whether another page exists follows the total, the cap and the last page's size."""
    assert (
        wire.more_pages(got=got, asked=asked, offset=offset, total=total, largest=largest) is more
    )


def test_instruction_parameters_and_bodies() -> None:
    """Instruction parameters and bodies take the documented JSON and form shapes."""
    pairs = wire.parse_instruction_params(
        {"/switch/1": 1, "x": "y"}, datetime(2023, 3, 28, 19, tzinfo=UTC)
    )
    assert pairs == [("/switch/1", "1"), ("x", "y"), ("executionDate", "2023-03-28T19:00:00Z")]
    assert orjson.loads(wire.instruction_json(123, "SetControlParameter", pairs[:1])) == {
        "nodeId": 123,
        "topic": "SetControlParameter",
        "params": {"/switch/1": "1"},
    }
    repeated = [("key", "a"), ("key", "b")]
    assert orjson.loads(wire.instruction_json(1, "UpdateSetting", repeated))["parameters"] == [
        {"name": "key", "value": "a"},
        {"name": "key", "value": "b"},
    ]
    assert wire.instruction_form([123, 234], "UpdatePlatform", [("Version", "000009")]) == [
        ("nodeIds", "123,234"),
        ("topic", "UpdatePlatform"),
        ("parameters[0].name", "Version"),
        ("parameters[0].value", "000009"),
    ]
    assert wire.form_body([("a b", "c/d"), ("e", "ü")]) == b"a%20b=c/d&e=%C3%BC"
    with pytest.raises(UsageError, match="not both"):
        wire.parse_instruction_params({"executionDate": "x"}, T)
    with pytest.raises(InvalidArgumentType):
        wire.parse_instruction_params({"a": None})
    with pytest.raises(InvalidArgumentType):
        wire.parse_instruction_params("a=b")
    with pytest.raises(UsageError):
        wire.check_topic("Set Control")


def test_metadata_bodies() -> None:
    """Metadata bodies are the documented JSON, from a Metadata or a mapping."""
    assert orjson.loads(wire.metadata_body(Metadata(m={"a": 1}, t=("x",)))) == {
        "m": {"a": 1},
        "t": ["x"],
    }
    assert orjson.loads(wire.metadata_body({"pm": {"p": {"a": 1}}, "t": ("y",)})) == {
        "pm": {"p": {"a": 1}},
        "t": ["y"],
    }
    with pytest.raises(UsageError, match="only 'm', 'pm' and 't'"):
        wire.metadata_body({"nodeId": 1})
    with pytest.raises(InvalidArgumentType):
        wire.metadata_body({"t": "tag"})
    with pytest.raises(InvalidArgumentType):
        wire.metadata_body({"m": {"when": object()}})
    with pytest.raises(InvalidArgumentType):
        wire.metadata_body(["m"])


def test_datum_auxiliary_wire() -> None:
    """A datum auxiliary record goes on the wire in the documented shape."""
    record = DatumAuxiliary(
        created=T,
        node_id=11,
        source_id="/power/1",
        type="Reset",
        final={"a": {"wattHours": 12345}},
        start={"a": {"wattHours": 0}},
        notes="Meter replaced.",
    )
    assert wire.datum_auxiliary_wire(record, epoch=False) == {
        "created": "2019-02-06 18:37:28.244Z",
        "nodeId": 11,
        "sourceId": "/power/1",
        "type": "Reset",
        "final": {"a": {"wattHours": 12345}},
        "start": {"a": {"wattHours": 0}},
        "notes": "Meter replaced.",
    }
    assert wire.datum_auxiliary_wire(record, epoch=True)["created"] == 1549478248244
    assert wire.datum_auxiliary_key("Reset", 11, T, "Main", epoch=True) == {
        "created": 1549478248244,
        "nodeId": 11,
        "sourceId": "Main",
        "type": "Reset",
    }
