"""The simulated fleet: partners, clients, sites and components, and what data each has.

Owns: the entity tree (deterministic), the wire form of every entity, and each entity's
``dataavailable``. Must never: do I/O or read a clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any, Final

import attrs

__all__ = [
    "ClientSpec",
    "ComponentSpec",
    "Fleet",
    "PartnerSpec",
    "SiteSpec",
    "default_fleet",
]

ALL_GRANS: Final = ("latest", "1min", "5min", "15min", "hourly", "daily", "monthly", "yearly")
NO_LATEST: Final = ALL_GRANS[1:]


@attrs.frozen
class Quantity:
    """A base field: name, unit, long name, aggregations offered (none: the reference's
    modelled component fields, listed but not requestable), granularities, and the field
    parameters a data call for it must carry (``(param, allowed values)``)."""

    base_field: str
    long_name: str
    unit: str
    aggregations: tuple[str, ...]
    granularities: tuple[str, ...] = ALL_GRANS
    source: str = "Measured"
    field_parameters: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def wire(self) -> dict[str, Any]:
        """The reference's shape: ``aggregations`` and ``fieldParameters`` appear only when
        there are some (its own examples omit either)."""
        body: dict[str, Any] = {
            "baseField": self.base_field,
            "longName": self.long_name,
            "source": self.source,
            "unit": self.unit,
        }
        if self.aggregations:
            body["aggregations"] = [
                {"shortName": f"{self.base_field}_{a}", "aggregation": a} for a in self.aggregations
            ]
        if self.field_parameters:
            body["fieldParameters"] = [
                {"param": p, "values": list(v)} for p, v in self.field_parameters
            ]
        body["granularities"] = list(self.granularities)
        return body


_AMM = ("avg", "max", "min")
_W = Quantity("W", "AC Power", "W", _AMM)
_WH = Quantity("Wh", "AC Energy", "Wh", ("sum",))
_PHV = Quantity("PhV", "AC Voltage L-N", "V", _AMM)
_PPV = Quantity("PPV", "AC Voltage L-L", "V", _AMM)
_A = Quantity("A", "AC Current", "A", _AMM)
_HZ = Quantity("Hz", "AC Frequency", "Hz", _AMM)
_PF = Quantity("PF", "AC Power Factor", "", _AMM)
_VA = Quantity("VA", "AC Apparent Power", "VA", _AMM)
_VAR = Quantity("VAR", "AC Reactive Power", "VAR", _AMM)
_WPH = tuple(Quantity(f"Wph{p}", f"AC Power {p}", "W", _AMM) for p in "ABC")
_POA = Quantity("POA", "Irradiance Plane of Array", "W/m²", _AMM)
_POAH = Quantity("POAh", "Insolation Plane of Array", "Wh/m²", ("sum",))
_TAMB = Quantity("TmpAmb", "Ambient Temperature", "°C", _AMM)

#: The PV model's parameters, as the reference's examples list them.
MODEL_PARAMETERS: Final = (
    ("modelType", ("simple",)),
    ("irradianceSource", ("weatherStation",)),
    ("inverterClipping", ("true", "false")),
)
#: Modelled component fields as the reference shows them: parameters, no aggregations.
_MODELLED_COMPONENT = tuple(
    Quantity(base, name, unit, (), NO_LATEST, "Modeled", MODEL_PARAMETERS)
    for base, name, unit in (
        ("PI_m", "Performance Index", ""),
        ("W_m", "AC Power", "W"),
        ("Wh_m", "AC Energy", "Wh"),
    )
)

#: What each node type measures (meters and inverters: every field of the reference's
#: component example).
QUANTITIES: Final[dict[str, tuple[Quantity, ...]]] = {
    "METER": (_W, _WH, _PHV, _PPV, _A, _HZ, _PF, _VA, _VAR, *_WPH),
    "INVERTER": (_W, _WH, _PHV, _PPV, _A, _PF, _VA, _VAR, *_WPH, *_MODELLED_COMPONENT),
    "WEATHERSTATION": (_POA, _POAH, _TAMB),
}

_HOURLY_UP: Final = ("hourly", "daily", "monthly", "yearly")

#: Site-level data: the site's generation meters added up, modelled power and energy (with
#: the model's parameters), expectations, and modelled irradiance.
SITE_QUANTITIES: Final = (
    Quantity("W", "AC Power", "W", ("avg", "max"), NO_LATEST[1:]),
    Quantity("W_m", "AC Power", "W", ("avg",), NO_LATEST[1:], "Modeled", MODEL_PARAMETERS),
    Quantity("Wh", "AC Energy", "Wh", ("sum",), NO_LATEST),
    Quantity("Wh_e", "AC Energy", "Wh", ("sum",), ("daily", "monthly", "yearly"), "Expected"),
    Quantity("Wh_m", "AC Energy", "Wh", ("sum",), NO_LATEST, "Modeled", MODEL_PARAMETERS),
    Quantity("GHI_m", "VI - Irradiance Global Horizontal", "W/m²", _AMM, _HOURLY_UP, "Modeled"),
    Quantity(
        "GHIh_m", "VI - Insolation Global Horizontal", "Wh/m²", ("sum",), _HOURLY_UP, "Modeled"
    ),
)

#: Bulk (partner-wide, monthly) fields: all eight of the reference.
BULK_FIELDS: Final = (
    Quantity("Wh", "AC Energy", "Wh", ("sum",), ("monthly",)),
    Quantity("Whp", "AC Energy (prorated)", "Wh", ("sum",), ("monthly",)),
    Quantity("Wh_e", "AC Energy", "Wh", ("sum",), ("monthly",), "Expected"),
    Quantity(
        "GHIh_m", "VI - Insolation Global Horizontal", "Wh/m²", ("sum",), ("monthly",), "Modeled"
    ),
    Quantity(
        "GHIhp_m",
        "VI - Insolation Global Horizontal (prorated)",
        "Wh/m²",
        ("sum",),
        ("monthly",),
        "Modeled",
    ),
    Quantity("GHIh_t", "Insolation Global Horizontal", "Wh/m²", ("sum",), ("monthly",), "Expected"),
    Quantity("EER", "Energy Expectations Ratio", "", ("avg",), ("monthly",), "Modeled"),
    Quantity(
        "GEER", "GHI-adjusted Energy Expectations Ratio", "", ("avg",), ("monthly",), "Modeled"
    ),
)


@attrs.frozen
class ComponentSpec:
    id: int
    node_type: str  # METER, INVERTER, WEATHERSTATION
    name: str
    node_id: str
    parent_id: int | None = None  # None: the site
    capacity_w: float = 0.0  # inverters: AC rating share; meters: derived from children
    commissioned: date | None = None
    oem: str = "Locus Energy"
    model: str = "LGate 120"
    serial_number: str | None = None
    notes: str | None = None


@attrs.frozen
class SiteSpec:
    id: int
    name: str
    tz: str
    latitude: float
    longitude: float
    city: str
    region: str
    region_code: str
    postal_code: str
    country_code: str
    address1: str
    size_kw: float
    components: tuple[ComponentSpec, ...] = ()
    startup: date | None = None
    installer: str | None = "ABC Solar"
    #: False: the address could not be geolocated, so the wire has no coordinates and bulk
    #: data has no modelled irradiance for the site.
    geolocated: bool = True


@attrs.frozen
class ClientSpec:
    id: int
    first_name: str
    last_name: str
    email: str
    tz: str
    sites: tuple[SiteSpec, ...] = ()


@attrs.frozen
class PartnerSpec:
    id: int
    clients: tuple[ClientSpec, ...] = ()


@attrs.frozen
class Located:
    """A component with the ids of everything above it."""

    component: ComponentSpec
    site: SiteSpec
    client: ClientSpec
    partner: PartnerSpec


class Fleet:
    """An indexed, immutable entity tree."""

    def __init__(self, partners: Iterable[PartnerSpec]) -> None:
        self.partners: dict[int, PartnerSpec] = {}
        self.clients: dict[int, tuple[ClientSpec, PartnerSpec]] = {}
        self.sites: dict[int, tuple[SiteSpec, ClientSpec, PartnerSpec]] = {}
        self.components: dict[int, Located] = {}
        for partner in partners:
            self.partners[partner.id] = partner
            for client in partner.clients:
                self.clients[client.id] = (client, partner)
                for site in client.sites:
                    self.sites[site.id] = (site, client, partner)
                    for component in site.components:
                        if component.id in self.components:
                            raise ValueError(f"duplicate component id {component.id}")
                        self.components[component.id] = Located(component, site, client, partner)

    def partner_of(self, kind: str, entity_id: int) -> int | None:
        if kind == "partners":
            return entity_id if entity_id in self.partners else None
        if kind == "clients":
            found = self.clients.get(entity_id)
            return found[1].id if found else None
        if kind == "sites":
            site = self.sites.get(entity_id)
            return site[2].id if site else None
        located = self.components.get(entity_id)
        return located.partner.id if located else None

    def site_components(self, site_id: int) -> Sequence[ComponentSpec]:
        return self.sites[site_id][0].components

    def children(self, component_id: int) -> list[ComponentSpec]:
        located = self.components[component_id]
        return [c for c in located.site.components if c.parent_id == component_id]

    def meters(self, site_id: int) -> list[ComponentSpec]:
        return [c for c in self.site_components(site_id) if c.node_type == "METER"]

    # -- wire forms -------------------------------------------------------------------

    def component_wire(self, component_id: int) -> dict[str, Any]:
        located = self.components[component_id]
        c = located.component
        body: dict[str, Any] = {
            "id": c.id,
            "siteId": located.site.id,
            "clientId": located.client.id,
            "parentId": c.parent_id if c.parent_id is not None else located.site.id,
            "parentType": "COMPONENT" if c.parent_id is not None else "SITE",
            "nodeId": c.node_id,
            "name": c.name,
            "nodeType": c.node_type,
            "application": "GENERATION",
            "generationType": "SOLAR",
            "oem": c.oem,
            "model": c.model,
            "isConceptualNode": False,
        }
        if c.serial_number:
            body["serialNumber"] = c.serial_number
        if c.notes:
            body["description"] = c.notes
        return body

    def site_wire(self, site_id: int) -> dict[str, Any]:
        site, client, _ = self.sites[site_id]
        body: dict[str, Any] = {
            "id": site.id,
            "clientId": client.id,
            "name": site.name,
            "address1": site.address1,
            "address2": "",
            "locale3": site.city,
            "locale1": site.region,
            "localeCode1": site.region_code,
            "postalCode": site.postal_code,
            "countryCode": site.country_code,
            "locationTimezone": site.tz,
        }
        if site.geolocated:
            body["latitude"] = site.latitude
            body["longitude"] = site.longitude
        return body

    def client_wire(self, client_id: int) -> dict[str, Any]:
        client, partner = self.clients[client_id]
        return {
            "id": client.id,
            "partnerId": partner.id,
            "tz": client.tz,
            "firstName": client.first_name,
            "lastName": client.last_name,
            "email": client.email,
        }

    def component_quantities(self, component_id: int) -> tuple[Quantity, ...]:
        return QUANTITIES[self.components[component_id].component.node_type]

    def site_quantities(self, site_id: int) -> tuple[Quantity, ...]:
        """The site's fields; the model's irradiance comes from the site's weather station,
        or from a typical year (TMY3) when it has none."""
        if not self.meters(site_id):
            return ()
        if any(c.node_type == "WEATHERSTATION" for c in self.site_components(site_id)):
            return SITE_QUANTITIES
        typical = tuple(
            (p, ("TMY3",)) if p == "irradianceSource" else (p, v) for p, v in MODEL_PARAMETERS
        )
        return tuple(
            attrs.evolve(q, field_parameters=typical) if q.field_parameters else q
            for q in SITE_QUANTITIES
        )


def _site(  # noqa: PLR0917 - a table-like builder for the default fleet
    site_id: int,
    name: str,
    tz: str,
    lat: float,
    lon: float,
    place: tuple[str, str, str, str, str, str],
    size_kw: float,
    first_component: int,
    *,
    inverters: int = 2,
    weather: bool = True,
    commissioned: date = date(2021, 6, 1),
    node_prefix: str = "OB.001EC1",
    components: bool = True,
    geolocated: bool = True,
) -> SiteSpec:
    city, region, region_code, postal, country, address = place
    parts: list[ComponentSpec] = []
    if components:
        meter_id = first_component
        parts.append(
            ComponentSpec(
                meter_id,
                "METER",
                "PV Meter",
                f"{node_prefix}{site_id % 100000:05d}.1",
                None,
                size_kw * 1000 * 0.82,
                commissioned,
                serial_number=f"MTR{meter_id}",
            )
        )
        share = size_kw * 1000 * 0.82 / max(1, inverters)
        for index in range(inverters):
            ident = first_component + 1 + index
            parts.append(
                ComponentSpec(
                    ident,
                    "INVERTER",
                    f"Inverter {chr(65 + index)}",
                    f"OB.INV{site_id % 100000:05d}.{index + 1}",
                    meter_id,
                    share * (1.0 + 0.04 * (index % 3 - 1)),
                    commissioned,
                    oem="Advanced Energy",
                    model="AE 500NX 480V",
                )
            )
        if weather:
            ident = first_component + 1 + inverters
            parts.append(
                ComponentSpec(
                    ident,
                    "WEATHERSTATION",
                    "Weather Station",
                    f"OB.WS{site_id % 100000:05d}.1",
                    None,
                    0.0,
                    commissioned,
                    oem="Kipp & Zonen",
                    model="SMP10",
                    notes="roof pyranometer",
                )
            )
    return SiteSpec(
        site_id,
        name,
        tz,
        lat,
        lon,
        city,
        region,
        region_code,
        postal,
        country,
        address,
        size_kw,
        tuple(parts),
        startup=commissioned,
        geolocated=geolocated,
    )


def default_fleet() -> Fleet:
    """The fleet of the demo and the tests: partner 111 with sites in seven kinds of zones.

    Component 54369 (a meter) and 54370 (an inverter under it) are the reference's example
    ids, in America/Los_Angeles. The zones cover both hemispheres' DST, a half-hour offset
    (Asia/Kolkata), a 45-minute offset (Asia/Kathmandu) and a 30-minute DST shift
    (Australia/Lord_Howe). Site 3393790 has no components (bulk data returns no row for it);
    site 3393716 could not be geolocated (bulk data has null modelled irradiance for it).
    """
    sf = ("San Francisco", "California", "CA", "94105", "US", "657 Mission St")
    hob = ("Hoboken", "New Jersey", "NJ", "07030", "US", "2 Hudson Place")
    ber = ("Berlin", "Berlin", "BE", "10115", "DE", "Invalidenstrasse 1")
    syd = ("Sydney", "New South Wales", "NSW", "2000", "AU", "1 Macquarie St")
    pune = ("Pune", "Maharashtra", "MH", "411001", "IN", "12 MG Road")
    ktm = ("Kathmandu", "Bagmati", "BA", "44600", "NP", "Durbar Marg")
    lhi = ("Lord Howe Island", "New South Wales", "NSW", "2898", "AU", "Lagoon Rd")
    den = ("Denver", "Colorado", "CO", "80202", "US", "1600 Glenarm Pl")
    partner = PartnerSpec(
        111,
        (
            ClientSpec(
                419010,
                "Test",
                "System",
                "test@locusenergy.example",
                "US/Pacific",
                (
                    _site(
                        3393714,
                        "Test Site",
                        "America/Los_Angeles",
                        37.78,
                        -122.40,
                        sf,
                        120.0,
                        54369,
                        inverters=3,
                    ),
                    _site(
                        3393715,
                        "Hoboken Warehouse",
                        "America/New_York",
                        40.74,
                        -74.03,
                        hob,
                        80.0,
                        54380,
                    ),
                    _site(
                        3393716,
                        "Denver Depot",
                        "America/Denver",
                        39.75,
                        -104.99,
                        den,
                        60.0,
                        54390,
                        weather=False,
                        geolocated=False,
                    ),
                ),
            ),
            ClientSpec(
                456,
                "Another",
                "System",
                "another@locusenergy.example",
                "Europe/Berlin",
                (
                    _site(
                        3393720, "Berlin Rooftop", "Europe/Berlin", 52.53, 13.38, ber, 95.0, 54400
                    ),
                    _site(
                        3393730,
                        "Sydney Depot",
                        "Australia/Sydney",
                        -33.86,
                        151.21,
                        syd,
                        150.0,
                        54410,
                    ),
                    _site(
                        3393740,
                        "Pune Plant",
                        "Asia/Kolkata",
                        18.52,
                        73.86,
                        pune,
                        200.0,
                        54420,
                        weather=False,
                    ),
                    _site(
                        3393750,
                        "Kathmandu School",
                        "Asia/Kathmandu",
                        27.71,
                        85.32,
                        ktm,
                        40.0,
                        54430,
                        inverters=1,
                    ),
                    _site(
                        3393760,
                        "Lord Howe Microgrid",
                        "Australia/Lord_Howe",
                        -31.55,
                        159.08,
                        lhi,
                        30.0,
                        54440,
                        inverters=1,
                    ),
                    _site(
                        3393790,
                        "Planned Site",
                        "America/Los_Angeles",
                        34.05,
                        -118.24,
                        sf,
                        50.0,
                        0,
                        components=False,
                    ),
                ),
            ),
        ),
    )
    return Fleet([partner])
