"""Datum records of the account: auxiliary records, stale aggregates, stream metadata."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from typing import Any, Literal

import orjson

from locus_async._core.checks import check_flag, check_id
from locus_async.errors import (
    InvalidArgumentType,
    UsageError,
)
from locus_async.solarnetwork._core import wire
from locus_async.solarnetwork._core.endpoints import (
    DATUM_AUXILIARY,
    DATUM_AUXILIARY_MOVE,
    SORTS,
    STALE_AGGREGATES,
    STALE_KINDS,
    stream_metadata,
)
from locus_async.solarnetwork._core.envelope import (
    bool_decoder,
    first_decoder,
    object_decoder,
    success_decoder,
)
from locus_async.solarnetwork.models import (
    DatumAuxiliary,
    StaleAggregate,
    StreamMetadata,
    StreamMetadataIds,
)
from locus_async.solarnetwork.resources._base import Resource

__all__ = ["DatumAuxiliaryAPI", "StaleAggregatesAPI", "StreamsAPI"]


class DatumAuxiliaryAPI(Resource):
    """``/datum/auxiliary``: list (paged), store, move, get, delete."""

    def iter(
        self,
        node_ids: int | Iterable[int] | None = None,
        *,
        source_ids: str | Iterable[str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        sort: str | Sequence[str] | None = None,
        page_size: int = 100,
        without_total_count: bool = False,
    ) -> AsyncIterator[DatumAuxiliary]:
        """Records of ``node_ids`` (default: every node the token may see), paged.
        ``without_total_count`` sends ``withoutTotalResultsCount=true``: the server skips
        counting, and paging ends at a short page instead of at the total."""
        check_flag(without_total_count, "without_total_count")
        params = wire.node_params(node_ids) if node_ids is not None else []
        if source_ids is not None:
            params += wire.source_params(source_ids)
        if start is not None:
            params.append(("startDate", wire.utc_instant(start, "start")))
        if end is not None:
            params.append(("endDate", wire.utc_instant(end, "end")))
        params += wire.sort_params(sort, SORTS["datum_auxiliary"])
        return self._requester.items(
            DATUM_AUXILIARY,
            DatumAuxiliary,
            params,
            page_size=page_size,
            count=not without_total_count,
        )

    async def list(
        self, /, node_ids: int | Iterable[int] | None = None, **kwargs: Any
    ) -> builtins.list[DatumAuxiliary]:
        return [r async for r in self.iter(node_ids, **kwargs)]

    async def store(self, record: DatumAuxiliary) -> None:
        """Add or replace the record with the same (type, node, created, source)."""
        body = wire.datum_auxiliary_wire(record, epoch=False)
        if "final" not in body or "start" not in body:
            raise UsageError("a datum auxiliary record needs both final and start samples")
        await self._requester.call(
            "POST", DATUM_AUXILIARY, success_decoder, json=orjson.dumps(body), retry_safe=True
        )

    async def move(
        self,
        *,
        type: str,
        node_id: int,
        created: datetime,
        source_id: str,
        to: DatumAuxiliary,
    ) -> bool:
        """Move the record at (type, node, created, source) to ``to``'s key, replacing its
        values. False when no record had the old key."""
        body = {
            "from": wire.datum_auxiliary_key(type, node_id, created, source_id, epoch=True),
            "to": wire.datum_auxiliary_wire(to, epoch=True),
        }
        return await self._requester.call(
            "POST", DATUM_AUXILIARY_MOVE, bool_decoder, json=orjson.dumps(body)
        )

    def _key_params(
        self, type_: str, node_id: int, created: datetime, source_id: str
    ) -> builtins.list[wire.Param]:
        key = wire.datum_auxiliary_key(type_, node_id, created, source_id, epoch=False)
        return [
            ("type", key["type"]),
            ("nodeId", str(key["nodeId"])),
            ("date", key["created"]),
            ("sourceId", key["sourceId"]),
        ]

    async def get(
        self,
        *,
        type: str,
        node_id: int,
        created: datetime,
        source_id: str,
    ) -> DatumAuxiliary:
        return await self._requester.call(
            "GET",
            DATUM_AUXILIARY,
            object_decoder(self._converter, DatumAuxiliary),
            params=self._key_params(type, node_id, created, source_id),
        )

    async def delete(
        self,
        *,
        type: str,
        node_id: int,
        created: datetime,
        source_id: str,
    ) -> None:
        await self._requester.call(
            "DELETE",
            DATUM_AUXILIARY,
            success_decoder,
            params=self._key_params(type, node_id, created, source_id),
        )


class StaleAggregatesAPI(Resource):
    """``/datum/maint/agg/stale``: list (paged) and mark."""

    def iter(
        self,
        node_ids: int | Iterable[int],
        *,
        source_ids: str | Iterable[str] | None = None,
        kind: Literal["h", "d", "m"] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        sort: str | Sequence[str] | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[StaleAggregate]:
        params = wire.node_params(node_ids)
        if source_ids is not None:
            params += wire.source_params(source_ids)
        if kind is not None:
            if kind not in STALE_KINDS:
                raise UsageError(f"kind must be one of h, d, m, got {kind!r}")
            params.append(("type", kind))
        if start is not None:
            params.append(("startDate", wire.utc_minute(start, "start")))
        if end is not None:
            params.append(("endDate", wire.utc_minute(end, "end")))
        params += wire.sort_params(sort, SORTS["stale"])
        return self._requester.items(STALE_AGGREGATES, StaleAggregate, params, page_size=page_size)

    async def list(
        self, /, node_ids: int | Iterable[int], **kwargs: Any
    ) -> builtins.list[StaleAggregate]:
        return [s async for s in self.iter(node_ids, **kwargs)]

    async def mark(
        self,
        node_ids: int | Iterable[int],
        source_ids: str | Iterable[str],
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        local_start: datetime | None = None,
        local_end: datetime | None = None,
    ) -> None:
        """Mark aggregates stale so they are recomputed: a UTC range (``start``/``end``,
        aware) or a node-local one (``local_start``/``local_end``, naive). Safe to repeat."""
        form = wire.node_params(node_ids) + wire.source_params(source_ids)
        if (start is None) != (end is None) or (local_start is None) != (local_end is None):
            raise UsageError("give both ends of the range")
        if (start is None) == (local_start is None):
            raise UsageError("give start/end (UTC) or local_start/local_end, one pair")
        if start is not None:
            form += [
                ("startDate", wire.utc_minute(start, "start")),
                ("endDate", wire.utc_minute(end, "end")),
            ]
        else:
            form += [
                ("localStartDate", wire.local_minute(local_start, "local_start")),
                ("localEndDate", wire.local_minute(local_end, "local_end")),
            ]
        await self._requester.call(
            "POST", STALE_AGGREGATES, success_decoder, form=form, retry_safe=True
        )


def _stream_id(value: object) -> str:
    if not isinstance(value, str) or not value or "/" in value:
        raise UsageError(f"stream_id must be a stream UUID string, got {value!r}")
    return value


def _names(value: object, name: str) -> str:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidArgumentType(f"{name} must be a list of property names")
    items = list(value)
    if not items or not all(isinstance(v, str) and v and "," not in v for v in items):
        raise UsageError(f"{name} must be non-empty property names without commas")
    return ",".join(items)


class StreamsAPI(Resource):
    """``/datum/stream/meta/node/{streamId}``: view, update ids, update names."""

    async def get(self, stream_id: str) -> StreamMetadata:
        return await self._requester.call(
            "GET",
            stream_metadata(_stream_id(stream_id)),
            object_decoder(self._converter, StreamMetadata),
        )

    async def update_ids(
        self, stream_id: str, *, node_id: int | None = None, source_id: str | None = None
    ) -> StreamMetadataIds:
        """Move the stream to another node and/or source id (omitted ones stay)."""
        params: builtins.list[wire.Param] = []
        if node_id is not None:
            params.append(("nodeId", str(check_id(node_id, "node_id"))))
        if source_id is not None:
            params += wire.source_params([source_id], "source_id")
        if not params:
            raise UsageError("give node_id, source_id or both")
        return await self._requester.call(
            "PATCH",
            stream_metadata(_stream_id(stream_id)),
            object_decoder(self._converter, StreamMetadataIds),
            params=params,
            retry_safe=True,
        )

    async def update(
        self,
        stream_id: str,
        *,
        node_id: int | None = None,
        source_id: str | None = None,
        instantaneous: Sequence[str] | None = None,
        accumulating: Sequence[str] | None = None,
        status: Sequence[str] | None = None,
    ) -> StreamMetadata | None:
        """Rename or add property names (lists may not shrink), or move the stream. None
        when the server would not update it (for example a list shorter than the stream's)."""
        form: builtins.list[wire.Param] = []
        if node_id is not None:
            form.append(("nodeId", str(check_id(node_id, "node_id"))))
        if source_id is not None:
            form += wire.source_params([source_id], "source_id")
        for key, value in (("i", instantaneous), ("a", accumulating), ("s", status)):
            if value is not None:
                form.append((key, _names(value, key)))
        if not form:
            raise UsageError("nothing to update")
        return await self._requester.call(
            "POST",
            stream_metadata(_stream_id(stream_id)),
            first_decoder(self._converter, StreamMetadata),
            form=form,
            retry_safe=True,
        )
