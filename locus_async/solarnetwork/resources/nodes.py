"""``/nodes``: list (paged), archived, archive and restore, certificates."""

from __future__ import annotations

import builtins
import os
from collections.abc import AsyncIterator, Iterable

from locus_async._core.checks import check_id
from locus_async._core.http import Response
from locus_async._core.times import resolve_tz
from locus_async.errors import (
    InvalidArgumentType,
    UsageError,
)
from locus_async.solarnetwork._core import wire
from locus_async.solarnetwork._core.endpoints import (
    NODES,
    NODES_ARCHIVED,
    NODES_CREATE_CERT,
    node_certificate,
)
from locus_async.solarnetwork._core.envelope import (
    list_decoder,
    object_decoder,
    page_decoder,
    success_decoder,
)
from locus_async.solarnetwork.models import (
    NodeCertificateInfo,
    Page,
    SolarNode,
)
from locus_async.solarnetwork.resources._base import Resource

__all__ = ["NodeCertificate", "NodesAPI"]


class NodeCertificate:
    """A node's PKCS#12 keystore (encrypted with the keystore password) and its file name."""

    def __init__(self, node_id: int, filename: str, content: bytes) -> None:
        self.node_id = node_id
        self.filename = filename
        self.content = content

    def __repr__(self) -> str:
        size = len(self.content)
        return f"NodeCertificate(node_id={self.node_id}, filename={self.filename!r}, {size} bytes)"


class NodesAPI(Resource):
    """``/nodes``: list (paged), archived list and update, certificates."""

    def iter(self, *, page_size: int = 100) -> AsyncIterator[SolarNode]:
        """Every node of the account, page by page."""
        return self._requester.items(NODES, SolarNode, [], page_size=page_size)

    async def list(self, *, page_size: int = 100) -> builtins.list[SolarNode]:
        return [node async for node in self.iter(page_size=page_size)]

    async def page(self, *, offset: int = 0, page_size: int = 100) -> Page[SolarNode]:
        """One page, with ``total_results``."""
        return await self._requester.call(
            "GET",
            NODES,
            page_decoder(self._converter, SolarNode),
            params=wire.page_params(page_size, offset, count=True),
        )

    async def archived(self) -> builtins.list[SolarNode]:
        return await self._requester.call(
            "GET", NODES_ARCHIVED, list_decoder(self._converter, SolarNode)
        )

    async def set_archived(self, node_ids: int | Iterable[int], archived: bool = True) -> None:
        """Archive (or with ``archived=False`` restore) nodes; safe to repeat."""
        if not isinstance(archived, bool):
            raise InvalidArgumentType("archived must be a bool")
        ids = wire.id_list(node_ids, "node_ids")
        await self._requester.call(
            "POST",
            NODES_ARCHIVED,
            success_decoder,
            form=[("nodeIds", ",".join(map(str, ids))), ("archived", str(archived).lower())],
            retry_safe=True,
        )

    async def create_certificate(
        self, *, time_zone: str, country: str, keystore_password: str
    ) -> NodeCertificateInfo:
        """Create a node and its certificate without an invitation. The password travels in
        the signed form body (never in the URL) and is not retried once sent."""
        zone = resolve_tz(time_zone).key
        if not isinstance(country, str) or len(country) != 2 or not country.isalpha():
            raise UsageError(f"country must be a 2-letter code such as 'NZ', got {country!r}")
        if not isinstance(keystore_password, str) or not keystore_password:
            raise UsageError("keystore_password must be a non-empty string")
        return await self._requester.call(
            "POST",
            NODES_CREATE_CERT,
            object_decoder(self._converter, NodeCertificateInfo),
            form=[
                ("timeZone", zone),
                ("country", country.upper()),
                ("keystorePassword", keystore_password),
            ],
            sensitive=True,
        )

    async def certificate(self, node_id: int) -> NodeCertificate:
        """Download a node's PKCS#12 keystore (``GET /nodes/cert/{nodeId}``)."""
        ident = check_id(node_id, "node_id")

        def decode(response: Response) -> NodeCertificate:
            disposition = response.header("content-disposition") or ""
            name = f"solarnode-{ident}.p12"
            if "filename=" in disposition:
                name = disposition.split("filename=", 1)[1].strip().strip('"') or name
            return NodeCertificate(ident, os.path.basename(name), response.content)

        return await self._requester.call(
            "GET",
            node_certificate(ident),
            decode,
            accept="application/x-pkcs12, application/octet-stream, application/json",
        )
