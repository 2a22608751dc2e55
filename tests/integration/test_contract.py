"""Contract: each request example of the reference gets a body of the documented shape.

The reference's ids are mapped onto the simulator's fleet (partner 111, site 3393714,
client 419010/456, component 54369); everything else (paths, parameters, dates) is as
printed in ``locus-v3-api.txt``. Shapes are the reference's attribute tables: required keys
must be there, and no key may be outside required + optional.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from locus_async._core.converter import make_converter, structure
from locus_async.locus._core.endpoints import (
    AlertList,
    BaseFieldList,
    ClientList,
    ComponentList,
    SiteList,
)
from locus_async.locus.models import Client, Component, InstallInfo, ModelSettings, Site
from locus_async.simulator import Simulator

pytestmark = pytest.mark.asyncio

STRICT = make_converter(strict=True)

SHAPES: dict[str, tuple[set[str], set[str]]] = {
    "component": (
        {
            "id",
            "siteId",
            "clientId",
            "parentId",
            "parentType",
            "nodeId",
            "name",
            "nodeType",
            "application",
            "generationType",
            "oem",
            "model",
            "isConceptualNode",
        },
        {"serialNumber", "description", "statusCode"},
    ),
    "site": (
        {
            "id",
            "clientId",
            "name",
            "address1",
            "locale3",
            "locale1",
            "localeCode1",
            "postalCode",
            "countryCode",
        },
        {"address2", "latitude", "longitude", "locationTimezone", "statusCode"},
    ),
    "client": ({"id", "partnerId", "tz", "firstName", "lastName", "email"}, {"statusCode"}),
    "installinfo": (
        {"statusCode"},
        {
            "installer",
            "installCrew",
            "installDate",
            "ptoDate",
            "startupDate",
            "uninstallCrew",
            "uninstallDate",
        },
    ),
    "modelsettings": (
        {
            "statusCode",
            "mismatch",
            "diodesAndConnections",
            "dcWiring",
            "soiling",
            "sunTracking",
            "nameplate",
            "acWiring",
            "transformer",
        },
        {"size", "tmy3Id"},
    ),
    "basefield": (
        {"baseField", "longName", "source", "unit", "granularities"},
        {"aggregations", "fieldParameters"},
    ),
    "alert": (
        {
            "id",
            "componentId",
            "componentName",
            "siteId",
            "siteName",
            "alertType",
            "priority",
            "start",
            "updated",
        },
        {"end", "descriptionShort", "descriptionLong"},
    ),
}


def _check(obj: dict[str, Any], shape: str) -> None:
    required, optional = SHAPES[shape]
    keys = set(obj)
    assert required <= keys, f"{shape} misses {required - keys}"
    assert keys <= required | optional, f"{shape} has undocumented {keys - required - optional}"


def _recent(days: int) -> str:
    return (datetime.now() - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S")


# (example request as mapped, what to check)
EXAMPLES: list[tuple[str, str]] = [
    ("/v3/partners/111/components?nodeId=OB.001EC193714.1", "components"),
    ("/v3/components/54369/dataavailable", "basefields"),
    (
        "/v3/components/54369/data?start=2014-01-01T00:00:00&end=2014-03-01T00:00:00&tz=US/Pacific&gran=monthly&fields=W_avg,Wh_sum",
        "data",
    ),
    (
        "/v3/components/54369/data?start=2024-01-01T00:00:00&end=2024-03-01T00:00:00&tz=US/Pacific&gran=monthly&fields=W_avg,Wh_sum",
        "data",
    ),
    (
        "/v3/components/54369/data?start=2000-01-01T00:00:00&end=2030-01-01T00:00:00&tz=UTC&gran=yearly&fields=Wh_sum",
        "data",
    ),
    ("/v3/partners/111/sites", "sites"),
    ("/v3/sites/3393714/components", "components"),
    ("/v3/components/54369", "component"),
    ("/v3/clients/419010/components", "components"),
    ("/v3/partners/111/components", "components"),
    ("/v3/sites/3393714", "site"),
    ("/v3/clients/456/sites", "sites"),
    ("/v3/sites/3393714/installinfo", "installinfo"),
    ("/v3/sites/3393714/modelsettings", "modelsettings"),
    ("/v3/clients/419010", "client"),
    ("/v3/partners/111/clients", "clients"),
    ("/v3/sites/3393714/dataavailable", "basefields"),
    ("/v3/partners/111/sites/dataavailable", "basefields"),
    (
        "/v3/components/54369/data?fields=W_avg,Wh_sum&start=2024-04-01T12:00:00&end=2024-04-01T13:00:00&tz=US/Pacific&gran=hourly",
        "data",
    ),
    (
        "/v3/sites/3393714/data?fields=W_avg,Wh_sum&start=2024-04-01T12:00:00&end=2024-04-01T13:01:00&tz=US/Pacific&gran=hourly",
        "data",
    ),
    (
        "/v3/partners/111/sites/data?start=2024-04-01T00:00:00&end=2024-05-01T01:00:00&tz=US/Pacific&gran=monthly&fields=Wh_sum",
        "data",
    ),
    (f"/v3/partners/111/alerts?updatedSince={_recent(6)}&tz=UTC", "alerts"),
    (
        "/v3/partners/111/alerts?openDuringMin=2023-09-01T00:00:00&openDuringMax=2023-10-01T00:00:00&tz=US/Pacific",
        "alerts",
    ),
    ("/v3/sites/3393714/alerts?tz=UTC", "alerts"),
    ("/v3/sites/3393714/alerts?updatedSince=2023-11-20T00:00:00&tz=UTC", "alerts"),
    (
        "/v3/sites/3393714/alerts?openDuringMin=2022-09-01T00:00:00&openDuringMax=2023-10-01T00:00:00&tz=US/Pacific",
        "alerts",
    ),
    ("/v3/components/54369/alerts?tz=UTC", "alerts"),
    ("/v3/components/54370/alerts?updatedSince=2023-11-20T00:00:00&tz=UTC", "alerts"),
    (
        "/v3/components/54369/alerts?openDuringMin=2022-09-01T00:00:00&openDuringMax=2023-10-01T00:00:00&tz=US/Pacific",
        "alerts",
    ),
]

_LISTS = {
    "components": ("components", "component", ComponentList),
    "sites": ("sites", "site", SiteList),
    "clients": ("clients", "client", ClientList),
    "alerts": ("alerts", "alert", AlertList),
    "basefields": ("baseFields", "basefield", BaseFieldList),
}
_SINGLE = {
    "component": Component,
    "site": Site,
    "client": Client,
    "installinfo": InstallInfo,
    "modelsettings": ModelSettings,
}


@pytest.mark.parametrize(
    ("url", "kind"), EXAMPLES, ids=[u.split("?")[0] + "?" * ("?" in u) for u, _ in EXAMPLES]
)
async def test_reference_example_has_documented_shape(sim: Simulator, url: str, kind: str) -> None:
    """200, statusCode 200, documented keys only, and the strict converter accepts it."""
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://localhost") as http:
        token = (
            await http.post(
                "/oauth/token",
                data={
                    "grant_type": "password",
                    "client_id": "demo-client",
                    "client_secret": "demo-secret",
                    "username": "demo@locus.example",
                    "password": "demo-password",
                },
            )
        ).json()
        response = await http.get(url, headers={"Authorization": f"Bearer {token['access_token']}"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["statusCode"] == 200
    if kind in _LISTS:
        key, shape, envelope = _LISTS[kind]
        assert set(body) == {"statusCode", key}
        assert body[key], f"{url} returned an empty list"
        for item in body[key]:
            _check(item, shape)
        structure(STRICT, body, envelope)
    elif kind == "data":
        assert set(body) == {"statusCode", "data"}
        fields = set(dict(httpx.QueryParams(url.split("?")[1]))["fields"].split(","))
        for row in body["data"]:
            assert {"id", "ts"} <= set(row) <= {"id", "ts"} | fields
            datetime.fromisoformat(row["ts"]).utcoffset()
    else:
        _check(body, kind)
        structure(STRICT, body, _SINGLE[kind])


@pytest.mark.parametrize(
    ("form", "keys"),
    [
        (
            {
                "grant_type": "password",
                "username": "demo@locus.example",
                "password": "demo-password",
            },
            {"access_token", "issued_at", "token_type", "refresh_token", "expires_in"},
        ),
        (
            {"grant_type": "client_credentials"},
            {"access_token", "issued_at", "token_type", "expires_in"},
        ),
    ],
)
async def test_token_examples(sim: Simulator, form: dict[str, str], keys: set[str]) -> None:
    """Token responses have the documented keys; refresh_token only for the password grant."""
    creds = (
        {"client_id": "demo-service", "client_secret": "demo-service-secret"}
        if form["grant_type"] == "client_credentials"
        else {"client_id": "demo-client", "client_secret": "demo-secret"}
    )
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://localhost") as http:
        body = (await http.post("/oauth/token", data={**form, **creds})).json()
        assert set(body) == keys
        if "refresh_token" in body:
            refreshed = (
                await http.post(
                    "/oauth/token",
                    data={
                        "grant_type": "refresh_token",
                        "refresh_token": body["refresh_token"],
                        **creds,
                    },
                )
            ).json()
            assert set(refreshed) == {"access_token", "issued_at", "token_type", "expires_in"}
    assert body["expires_in"] == 3600
