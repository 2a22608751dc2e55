"""What every Locus resource sends its requests through: the narrow interface between
the resources and the shell.

Owns: GETs under ``/v3`` decoded into models, the ``dataavailable`` cache, field checks,
planning windows with the client's limits, and fetching time series (all windows, one
window, or a stream). Must never: know a resource, or hold a secret.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

import anyio

from locus_async._core.http import Request, Response
from locus_async._shell.limiter import Limiter, Priority
from locus_async._shell.session import Session
from locus_async.errors import UsageError
from locus_async.locus._core.endpoints import (
    API_PREFIX,
    data_path,
    decoder,
    list_decoder,
)
from locus_async.locus._core.query import DataQuery
from locus_async.locus._core.windows import Window, plan_windows
from locus_async.locus.models import BaseField, Granularity
from locus_async.locus.timeseries import TimeSeries, WindowStream, fetch_series

__all__ = ["Requester", "check_fields_available", "fields_offered"]

T = TypeVar("T")


class Requester:
    """Sends Locus requests for one client: ``limits`` per granularity, and whether data
    calls check their fields against ``dataavailable`` by default."""

    def __init__(
        self,
        session: Session,
        converter: Any,
        *,
        limits: Mapping[Granularity, timedelta | None],
        validate_fields: bool,
    ) -> None:
        self._session = session
        self.converter = converter
        self.limits = limits
        self.validate_fields = validate_fields
        self._available: dict[tuple[str, int], list[BaseField]] = {}
        self._available_lock: anyio.Lock | None = None

    @property
    def limiter(self) -> Limiter:
        return self._session.limiter

    def now(self) -> float:
        """The client's wall clock, unix seconds (injectable)."""
        return self._session.wall()

    async def get(
        self,
        path: str,
        decode: Callable[[Response], T],
        params: tuple[tuple[str, str], ...] = (),
        priority: Priority = Priority.INTERACTIVE,
    ) -> T:
        return await self._session.call(
            Request("GET", API_PREFIX + path, params), decode, priority=priority
        )

    async def get_one(self, path: str, cls: type[T]) -> T:
        return await self.get(path, decoder(self.converter, cls))

    async def get_list(
        self, path: str, cls: type[T], params: tuple[tuple[str, str], ...] = ()
    ) -> list[T]:
        return await self.get(path, list_decoder(self.converter, cls), params)

    async def data_available(
        self, kind: str, entity_id: int, *, refresh: bool = False
    ) -> list[BaseField]:
        key = (kind, entity_id)
        if not refresh and key in self._available:
            return self._available[key]
        if self._available_lock is None:
            self._available_lock = anyio.Lock()
        async with self._available_lock:
            if refresh or key not in self._available:
                self._available[key] = await self.get_list(
                    f"/{kind}/{entity_id}/dataavailable", BaseField
                )
        return self._available[key]

    async def check_fields(self, kind: str, entity_id: int, query: DataQuery) -> None:
        available = await self.data_available(kind, entity_id)
        check_fields_available(available, query, f"{kind[:-1]} {entity_id}")

    def windows(self, query: DataQuery) -> list[Window] | None:
        """The windows a data call for ``query`` requests (``None``: one latest request)."""
        if query.gran is Granularity.LATEST:
            return None
        assert query.start is not None
        assert query.end is not None
        return plan_windows(query.start, query.end, query.tz, query.gran, self.limits[query.gran])

    async def series(
        self,
        *,
        kind: str,
        entity_id: int,
        query: DataQuery,
        validate: bool | None,
        priority: Priority,
    ) -> TimeSeries:
        if self.validate_fields if validate is None else validate:
            await self.check_fields(kind, entity_id, query)
        return await fetch_series(
            self._session,
            data_path(kind, entity_id),
            query,
            self.windows(query),
            priority=priority,
        )

    def iter_data(
        self,
        *,
        kind: str,
        entity_id: int,
        query: DataQuery,
        validate: bool | None,
        priority: Priority,
    ) -> WindowStream:
        check = self.validate_fields if validate is None else validate

        async def before() -> None:
            if check:
                await self.check_fields(kind, entity_id, query)

        return WindowStream(
            self._session,
            data_path(kind, entity_id),
            query,
            self.windows(query),
            priority=priority,
            before=before,
        )

    async def fetch_series(
        self,
        path: str,
        query: DataQuery,
        windows: list[Window],
        *,
        priority: Priority = Priority.INTERACTIVE,
    ) -> TimeSeries:
        """``windows`` of ``path`` (a data path under ``/v3``), fetched concurrently."""
        return await fetch_series(self._session, path, query, windows, priority=priority)


def fields_offered(available: list[BaseField], gran: str) -> set[str]:
    """The short field names ``dataavailable`` offers at granularity ``gran``."""
    return {name for base in available if gran in base.granularities for name in base.short_names}


def check_fields_available(available: list[BaseField], query: DataQuery, what: str) -> None:
    """UsageError naming each requested field (or the granularity) the entity does not
    offer, and each field parameter missing, not allowed, or taken by no requested field
    (``fieldParameters`` of ``dataavailable``, as the reference describes them)."""
    offered: dict[str, BaseField] = {}
    loose: dict[str, BaseField] = {}
    for base in available:
        for name in base.short_names:
            offered[name] = base
        if not base.aggregations:
            loose[base.base_field] = base
    needed: dict[str, tuple[str, tuple[str, ...]]] = {}
    for name in query.fields:
        found = offered.get(name)
        if found is None:
            prefix = name.rsplit("_", 1)[0]
            found = loose.get(prefix, loose.get(name))
        if found is None:
            valid = ", ".join(sorted(offered)) or "none"
            raise UsageError(f"field {name!r} is not available for {what}; valid fields: {valid}")
        if query.gran.value not in found.granularities:
            raise UsageError(
                f"granularity {query.gran.value!r} is not available for field {name!r} of {what}; "
                f"valid: {', '.join(found.granularities)}"
            )
        for parameter in found.field_parameters:
            needed.setdefault(parameter.param, (name, parameter.values))
    given = dict(query.params)
    for param, (name, values) in needed.items():
        choices = ", ".join(values) or "any value"
        if param not in given:
            raise UsageError(
                f"field {name!r} of {what} needs the field parameter {param!r} "
                f"(one of: {choices}); pass field_params={{{param!r}: ...}}"
            )
        if values and given[param] not in values:
            raise UsageError(
                f"field parameter {param}={given[param]!r} is not allowed for {name!r} of "
                f"{what}; one of: {choices}"
            )
    unused = sorted(set(given) - set(needed))
    if unused:
        raise UsageError(
            f"field parameter {unused[0]!r} is taken by none of the requested fields of {what} "
            f"({', '.join(query.fields)})"
        )
