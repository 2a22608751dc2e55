"""Models to JSON and back: ``to_jsonable`` writes what the wire carries (wire names, ISO
times, arrays), ``from_jsonable`` reads it back to equal objects, and secrets stay out."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from locus_async import (
    ResponseDecodeError,
    Site,
    TimeSeries,
    Token,
    from_jsonable,
    to_jsonable,
)
from locus_async._core.converter import make_converter, structure
from locus_async.solarnetwork import models as sn
from tests.unit.test_forgiving import EXAMPLES

READ = make_converter()
SITE: dict[str, Any] = {
    "id": 3393714,
    "clientId": 419010,
    "name": "Test Site",
    "address1": "657 Mission St",
    "locale3": "San Francisco",
    "locale1": "California",
    "localeCode1": "CA",
    "postalCode": "94105",
    "countryCode": "US",
    "latitude": 37.78,
    "longitude": -122.4,
    "locationTimezone": "America/Los_Angeles",
}


@pytest.mark.parametrize("which", range(len(EXAMPLES)))
def test_every_documented_example_round_trips(which: int) -> None:
    """Each reference example of both providers, read, written and read again, is equal;
    what is written is plain JSON."""
    cls, body = EXAMPLES[which]
    value = structure(READ, body, cls)
    written = to_jsonable(value)
    assert json.loads(json.dumps(written)) == written
    assert from_jsonable(cls, written) == value


def test_a_site_is_written_with_wire_names_as_the_server_sends_it() -> None:
    """A site's JSON has the keys and values of the body it was read from."""
    written = to_jsonable(from_jsonable(Site, SITE))
    assert {k: v for k, v in written.items() if k in SITE} == SITE


def test_times_are_iso_8601_with_their_offset() -> None:
    """An aware datetime keeps its offset in the text; unix-seconds fields stay numbers."""
    plus_two = timezone(timedelta(hours=2))
    event = sn.UserEvent(
        user_id=1, created=datetime(2024, 3, 1, 12, 0, tzinfo=plus_two), event_id="e", tags=("a",)
    )
    assert to_jsonable(event)["created"] == "2024-03-01T12:00:00+02:00"
    assert to_jsonable(event)["tags"] == ["a"]
    token = Token("secret-a", datetime(2024, 1, 1, tzinfo=UTC), 3600, "bearer", "secret-r")
    assert to_jsonable(token, secrets=True)["issued_at"] == 1704067200


def test_secrets_are_left_out_unless_asked_for() -> None:
    """Tokens and SNWS2 secrets never reach JSON by default; ``secrets=True`` keeps them
    (and the token then reads back equal)."""
    token = Token("secret-a", datetime(2024, 1, 1, tzinfo=UTC), 3600, "bearer", "secret-r")
    plain = json.dumps(to_jsonable(token))
    assert "secret-a" not in plain
    assert "secret-r" not in plain
    assert from_jsonable(Token, to_jsonable(token, secrets=True)) == token
    with pytest.raises(ResponseDecodeError, match="access_token"):
        from_jsonable(Token, to_jsonable(token))
    auth = sn.SecurityToken(id="t", status="Active", type="User", auth_secret="s3cr3t")
    assert "s3cr3t" not in json.dumps(to_jsonable([auth]))


def test_a_time_series_is_written_as_its_rows() -> None:
    """A TimeSeries (any iterable of rows) becomes a list of row objects with ISO times."""
    from array import array
    from zoneinfo import ZoneInfo

    from locus_async import Granularity
    from locus_async.locus._core.series import Columns

    columns = Columns(
        ("Wh_sum",),
        ids=array("q", [5, 5]),
        ts=array("q", [1704067200, 1704153600]),
        values={"Wh_sum": [1.5, None]},
    )
    series = TimeSeries(columns, tz=ZoneInfo("UTC"), gran=Granularity.DAILY)
    assert to_jsonable(series)[0]["ts"].startswith("2024-01-01T00:00:00")
    assert [row["Wh_sum"] for row in to_jsonable(series)] == [1.5, None]


def test_what_cannot_be_written_is_refused_in_one_line() -> None:
    """An object that is neither a model, a mapping nor iterable is a TypeError."""
    with pytest.raises(TypeError, match=r"^to_jsonable cannot convert a object: a model"):
        to_jsonable(object())


def test_strict_reading_refuses_unknown_keys() -> None:
    """``from_jsonable(..., strict=True)`` is the strict decoder."""
    body = {**SITE, "surprise": 1}
    assert from_jsonable(Site, body).id == 3393714
    with pytest.raises(ResponseDecodeError, match="surprise"):
        from_jsonable(Site, body, strict=True)
