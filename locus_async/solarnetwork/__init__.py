"""The SolarNetwork SolarUser API on the same shell as the Locus client.

``SolarNetClient`` covers every SolarUser endpoint (nodes, metadata, datum auxiliary, stale
aggregates, stream metadata, instructions, security tokens, user events, whoami, node
association), signs each request with SNWS2, pages lists as async iterators and maps errors
onto the shared tree (``locus_async.errors``). The signing functions are public and pure::

    from locus_async.solarnetwork import snws2_authorization

A simulator of the API lives in ``locus_async.simulator.SolarNetSimulator``.
"""

from __future__ import annotations

from locus_async._core.pacing import RateLimit
from locus_async.errors import InstructionTimeout
from locus_async.solarnetwork._core.signing import (
    canonical_query,
    canonical_request,
    digest_header,
    http_date,
    signing_key,
    snws2_authorization,
    string_to_sign,
)
from locus_async.solarnetwork.auth import KEY_VALID_DAYS, Snws2Credentials, host_header
from locus_async.solarnetwork.client import (
    API_PREFIX,
    DEFAULT_BASE_URL,
    DEFAULT_LOCATION_METADATA_PREFIX,
    INSTRUCTION_STATES,
    NodeCertificate,
    SolarNetClient,
)
from locus_async.solarnetwork.filters import matches, parse_filter
from locus_async.solarnetwork.models import (
    FINAL_STATES,
    DatumAuxiliary,
    Instruction,
    InstructionParameter,
    Metadata,
    NodeAssociation,
    NodeCertificateInfo,
    NodeInfo,
    NodeLocation,
    Page,
    SecurityToken,
    SolarNode,
    StaleAggregate,
    StreamMetadata,
    StreamMetadataIds,
    UserEvent,
    UserInfo,
    WhoAmI,
)

__all__ = [
    "API_PREFIX",
    "DEFAULT_BASE_URL",
    "DEFAULT_LOCATION_METADATA_PREFIX",
    "FINAL_STATES",
    "INSTRUCTION_STATES",
    "KEY_VALID_DAYS",
    "DatumAuxiliary",
    "Instruction",
    "InstructionParameter",
    "InstructionTimeout",
    "Metadata",
    "NodeAssociation",
    "NodeCertificate",
    "NodeCertificateInfo",
    "NodeInfo",
    "NodeLocation",
    "Page",
    "RateLimit",
    "SecurityToken",
    "Snws2Credentials",
    "SolarNetClient",
    "SolarNode",
    "StaleAggregate",
    "StreamMetadata",
    "StreamMetadataIds",
    "UserEvent",
    "UserInfo",
    "WhoAmI",
    "canonical_query",
    "canonical_request",
    "digest_header",
    "host_header",
    "http_date",
    "matches",
    "parse_filter",
    "signing_key",
    "snws2_authorization",
    "string_to_sign",
]
