"""SolarUser's fixed strings: host, API prefix, paths outside it, content types, the
closed vocabularies (instruction states, token types and statuses, stale kinds, sort keys)
and how a path segment is escaped. Pure: no I/O."""

from __future__ import annotations

from typing import Final
from urllib.parse import quote

__all__ = [
    "API_PREFIX",
    "ASSOCIATE_PATH",
    "DEFAULT_BASE_URL",
    "DEFAULT_LOCATION_METADATA_PREFIX",
    "FORM_TYPE",
    "INSTRUCTION_STATES",
    "JSON_TYPE",
    "SORTS",
    "STALE_KINDS",
    "TOKEN_STATUSES",
    "TOKEN_TYPES",
    "segment",
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
