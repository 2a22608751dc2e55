"""Every endpoint's exact URL and query, and what it returns, with the reference's bodies."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, datetime
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import respx

from locus_async import (
    BearerToken,
    Granularity,
    LocusClient,
    PasswordGrant,
    UsageError,
    models,
)
from tests import reference_examples as ex

pytestmark = pytest.mark.anyio

BASE = "https://api.locusenergy.com"
NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


@pytest.fixture
async def api() -> AsyncIterator[tuple[LocusClient, respx.MockRouter]]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        async with LocusClient(
            auth=BearerToken("T0KEN-abc"), strict=True, wall=lambda: NOW
        ) as client:
            yield client, router


def _route(router: respx.MockRouter, path: str, body: dict[str, Any]) -> respx.Route:
    return router.get(path).mock(return_value=httpx.Response(200, json=body))


def _sent(route: respx.Route) -> str:
    url = route.calls.last.request.url
    return f"{url.path}?{url.query.decode()}" if url.query else url.path


Call = Callable[[LocusClient], Awaitable[Any]]

CASES: list[tuple[str, Call, str, dict[str, Any], Callable[[Any], bool]]] = [
    (
        "partners.sites",
        lambda c: c.partners.sites(456),
        "/v3/partners/456/sites",
        ex.SITES,
        lambda r: [s.id for s in r] == [123, 789] and r[1].location_timezone == "America/New_York",
    ),
    (
        "partners.clients",
        lambda c: c.partners.clients(456),
        "/v3/partners/456/clients",
        ex.CLIENTS,
        lambda r: [x.tz for x in r] == ["US/Eastern", "US/Pacific"],
    ),
    (
        "partners.components",
        lambda c: c.partners.components(123),
        "/v3/partners/123/components",
        ex.COMPONENTS,
        lambda r: [x.node_id for x in r] == ["OB.001EC1111DC9.1", "OB.TESTNODE.44"],
    ),
    (
        "partners.bulk_data_available",
        lambda c: c.partners.bulk_data_available(111),
        "/v3/partners/111/sites/dataavailable",
        ex.BULK_DATA_AVAILABLE,
        lambda r: [b.short_names for b in r] == [("Wh_sum",), ("EER_avg",)],
    ),
    (
        "clients.get",
        lambda c: c.clients.get(123),
        "/v3/clients/123",
        ex.GET_CLIENT,
        lambda r: r == models.Client(123, 456, "US/Eastern", "Test", "System", "test@aol.com"),
    ),
    (
        "clients.sites",
        lambda c: c.clients.sites(456),
        "/v3/clients/456/sites",
        ex.SITES,
        lambda r: r[0].name == "Test Site",
    ),
    (
        "clients.components",
        lambda c: c.clients.components(419010),
        "/v3/clients/419010/components",
        ex.COMPONENTS,
        lambda r: r[1].parent_type == "COMPONENT" and r[1].parent_id == 2050424,
    ),
    (
        "sites.get",
        lambda c: c.sites.get(123),
        "/v3/sites/123",
        ex.GET_SITE,
        lambda r: r.id == 123 and r.address2 == "" and r.postal_code == "94105",
    ),
    (
        "sites.components",
        lambda c: c.sites.components(3393714),
        "/v3/sites/3393714/components",
        ex.COMPONENTS,
        lambda r: len(r) == 2,
    ),
    (
        "sites.install_info",
        lambda c: c.sites.install_info(123),
        "/v3/sites/123/installinfo",
        ex.INSTALL_INFO,
        lambda r: r.pto_date == date(2014, 5, 14) and r.installer == "ABC Solar",
    ),
    (
        "sites.model_settings",
        lambda c: c.sites.model_settings(123),
        "/v3/sites/123/modelsettings",
        ex.MODEL_SETTINGS,
        lambda r: r.size == 1023.4 and r.tmy3_id == 724095,
    ),
    (
        "sites.data_available",
        lambda c: c.sites.data_available(123),
        "/v3/sites/123/dataavailable",
        ex.DATA_AVAILABLE,
        lambda r: r[3].short_names == ("Wh_m_sum",),
    ),
    (
        "sites.alerts",
        lambda c: c.sites.alerts(123, tz="UTC"),
        "/v3/sites/123/alerts?tz=UTC",
        ex.ALERTS,
        lambda r: [a.id for a in r] == [999, 78],
    ),
    (
        "components.get",
        lambda c: c.components.get(54369),
        "/v3/components/54369",
        ex.GET_COMPONENT,
        lambda r: r.name == "PV Meter" and r.is_conceptual_node is False,
    ),
    (
        "components.data_available",
        lambda c: c.components.data_available(54369),
        "/v3/components/54369/dataavailable",
        ex.DATA_AVAILABLE,
        lambda r: r[0].unit == "W",
    ),
    (
        "components.alerts",
        lambda c: c.components.alerts(90, tz="UTC", updated_since="2014-11-20T00:00:00"),
        "/v3/components/90/alerts?tz=UTC&updatedSince=2014-11-20T00:00:00",
        ex.ALERTS,
        lambda r: r[1].description_long.startswith("A voltage"),
    ),
]


@pytest.mark.parametrize(
    ("name", "call", "target", "body", "check"), CASES, ids=[c[0] for c in CASES]
)
async def test_endpoint_shape(
    api: tuple[LocusClient, respx.MockRouter],
    name: str,
    call: Call,
    target: str,
    body: dict[str, Any],
    check: Callable[[Any], bool],
) -> None:
    """Each endpoint sends exactly this GET and parses the reference body into models."""
    client, router = api
    path = target.split("?", maxsplit=1)[0]
    route = _route(router, path, body)
    result = await call(client)
    assert _sent(route) == target
    request = route.calls.last.request
    assert request.headers["authorization"] == "Bearer T0KEN-abc"
    assert request.headers["accept"] == "application/json"
    assert "gzip" in request.headers["accept-encoding"]
    assert check(result)


async def test_node_id_wildcard_reaches_the_server_as_25(
    api: tuple[LocusClient, respx.MockRouter],
) -> None:
    """nodeId=OB.% is sent as OB.%25; notes too."""
    client, router = api
    route = _route(router, "/v3/partners/123/components", ex.COMPONENTS)
    await client.partners.components(123, node_id="OB.%", notes="roof %")
    raw = route.calls.last.request.url.raw_path.decode()
    assert raw == "/v3/partners/123/components?nodeId=OB.%25&notes=roof%20%25"
    assert unquote(raw.split("nodeId=")[1].split("&")[0]) == "OB.%"


async def test_partner_alerts_updated_since(api: tuple[LocusClient, respx.MockRouter]) -> None:
    """updatedSince within 7 days and the filters go out as documented."""
    client, router = api
    route = _route(router, "/v3/partners/123/alerts", ex.ALERTS)
    alerts = await client.partners.alerts(
        123,
        tz="UTC",
        updated_since=datetime(2023, 11, 10),
        alert_types=["Device Fault", "System Disconnect"],
        status="Open",
        priority=["high", "low"],
    )
    assert len(alerts) == 2
    assert _sent(route) == (
        "/v3/partners/123/alerts?tz=UTC&updatedSince=2023-11-10T00:00:00"
        "&alertType=Device%20Fault,System%20Disconnect&status=open&priority=high,low"
    )


async def test_partner_alerts_open_during_split_into_31_day_windows(
    api: tuple[LocusClient, respx.MockRouter],
) -> None:
    """A 70-day openDuring is three requests of at most 31 days; alerts merge by id.

    The second window stops on 1 November: 31 local days from 2 October would cross the
    2015 fall-back and last 31 days and 1 hour.
    """
    client, router = api
    route = _route(router, "/v3/partners/123/alerts", ex.ALERTS)
    alerts = await client.partners.alerts(
        123, tz="US/Pacific", open_during=(datetime(2015, 9, 1), datetime(2015, 11, 10))
    )
    assert [a.id for a in alerts] == [999, 78]
    windows = sorted(
        (dict(c.request.url.params)["openDuringMin"], dict(c.request.url.params)["openDuringMax"])
        for c in route.calls
    )
    assert windows == [
        ("2015-09-01T00:00:00", "2015-10-02T00:00:00"),
        ("2015-10-02T00:00:00", "2015-11-01T00:00:00"),
        ("2015-11-01T00:00:00", "2015-11-10T00:00:00"),
    ]


async def test_partner_alerts_need_a_filter_and_recent_updated_since(
    api: tuple[LocusClient, respx.MockRouter],
) -> None:
    """No filter, or updated_since over 7 days ago: UsageError before any request."""
    client, router = api
    route = _route(router, "/v3/partners/123/alerts", ex.ALERTS)
    with pytest.raises(UsageError, match="updated_since"):
        await client.partners.alerts(123)
    with pytest.raises(UsageError, match=r"7 days"):
        await client.partners.alerts(123, updated_since=datetime(2023, 11, 1))
    assert route.call_count == 0


async def test_component_data_single_window(api: tuple[LocusClient, respx.MockRouter]) -> None:
    """The reference's monthly request, byte for byte, and its rows as columns.

    The reference stamps January with -07:00 (US/Pacific is -08:00 then); the client keeps
    the instant the server sent and shows it in the requested zone.
    """
    client, router = api
    route = _route(router, "/v3/components/54369/data", ex.DATA_MONTHLY)
    series = await client.components.data(
        54369,
        fields=["W_avg", "Wh_sum"],
        start=datetime(2014, 1, 1),
        end=datetime(2014, 3, 1),
        tz="US/Pacific",
        gran="monthly",
    )
    assert _sent(route) == (
        "/v3/components/54369/data?fields=W_avg,Wh_sum&start=2014-01-01T00:00:00"
        "&end=2014-03-01T00:00:00&tz=US/Pacific&gran=monthly"
    )
    rows = list(series)
    assert [r["W_avg"] for r in rows] == [567.0, 684.756]
    assert rows[0]["ts"] == datetime.fromisoformat("2014-01-01T00:00:00-07:00")
    assert rows[0]["ts"].tzinfo.key == "US/Pacific"


async def test_latest_sends_no_range(api: tuple[LocusClient, respx.MockRouter]) -> None:
    """gran=latest: no start, no end."""
    client, router = api
    route = _route(router, "/v3/components/54369/data", ex.DATA_HOURLY)
    await client.components.data(54369, fields=["W_avg"], tz="UTC", gran=Granularity.LATEST)
    assert _sent(route) == "/v3/components/54369/data?fields=W_avg&tz=UTC&gran=latest"


async def test_lifetime_rows_without_values(api: tuple[LocusClient, respx.MockRouter]) -> None:
    """Rows with only id and ts give None for every field."""
    client, router = api
    _route(router, "/v3/components/54369/data", ex.DATA_LIFETIME)
    series = await client.components.data(
        54369,
        fields="Wh_sum",
        start="2000-01-01T00:00:00",
        end="2030-01-01T00:00:00",
        tz="UTC",
        gran="yearly",
    )
    assert series.column("Wh_sum") == [None, None, 1234123.5, 124234.2, None]


async def test_field_parameters_pass_through(api: tuple[LocusClient, respx.MockRouter]) -> None:
    """modelType/irradianceSource/inverterClipping are appended as given."""
    client, router = api
    route = _route(router, "/v3/sites/123/data", ex.DATA_HOURLY)
    await client.sites.data(
        123,
        fields=["W_m_avg"],
        start="2015-08-01T00:00:00",
        end="2015-08-02T00:00:00",
        tz="US/Pacific",
        gran="5min",
        field_params={"modelType": "simple", "irradianceSource": "TMY", "inverterClipping": True},
    )
    assert _sent(route).endswith(
        "gran=5min&modelType=simple&irradianceSource=TMY&inverterClipping=true"
    )


async def test_bulk_data_is_monthly_and_yearly_split(
    api: tuple[LocusClient, respx.MockRouter],
) -> None:
    """Bulk data: monthly only, one request per twelve months."""
    client, router = api
    route = _route(router, "/v3/partners/111/sites/data", ex.BULK_DATA)
    series = await client.partners.bulk_data(
        111,
        fields=["Wh_sum"],
        start="2014-04-01T00:00:00",
        end="2015-06-01T00:00:00",
        tz="US/Pacific",
    )
    starts = sorted(dict(c.request.url.params)["start"] for c in route.calls)
    assert starts == ["2014-04-01T00:00:00", "2015-04-01T00:00:00"]
    assert sorted(series.ids) == [123, 456]
    with pytest.raises(UsageError, match="monthly only"):
        await client.partners.bulk_data(
            111, fields="Wh_sum", start="2014-01-01", end="2014-02-01", tz="UTC", gran="daily"
        )


async def test_base_url_with_v3_suffix_and_token_at_root() -> None:
    """/v3 in the base URL is accepted; the token endpoint stays at the host root."""
    with respx.mock(base_url=BASE) as router:
        token = router.post("/oauth/token").mock(
            return_value=httpx.Response(
                200, json={**ex.TOKEN_PASSWORD, "issued_at": int(time.time())}
            )
        )
        _route(router, "/v3/sites/123", ex.GET_SITE)
        auth = PasswordGrant(client_id="c", client_secret="s", username="u", password="p")
        async with LocusClient(auth=auth, base_url=BASE + "/v3/") as client:
            await client.sites.get(123)
        assert token.call_count == 1
        assert token.calls.last.request.url.path == "/oauth/token"


async def test_unknown_fields_are_ignored_by_default() -> None:
    """A production client parses bodies with fields it does not know."""
    with respx.mock(base_url=BASE) as router:
        _route(
            router,
            "/v3/components/54369",
            {**ex.GET_COMPONENT, "exampleNewField": "hello everyone!"},
        )
        async with LocusClient(auth=BearerToken("t-123456")) as client:
            component = await client.components.get(54369)
    assert component.id == 54369
