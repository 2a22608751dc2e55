"""Metadata documents: node, user, datum source and location source metadata."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, Final

from locus_async._core.checks import check_id
from locus_async.solarnetwork._core import wire
from locus_async.solarnetwork._core.endpoints import (
    NODE_METADATA,
    SORTS,
    USER_METADATA,
    node_metadata,
)
from locus_async.solarnetwork._core.envelope import (
    first_decoder,
    success_decoder,
)
from locus_async.solarnetwork.filters import parse_filter
from locus_async.solarnetwork.models import (
    Metadata,
)
from locus_async.solarnetwork.requester import Requester
from locus_async.solarnetwork.resources._base import Resource

__all__ = ["NodeMetadataAPI", "SourceMetadataAPI", "UserMetadataAPI"]


class _MetadataDocument(Resource):
    """Merge (POST), replace (PUT) and delete one metadata document at ``where``."""

    async def _merge(self, where: tuple[str, builtins.list[wire.Param]], document: Any) -> None:
        path, params = where
        await self._requester.call(
            "POST",
            path,
            success_decoder,
            params=params,
            json=wire.metadata_body(document),
            retry_safe=True,
        )

    async def _replace(self, where: tuple[str, builtins.list[wire.Param]], document: Any) -> None:
        path, params = where
        await self._requester.call(
            "PUT", path, success_decoder, params=params, json=wire.metadata_body(document)
        )

    async def _remove(self, where: tuple[str, builtins.list[wire.Param]]) -> None:
        path, params = where
        await self._requester.call("DELETE", path, success_decoder, params=params)


MetadataDocument = Metadata | Mapping[str, Any]


class NodeMetadataAPI(_MetadataDocument):
    """``/nodes/meta``: ``iter``/``list`` (optionally by metadata filter), ``get``, and
    ``add`` (merge), ``store`` (replace), ``delete`` of one node's document."""

    @staticmethod
    def _where(node_id: int) -> tuple[str, builtins.list[wire.Param]]:
        return node_metadata(check_id(node_id, "node_id")), []

    def iter(
        self,
        node_ids: int | Iterable[int] | None = None,
        *,
        metadata_filter: str | None = None,
        sort: str | Sequence[str] | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[Metadata]:
        """Metadata of the given nodes (all the token may see when None) matching the
        filter, e.g. ``(&(/m/hardware=raspberry-pi)(t=special))``."""
        params: builtins.list[wire.Param] = []
        if node_ids is not None:
            params.append(("nodeIds", ",".join(map(str, wire.id_list(node_ids, "node_ids")))))
        if metadata_filter is not None:
            parse_filter(metadata_filter)
            params.append(("metadataFilter", metadata_filter))
        params += wire.sort_params(sort, SORTS["node_metadata"])
        return self._requester.items(NODE_METADATA, Metadata, params, page_size=page_size)

    async def list(
        self,
        node_ids: int | Iterable[int] | None = None,
        *,
        metadata_filter: str | None = None,
        sort: str | Sequence[str] | None = None,
    ) -> builtins.list[Metadata]:
        return [m async for m in self.iter(node_ids, metadata_filter=metadata_filter, sort=sort)]

    async def get(self, node_id: int) -> Metadata | None:
        """The node's metadata, or None when it has none."""
        path, _ = self._where(node_id)
        return await self._requester.call("GET", path, first_decoder(self._converter, Metadata))

    async def add(self, node_id: int, document: MetadataDocument) -> None:
        """Merge ``document`` into the node's metadata (created when absent)."""
        await self._merge(self._where(node_id), document)

    async def store(self, node_id: int, document: MetadataDocument) -> None:
        """Replace the node's metadata with ``document``."""
        await self._replace(self._where(node_id), document)

    async def delete(self, node_id: int) -> None:
        await self._remove(self._where(node_id))


class UserMetadataAPI(_MetadataDocument):
    """``/users/meta``: the token's user's metadata document."""

    _WHERE: Final[tuple[str, builtins.list[wire.Param]]] = (USER_METADATA, [])

    async def get(self) -> Metadata | None:
        return await self._requester.call(
            "GET", USER_METADATA, first_decoder(self._converter, Metadata)
        )

    async def add(self, document: MetadataDocument) -> None:
        await self._merge(self._WHERE, document)

    async def store(self, document: MetadataDocument) -> None:
        await self._replace(self._WHERE, document)

    async def delete(self) -> None:
        await self._remove(self._WHERE)


class SourceMetadataAPI(_MetadataDocument):
    """Datum source metadata (owner: a node) or location source metadata (owner: a
    location): ``add``, ``store``, ``delete``. The source id travels as a query parameter,
    since it usually contains ``/``."""

    def __init__(self, requester: Requester, prefix: str, owner: str) -> None:
        super().__init__(requester)
        self._prefix = prefix
        self._owner = owner

    def _where(self, owner_id: int, source_id: str) -> tuple[str, builtins.list[wire.Param]]:
        path = f"{self._prefix}/{check_id(owner_id, self._owner)}"
        return path, wire.source_params([source_id], "source_id")

    async def add(self, owner_id: int, source_id: str, document: MetadataDocument) -> None:
        await self._merge(self._where(owner_id, source_id), document)

    async def store(self, owner_id: int, source_id: str, document: MetadataDocument) -> None:
        await self._replace(self._where(owner_id, source_id), document)

    async def delete(self, owner_id: int, source_id: str) -> None:
        await self._remove(self._where(owner_id, source_id))
