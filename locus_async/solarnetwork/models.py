"""Typed objects of the SolarNetwork SolarUser API (frozen attrs classes).

Same conventions as ``locus_async.locus.models``: snake_case attributes of camelCase wire names,
optional fields default to None or empty, unknown fields ignored (strict mode for tests).
Timestamps such as ``2020-03-01 10:30:49.346827Z`` become aware datetimes. Free-form
JSON (metadata ``m``/``pm``, datum samples, policies, event data) stays a dict.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

import attrs

from locus_async._core.converter import KEY as _KEY
from locus_async._core.converter import SECRET

__all__ = [
    "DatumAuxiliary",
    "Instruction",
    "InstructionParameter",
    "Metadata",
    "NodeAssociation",
    "NodeCertificateInfo",
    "NodeInfo",
    "NodeLocation",
    "Page",
    "SecurityToken",
    "SolarNode",
    "StaleAggregate",
    "StreamMetadata",
    "StreamMetadataIds",
    "UserEvent",
    "UserInfo",
    "WhoAmI",
]

T = TypeVar("T")

#: Instruction states that end an instruction's life.
FINAL_STATES = frozenset({"Completed", "Declined"})


def _hidden(value: object) -> str:
    return "'***'" if value else repr(value)


@attrs.frozen
class Page(Generic[T]):
    """One page of a paged list. ``total_results`` is None when the count was not asked."""

    starting_offset: int = attrs.field(metadata=_KEY)
    returned_result_count: int = attrs.field(metadata=_KEY)
    results: tuple[T, ...] = ()
    total_results: int | None = None


@attrs.frozen
class NodeInfo:
    id: int
    location_id: int | None = None
    time_zone: str | None = None
    created: datetime | None = None


@attrs.frozen
class NodeLocation:
    id: int
    created: datetime | None = None
    country: str | None = None
    time_zone_id: str | None = None
    region: str | None = None
    state_or_province: str | None = None
    locality: str | None = None
    postal_code: str | None = None


@attrs.frozen
class UserInfo:
    id: int
    created: datetime | None = None
    name: str | None = None
    email: str | None = None
    enabled: bool | None = None
    location_id: int | None = None


@attrs.frozen
class SolarNode:
    """A node of the account, as ``/nodes`` lists it."""

    id: int
    created: datetime | None = None
    name: str | None = None
    description: str | None = None
    id_and_name: str | None = None
    requires_authorization: bool = False
    node: NodeInfo | None = None
    node_location: NodeLocation | None = None
    user: UserInfo | None = None


@attrs.frozen
class NodeCertificateInfo:
    """The answer to ``/nodes/create-cert``: the new node and its certificate request."""

    created: datetime | None = None
    requires_authorization: bool = False
    user: UserInfo | None = None
    node: NodeInfo | None = None
    certificate: dict[str, Any] | None = None
    user_id: int | None = None
    node_location: NodeLocation | None = None
    id_and_name: str | None = None


@attrs.frozen
class NodeAssociation:
    """The answer to ``/associate.json``."""

    network_id: int = attrs.field(metadata=_KEY)
    network_certificate_status: str | None = None
    network_certificate_subject_dn: str | None = attrs.field(
        default=None, metadata={"wire": "networkCertificateSubjectDN"}
    )
    network_certificate: str | None = attrs.field(default=None, repr=False)
    username: str | None = None
    confirmation_key: str | None = attrs.field(default=None, repr=_hidden, metadata=SECRET)


@attrs.frozen
class InstructionParameter:
    name: str = attrs.field(metadata=_KEY)
    value: str


@attrs.frozen
class Instruction:
    """A node instruction. ``state``: Unknown, Queuing, Queued, Received, Executing,
    Declined or Completed (the last two are final)."""

    id: int
    topic: str
    state: str
    node_id: int | None = None
    created: datetime | None = None
    instruction_date: datetime | None = None
    status_date: datetime | None = None
    parameters: tuple[InstructionParameter, ...] = ()
    result_parameters: dict[str, Any] | None = None

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def params(self) -> dict[str, str]:
        """Parameters as a dict (the last value wins for a repeated name)."""
        return {p.name: p.value for p in self.parameters}


@attrs.frozen
class Metadata:
    """A metadata document: ``m`` (info), ``pm`` (property info), ``t`` (tags)."""

    m: dict[str, Any] | None = None
    pm: dict[str, Any] | None = None
    t: tuple[str, ...] = ()
    node_id: int | None = None
    user_id: int | None = None
    source_id: str | None = None
    location_id: int | None = None
    created: datetime | None = None
    updated: datetime | None = None

    def document(self) -> dict[str, Any]:
        """The wire form of the document itself (what POST and PUT take)."""
        out: dict[str, Any] = {}
        if self.m is not None:
            out["m"] = self.m
        if self.pm is not None:
            out["pm"] = self.pm
        if self.t:
            out["t"] = list(self.t)
        return out


@attrs.frozen
class DatumAuxiliary:
    """A datum auxiliary record: a special event (Reset...) on a node's datum stream."""

    created: datetime = attrs.field(metadata=_KEY)
    node_id: int = attrs.field(metadata=_KEY)
    source_id: str = attrs.field(metadata=_KEY)
    type: str = attrs.field(metadata=_KEY)
    local_date: str | None = None
    local_time: str | None = None
    updated: datetime | None = None
    notes: str | None = None
    final: dict[str, Any] | None = None
    start: dict[str, Any] | None = None
    meta: dict[str, Any] | None = None


@attrs.frozen
class StaleAggregate:
    node_id: int = attrs.field(metadata=_KEY)
    source_id: str = attrs.field(metadata=_KEY)
    start_date: datetime = attrs.field(metadata=_KEY)
    kind: str = attrs.field(metadata=_KEY)
    created: datetime | None = None


@attrs.frozen
class StreamMetadata:
    stream_id: str = attrs.field(metadata=_KEY)
    kind: str = attrs.field(metadata=_KEY)
    object_id: int = attrs.field(metadata=_KEY)
    source_id: str = attrs.field(metadata=_KEY)
    zone: str | None = None
    i: tuple[str, ...] = ()
    a: tuple[str, ...] = ()
    s: tuple[str, ...] = ()


@attrs.frozen
class StreamMetadataIds:
    stream_id: str = attrs.field(metadata=_KEY)
    kind: str = attrs.field(metadata=_KEY)
    object_id: int = attrs.field(metadata=_KEY)
    source_id: str = attrs.field(metadata=_KEY)


@attrs.frozen
class SecurityToken:
    """A security token. ``auth_secret`` is only ever present in the answer to
    ``generate`` and never prints."""

    id: str
    status: str
    type: str
    created: datetime | None = None
    user_id: int | None = None
    name: str | None = None
    description: str | None = None
    expired: bool = False
    policy: dict[str, Any] | None = None
    auth_secret: str | None = attrs.field(default=None, repr=_hidden, metadata=SECRET)


@attrs.frozen
class UserEvent:
    user_id: int = attrs.field(metadata=_KEY)
    created: datetime = attrs.field(metadata=_KEY)
    event_id: str = attrs.field(metadata=_KEY)
    tags: tuple[str, ...] = ()
    data: dict[str, Any] | None = None


@attrs.frozen
class WhoAmI:
    token: str = attrs.field(metadata=_KEY)
    token_type: str
