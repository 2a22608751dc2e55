"""Typed objects of the Locus v3 API (frozen attrs classes).

Attributes are the snake_case form of the camelCase wire names (``siteId`` -> ``site_id``);
a field whose wire name is not the camelCase of its attribute says so in
``metadata={"wire": ...}``. Fields the reference marks "always returned" are required;
the rest default to None (or an empty tuple). Unknown wire fields are ignored (v3 adds fields
without notice); the strict converter used against the simulator rejects them.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

import attrs

from locus_async._core.converter import KEY as _KEY
from locus_async._core.converter import SECRET

__all__ = [
    "Aggregation",
    "Alert",
    "BaseField",
    "Client",
    "Component",
    "FieldParameter",
    "Granularity",
    "InstallInfo",
    "ModelSettings",
    "Site",
    "Token",
]


def _wire(name: str) -> dict[str, Any]:
    return {"wire": name}


def _key(wire: str) -> dict[str, Any]:
    return {"wire": wire, **_KEY}


def _hidden(value: object) -> str:
    return "'***'" if value else repr(value)


class Granularity(enum.StrEnum):
    """Time-series granularities, valued as on the wire."""

    LATEST = "latest"
    MIN1 = "1min"
    MIN5 = "5min"
    MIN15 = "15min"
    HOURLY = "hourly"
    DAILY = "daily"
    MONTHLY = "monthly"
    YEARLY = "yearly"


@attrs.frozen
class Token:
    """An OAuth2 access token as the token endpoint returns it. Its secrets never print."""

    access_token: str = attrs.field(repr=_hidden, metadata={**_key("access_token"), **SECRET})
    issued_at: datetime = attrs.field(metadata={"wire": "issued_at", "epoch": True, "key": True})
    expires_in: int = attrs.field(metadata=_key("expires_in"))
    token_type: str | None = attrs.field(default=None, metadata=_wire("token_type"))
    refresh_token: str | None = attrs.field(
        default=None, repr=_hidden, metadata={**_wire("refresh_token"), **SECRET}
    )


@attrs.frozen
class Client:
    """A client (also called a project): a container of sites."""

    id: int
    partner_id: int | None
    tz: str
    first_name: str
    last_name: str
    email: str


@attrs.frozen
class Site:
    """A site: location and site-level metadata; has time series of its own."""

    id: int
    client_id: int | None
    name: str
    address1: str
    locale3: str
    locale1: str
    locale_code1: str
    postal_code: str
    country_code: str
    address2: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    location_timezone: str | None = None


@attrs.frozen
class InstallInfo:
    """A site's installation record (every attribute optional)."""

    installer: str | None = None
    install_crew: str | None = None
    install_date: date | None = None
    pto_date: date | None = None
    startup_date: date | None = None
    uninstall_crew: str | None = None
    uninstall_date: date | None = None


@attrs.frozen
class ModelSettings:
    """A site's PV-model parameters."""

    mismatch: int | None
    diodes_and_connections: int | None
    dc_wiring: int | None
    soiling: int | None
    sun_tracking: int | None
    nameplate: int | None
    ac_wiring: int | None
    transformer: int | None
    size: float | None = None
    tmy3_id: int | None = None


@attrs.frozen
class Component:
    """A physical (or conceptual) device on a site; components may nest."""

    id: int
    site_id: int | None
    client_id: int | None
    parent_id: int | None
    parent_type: str
    node_id: str
    name: str
    node_type: str
    application: str
    generation_type: str
    oem: str
    model: str
    is_conceptual_node: bool | None
    serial_number: str | None = None
    description: str | None = None


@attrs.frozen
class Aggregation:
    """One requestable field of a base field: ``short_name`` is what ``fields=`` takes."""

    short_name: str = attrs.field(metadata=_KEY)
    aggregation: str


@attrs.frozen
class FieldParameter:
    """An extra query parameter a base field accepts, with its allowed values."""

    param: str = attrs.field(metadata=_KEY)
    values: tuple[str, ...] = ()


@attrs.frozen
class BaseField:
    """A kind of data an entity has (``dataavailable``), its aggregations and granularities.

    The reference's own examples omit ``aggregations`` or ``fieldParameters`` for some base
    fields, so both default to empty.
    """

    base_field: str = attrs.field(metadata=_KEY)
    long_name: str
    source: str
    unit: str
    granularities: tuple[str, ...]
    aggregations: tuple[Aggregation, ...] = ()
    field_parameters: tuple[FieldParameter, ...] = ()

    @property
    def short_names(self) -> tuple[str, ...]:
        """The field names this base field offers to ``data`` calls."""
        return tuple(a.short_name for a in self.aggregations)


@attrs.frozen
class Alert:
    """An alert on a component. Times are aware datetimes in the requested ``tz``.

    ``component_name``, ``site_id`` and ``site_name`` were added to the API in 2017 and are
    missing from older payloads (and from the reference's own compression example).
    """

    id: int
    component_id: int | None
    alert_type: str
    priority: str
    start: datetime = attrs.field(metadata=_KEY)
    updated: datetime | None
    end: datetime | None = None
    component_name: str | None = None
    site_id: int | None = None
    site_name: str | None = None
    description_short: str | None = None
    description_long: str | None = None

    @property
    def is_open(self) -> bool:
        """True while the alert has no end."""
        return self.end is None
