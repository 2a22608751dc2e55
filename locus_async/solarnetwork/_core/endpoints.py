"""SolarUser's fixed strings: host, API prefix, paths outside it, content types, the
closed vocabularies (instruction states, token types and statuses, stale kinds, sort keys)
how a path segment is escaped, and every path under the API prefix. Pure: no I/O."""

from __future__ import annotations

from typing import Final
from urllib.parse import quote

__all__ = [
    "API_PREFIX",
    "ASSOCIATE_PATH",
    "DATUM_AUXILIARY",
    "DATUM_AUXILIARY_MOVE",
    "DATUM_METADATA",
    "DEFAULT_BASE_URL",
    "DEFAULT_LOCATION_METADATA_PREFIX",
    "FORM_TYPE",
    "INSTRUCTIONS",
    "INSTRUCTIONS_ACTIVE",
    "INSTRUCTIONS_PENDING",
    "INSTRUCTION_ADD",
    "INSTRUCTION_EXEC",
    "INSTRUCTION_STATES",
    "INSTRUCTION_UPDATE_STATE",
    "INSTRUCTION_VIEW",
    "JSON_TYPE",
    "NODES",
    "NODES_ARCHIVED",
    "NODES_CREATE_CERT",
    "NODE_METADATA",
    "SORTS",
    "STALE_AGGREGATES",
    "STALE_KINDS",
    "TOKENS",
    "TOKEN_INFO",
    "TOKEN_POLICY",
    "TOKEN_STATUS",
    "TOKEN_STATUSES",
    "TOKEN_TYPES",
    "USER_EVENTS",
    "USER_METADATA",
    "WHOAMI",
    "node_certificate",
    "node_metadata",
    "segment",
    "stream_metadata",
    "token_generate",
]

DEFAULT_BASE_URL: Final = "https://data.solarnetwork.net"
API_PREFIX: Final = "/solaruser/api/v1/sec"
ASSOCIATE_PATH: Final = "/solaruser/associate.json"
#: The reference documents this path; SolarNetwork's server code maps ``/location/meta``.
DEFAULT_LOCATION_METADATA_PREFIX: Final = "/location/datum/meta"

INSTRUCTION_STATES: Final = (
    "Unknown",
    "Queuing",
    "Queued",
    "Received",
    "Executing",
    "Declined",
    "Completed",
)
TOKEN_TYPES: Final = ("ReadNodeData", "User")
TOKEN_STATUSES: Final = ("Active", "Disabled")
STALE_KINDS: Final = ("h", "d", "m")

JSON_TYPE: Final = "application/json;charset=UTF-8"
FORM_TYPE: Final = "application/x-www-form-urlencoded;charset=UTF-8"

SORTS: Final = {
    "datum_auxiliary": ("created", "node", "source", "updated"),
    "stale": ("created", "kind", "node", "source", "start"),
    "node_metadata": ("created", "node", "updated"),
}


def segment(value: str) -> str:
    return quote(value, safe="")


# -- every path under the API prefix (the resources name them; nothing else spells them) --

WHOAMI: Final = "/whoami"
NODES: Final = "/nodes"
NODES_ARCHIVED: Final = "/nodes/archived"
NODES_CREATE_CERT: Final = "/nodes/create-cert"
NODE_METADATA: Final = "/nodes/meta"
USER_METADATA: Final = "/users/meta"
DATUM_METADATA: Final = "/datum/meta"
DATUM_AUXILIARY: Final = "/datum/auxiliary"
DATUM_AUXILIARY_MOVE: Final = "/datum/auxiliary/move"
STALE_AGGREGATES: Final = "/datum/maint/agg/stale"
INSTRUCTIONS: Final = "/instr"
INSTRUCTION_ADD: Final = "/instr/add"
INSTRUCTION_EXEC: Final = "/instr/exec"
INSTRUCTION_VIEW: Final = "/instr/view"
INSTRUCTIONS_ACTIVE: Final = "/instr/viewActive"
INSTRUCTIONS_PENDING: Final = "/instr/viewPending"
INSTRUCTION_UPDATE_STATE: Final = "/instr/updateState"
TOKENS: Final = "/user/auth-tokens"
TOKEN_INFO: Final = "/user/auth-tokens/info"  # noqa: S105 - a path, not a secret
TOKEN_STATUS: Final = "/user/auth-tokens/status"  # noqa: S105 - a path
TOKEN_POLICY: Final = "/user/auth-tokens/policy"  # noqa: S105 - a path
USER_EVENTS: Final = "/user/events"


def node_certificate(node_id: int) -> str:
    return f"/nodes/cert/{node_id}"


def node_metadata(node_id: int) -> str:
    return f"{NODE_METADATA}/{node_id}"


def stream_metadata(stream_id: str) -> str:
    return f"/datum/stream/meta/node/{segment(stream_id)}"


def token_generate(token_type: str) -> str:
    return f"/user/auth-tokens/generate/{segment(token_type)}"
