"""User events: the event log of the account, with search filters."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any

from locus_async.errors import (
    UsageError,
)
from locus_async.solarnetwork._core import wire
from locus_async.solarnetwork._core.endpoints import USER_EVENTS
from locus_async.solarnetwork._core.envelope import batch_decoder
from locus_async.solarnetwork.filters import parse_filter
from locus_async.solarnetwork.models import (
    UserEvent,
)
from locus_async.solarnetwork.resources._base import Resource

__all__ = ["EventsAPI"]


class EventsAPI(Resource):
    """``/user/events``: the account's application events, oldest first, paged."""

    def iter(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        tags: str | Iterable[str] | None = None,
        search_filter: str | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[UserEvent]:
        """Events matching all ``tags`` and the ``search_filter`` (dotted keys:
        ``(&(cp=1234ZY)(options.duration<=60))``). Pages until a short one."""
        params: builtins.list[wire.Param] = []
        if start is not None:
            params.append(("startDate", wire.utc_instant(start, "start")))
        if end is not None:
            params.append(("endDate", wire.utc_instant(end, "end")))
        if tags is not None:
            items = [tags] if isinstance(tags, str) else list(tags)
            if not items or not all(isinstance(t, str) and t for t in items):
                raise UsageError("tags must be non-empty strings")
            params += [("tags", t) for t in items]
        if search_filter is not None:
            parse_filter(search_filter)
            params.append(("searchFilter", search_filter))
        wire.page_params(page_size, 0, count=False)
        return self._batches(params, page_size)

    async def _batches(
        self, params: builtins.list[wire.Param], page_size: int
    ) -> AsyncIterator[UserEvent]:
        """One request per batch: the reference documents the answer both as a flat list
        (without totals) and as a paged object; either is read, and the next offset is
        the count sent so far."""
        decode = batch_decoder(self._converter, UserEvent)
        offset = largest = 0
        while True:
            batch, sent, total = await self._requester.call(
                "GET",
                USER_EVENTS,
                decode,
                params=[*params, ("max", str(page_size)), ("offset", str(offset))],
            )
            for event in batch:
                yield event
            offset += sent
            if not wire.more_pages(
                got=sent, asked=page_size, offset=offset, total=total, largest=largest
            ):
                return
            largest = max(largest, sent)

    async def list(self, /, **kwargs: Any) -> builtins.list[UserEvent]:
        return [e async for e in self.iter(**kwargs)]
