"""Locus v3 endpoints as pure request builders and response envelopes.

Owns: the path of every documented endpoint (``ENDPOINTS``, ``entity_path``,
``data_path``) and the shape of its body. Must never: do I/O.
Every list endpoint wraps its items in one key (``components``, ``sites``, ``clients``,
``alerts``, ``baseFields``); bodies also carry ``statusCode``, which parsing ignores.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar

import attrs
import cattrs

from locus_async._core.converter import KEY, decode_json, structure
from locus_async._core.http import Response
from locus_async.errors import UsageError
from locus_async.locus.models import Alert, BaseField, Client, Component, Site

__all__ = [
    "API_PREFIX",
    "DATA_KINDS",
    "ENDPOINTS",
    "data_path",
    "decoder",
    "entity_path",
    "list_decoder",
]

#: Every v3 path starts here (the token endpoint does not).
API_PREFIX: Final = "/v3"

#: The entity kinds that have a time series.
DATA_KINDS: Final = ("components", "sites")


#: Every documented endpoint below an entity (``""``: the entity itself), by entity kind.
ENDPOINTS: Final[dict[str, frozenset[str]]] = {
    "partners": frozenset(
        {"/sites", "/clients", "/components", "/alerts", "/sites/dataavailable", "/sites/data"}
    ),
    "clients": frozenset({"", "/sites", "/components"}),
    "sites": frozenset(
        {"", "/components", "/installinfo", "/modelsettings", "/dataavailable", "/alerts", "/data"}
    ),
    "components": frozenset({"", "/dataavailable", "/alerts", "/data"}),
}


def entity_path(kind: str, entity_id: int, endpoint: str = "") -> str:
    """``/{kind}/{id}{endpoint}`` (below ``/v3``) for a documented endpoint only."""
    if endpoint not in ENDPOINTS.get(kind, ()):
        raise ValueError(f"no documented endpoint {kind}/{{id}}{endpoint}")
    return f"/{kind}/{entity_id}{endpoint}"


def data_path(kind: str, entity_id: int) -> str:
    """``/v3/{components|sites}/{id}/data``: the one place the data path is spelled."""
    if kind not in DATA_KINDS:
        raise UsageError(f"kind must be 'components' or 'sites' (a time series), not {kind!r}")
    return API_PREFIX + entity_path(kind, entity_id, "/data")


T = TypeVar("T")


@attrs.frozen
class ComponentList:
    components: tuple[Component, ...] = attrs.field(metadata=KEY)


@attrs.frozen
class SiteList:
    sites: tuple[Site, ...] = attrs.field(metadata=KEY)


@attrs.frozen
class ClientList:
    clients: tuple[Client, ...] = attrs.field(metadata=KEY)


@attrs.frozen
class AlertList:
    alerts: tuple[Alert, ...] = attrs.field(metadata=KEY)


@attrs.frozen
class BaseFieldList:
    base_fields: tuple[BaseField, ...] = attrs.field(metadata=KEY)


ENVELOPES: Final[dict[type, tuple[type, str]]] = {
    Component: (ComponentList, "components"),
    Site: (SiteList, "sites"),
    Client: (ClientList, "clients"),
    Alert: (AlertList, "alerts"),
    BaseField: (BaseFieldList, "base_fields"),
}


def decoder(converter: cattrs.Converter, cls: type[T]) -> Callable[[Response], T]:
    """Decode a single-object body into ``cls``."""

    def decode(response: Response) -> T:
        label = response.request.label
        return structure(
            converter, decode_json(response.content, request=label), cls, request=label
        )

    return decode


def list_decoder(converter: cattrs.Converter, item: type[T]) -> Callable[[Response], list[T]]:
    """Decode a list body (``{"components": [...]}`` etc.) into a list of ``item``."""
    envelope, attribute = ENVELOPES[item]

    def decode(response: Response) -> list[T]:
        label = response.request.label
        body = decode_json(response.content, request=label)
        parsed: Any = structure(converter, body, envelope, request=label)
        return list(getattr(parsed, attribute))

    return decode
