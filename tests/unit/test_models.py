"""Models: the reference's examples parse; unknown fields, nulls and wrong types are handled."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from typing import Any

import attrs
import pytest

from locus_async import models
from locus_async._core.converter import decode_json, make_converter, structure
from locus_async.errors import ResponseDecodeError
from locus_async.locus._core.endpoints import AlertList, BaseFieldList, ComponentList, SiteList
from tests import reference_examples as ex

STRICT = make_converter(strict=True)
LENIENT = make_converter(strict=False)


def test_component_example_parses_to_snake_case() -> None:
    """Every wire name lands on its snake_case attribute."""
    component = structure(STRICT, ex.GET_COMPONENT, models.Component)
    assert component == models.Component(
        id=54369,
        site_id=3393714,
        client_id=419010,
        parent_id=3393714,
        parent_type="SITE",
        node_id="OB.001EC1111DC9.1",
        name="PV Meter",
        node_type="METER",
        application="GENERATION",
        generation_type="SOLAR",
        oem="Locus Energy",
        model="LGate 120",
        is_conceptual_node=False,
    )


def test_site_example_parses() -> None:
    """Site lists carry statusCode inside each item; it is accepted even when strict."""
    sites = structure(STRICT, ex.SITES, SiteList)
    assert [s.id for s in sites.sites] == [123, 789]
    assert sites.sites[0].location_timezone == "America/Los_Angeles"
    assert sites.sites[0].locale_code1 == "CA"
    assert sites.sites[0].latitude is None


def test_install_info_dates_are_dates() -> None:
    """yyyy-mm-dd strings become date objects; missing optional keys are None."""
    info = structure(STRICT, ex.INSTALL_INFO, models.InstallInfo)
    assert info.install_date == date(2014, 5, 8)
    assert info.uninstall_date == date(2014, 6, 1)
    assert info.install_crew is None


def test_model_settings_example() -> None:
    """Integers stay integers, the optional size is a float, tmy3Id maps to tmy3_id."""
    settings = structure(STRICT, ex.MODEL_SETTINGS, models.ModelSettings)
    assert settings.size == 1023.4
    assert settings.tmy3_id == 724095
    assert settings.diodes_and_connections == 99


def test_base_fields_without_aggregations() -> None:
    """The reference omits aggregations or fieldParameters for some base fields."""
    fields = structure(STRICT, ex.DATA_AVAILABLE, BaseFieldList).base_fields
    assert fields[0].short_names == ("W_avg", "W_max", "W_min")
    assert fields[2].aggregations == ()
    assert fields[2].field_parameters[2] == models.FieldParameter(
        "inverterClipping", ("true", "false")
    )
    assert fields[0].field_parameters == ()


def test_alert_times_are_aware() -> None:
    """Alert times keep their offsets (``-00:00`` included); end may be absent."""
    alerts = structure(STRICT, ex.ALERTS, AlertList).alerts
    assert alerts[0].start == datetime(2015, 11, 1, 12, tzinfo=UTC)
    assert alerts[0].start.utcoffset() == timedelta(0)
    assert alerts[1].description_short == "VDC high"
    open_alert = dict(ex.ALERTS["alerts"][0], end=None)
    assert structure(STRICT, open_alert, models.Alert).is_open


def test_old_alert_shape_without_names() -> None:
    """Pre-2017 alerts without componentName/siteId/siteName still parse."""
    (alert,) = structure(STRICT, ex.ALERTS_OLD_SHAPE, AlertList).alerts
    assert alert.component_name is None
    assert alert.site_id is None


def test_unknown_fields_ignored_when_lenient_and_caught_when_strict() -> None:
    """v3 adds fields without notice: production ignores them, strict mode names them."""
    body = copy.deepcopy(ex.COMPONENTS)
    body["components"][1]["exampleNewField"] = "hello everyone!"
    body["newTopLevel"] = 1
    parsed = structure(LENIENT, body, ComponentList)
    assert parsed.components[1].node_id == "OB.TESTNODE.44"
    with pytest.raises(ResponseDecodeError) as caught:
        structure(STRICT, body, ComponentList)
    assert {p.split(" @ ")[1] for p in caught.value.problems} == {"$", "$.components[1]"}


@pytest.mark.parametrize(
    ("mutate", "path", "words"),
    [
        (
            lambda b: b["components"][1].__setitem__("siteId", "3393714"),
            "$.components[1].siteId",
            "integer",
        ),
        (lambda b: b["components"][0].__setitem__("id", None), "$.components[0].id", "null"),
        (lambda b: b["components"][0].pop("nodeId"), "$.components[0].nodeId", "missing"),
        (
            lambda b: b["components"][0].__setitem__("isConceptualNode", "false"),
            "$.components[0].isConceptualNode",
            "boolean",
        ),
        (lambda b: b["components"][0].__setitem__("id", 12.5), "$.components[0].id", "integer"),
        (lambda b: b["components"][0].__setitem__("id", True), "$.components[0].id", "integer"),
        (lambda b: b.__setitem__("components", {"id": 1}), "$.components", "array"),
        (lambda b: b.__setitem__("components", "nope"), "$.components", "array"),
        (lambda b: b["components"].__setitem__(1, 7), "$.components[1]", "object"),
    ],
)
def test_off_schema_bodies_name_the_json_path(mutate: Any, path: str, words: str) -> None:
    """Strict: each kind of schema break is a ResponseDecodeError naming the wire path."""
    body = copy.deepcopy(ex.COMPONENTS)
    mutate(body)
    with pytest.raises(ResponseDecodeError) as caught:
        structure(STRICT, body, ComponentList, request="GET /v3/sites/1/components")
    assert caught.value.path == path
    assert words in str(caught.value)
    assert "GET /v3/sites/1/components" in str(caught.value)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2015-11-01T12:00:00-00:00", True),
        ("2015-11-01T12:00:00Z", True),
        ("2015-11-01T12:00:00+05:45", True),
        ("2015-11-01T12:00:00", False),
        ("2015-11-01", False),
        ("yesterday", False),
        (1446379200, False),
    ],
)
def test_timestamps_need_an_offset(value: object, ok: bool) -> None:
    """A timestamp without a UTC offset is a decode error, never a naive datetime."""
    body = dict(ex.ALERTS["alerts"][0], start=value)
    if ok:
        start = structure(LENIENT, body, models.Alert).start
        assert start.tzinfo is not None
    else:
        with pytest.raises(ResponseDecodeError) as caught:
            structure(LENIENT, body, models.Alert)
        assert caught.value.path == "$.start"


def test_non_json_body_is_a_decode_error() -> None:
    """An HTML page where JSON was expected: typed error at path $, with an excerpt."""
    with pytest.raises(ResponseDecodeError) as caught:
        decode_json(b"<html>502 Bad Gateway</html>", request="GET /v3/sites/1")
    assert caught.value.path == "$"
    assert "<html>502" in str(caught.value)
    with pytest.raises(ResponseDecodeError, match="empty"):
        decode_json(b"", request="GET /v3/sites/1")


def test_token_repr_hides_secrets() -> None:
    """Access and refresh tokens never appear in repr or str."""
    token = models.Token(
        access_token="ACCESS-123",
        issued_at=datetime(2020, 1, 1, tzinfo=UTC),
        expires_in=60,
        refresh_token="REFRESH-456",
    )
    for text in (repr(token), str(token)):
        assert "ACCESS-123" not in text
        assert "REFRESH-456" not in text
        assert "'***'" in text


def test_models_are_frozen() -> None:
    """Models are immutable values."""
    component = structure(STRICT, ex.GET_COMPONENT, models.Component)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        component.id = 1  # type: ignore[misc]
