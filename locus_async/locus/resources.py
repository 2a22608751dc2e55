"""Locus v3 endpoints grouped by resource: ``partners``, ``clients``, ``sites`` and
``components``, each method checking its arguments before any I/O and sending through the
client's ``Requester``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, Final, TypeVar

from locus_async._shell.fanout import run_bounded
from locus_async._shell.limiter import Priority
from locus_async.errors import InvalidArgumentType, UsageError
from locus_async.locus._core.endpoints import API_PREFIX, entity_path
from locus_async.locus._core.query import (
    ALERT_PRIORITIES,
    ALERT_STATUSES,
    OPEN_DURING_MAX,
    UPDATED_SINCE_MAX_AGE,
    DataQuery,
    alert_types_param,
    check_choice,
    check_id,
    prepare_data_query,
)
from locus_async.locus._core.windows import (
    Window,
    local_string,
    plan_calendar_windows,
    plan_spans,
    resolve_tz,
    to_instant,
)
from locus_async.locus.models import (
    Alert,
    BaseField,
    Client,
    Component,
    Granularity,
    InstallInfo,
    ModelSettings,
    Site,
)
from locus_async.locus.requester import Requester
from locus_async.locus.timeseries import TimeSeries, WindowStream

__all__ = ["ClientsAPI", "ComponentsAPI", "PartnersAPI", "SitesAPI"]

T = TypeVar("T")

#: Bulk data: monthly only, at most one year per request.
_BULK_MONTHS: Final = 12


def _alert_params(
    tz: object,
    updated_since: object,
    alert_types: object,
    status: object,
    priority: object,
) -> tuple[Any, list[tuple[str, str]], int | None]:
    zone = resolve_tz(tz)
    params: list[tuple[str, str]] = [("tz", zone.key)]
    since: int | None = None
    if updated_since is not None:
        since, _ = to_instant(updated_since, zone, name="updated_since")
        params.append(("updatedSince", local_string(since, zone)))
    if alert_types is not None:
        params.append(("alertType", alert_types_param(alert_types)))
    if status is not None:
        params.append(("status", check_choice(status, "status", ALERT_STATUSES)))
    if priority is not None:
        params.append(("priority", check_choice(priority, "priority", ALERT_PRIORITIES)))
    return zone, params, since


def _open_during(value: object, zone: Any) -> tuple[int, int]:
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise InvalidArgumentType("open_during must be a (start, end) pair")
    start, start_aware = to_instant(value[0], zone, name="open_during start")
    end, end_aware = to_instant(value[1], zone, name="open_during end")
    if start_aware != end_aware:
        raise UsageError("open_during mixes a naive and an aware datetime")
    if start >= end:
        raise UsageError("open_during start must be before its end")
    return start, end


def _merge_alerts(batches: list[list[Alert]]) -> list[Alert]:
    """One alert per id (the most recently updated), in order of first appearance."""
    merged: dict[int, Alert] = {}
    for batch in batches:
        for alert in batch:
            seen = merged.get(alert.id)
            # An alert whose update time was unreadable counts as updated when it started.
            if seen is None or (alert.updated or alert.start) > (seen.updated or seen.start):
                merged[alert.id] = alert
    return list(merged.values())


class _Resource:
    kind: str = ""

    def __init__(self, requester: Requester) -> None:
        self._requester = requester

    def _path(self, entity_id: object, name: str, endpoint: str = "") -> str:
        return entity_path(self.kind, check_id(entity_id, name), endpoint)


class PartnersAPI(_Resource):
    """``/v3/partners/{id}/...``: a partner's sites, clients, components, alerts, bulk data.

    ``partner_id`` may be left out when the sign-in names the partner (a Cognito
    IdToken's ``custom:partnerId``): the signed-in user's partner is used.
    """

    kind = "partners"

    def __init__(
        self, requester: Requester, signed_in: Callable[[], Awaitable[int]] | None = None
    ) -> None:
        super().__init__(requester)
        self._signed_in = signed_in

    async def _partner_path(self, partner_id: int | None, endpoint: str) -> str:
        if partner_id is None:
            if self._signed_in is None:
                raise UsageError("partner_id is needed")
            partner_id = await self._signed_in()
        return self._path(partner_id, "partner_id", endpoint)

    async def sites(self, partner_id: int | None = None) -> list[Site]:
        return await self._requester.get_list(await self._partner_path(partner_id, "/sites"), Site)

    async def clients(self, partner_id: int | None = None) -> list[Client]:
        path = await self._partner_path(partner_id, "/clients")
        return await self._requester.get_list(path, Client)

    async def components(
        self, partner_id: int | None = None, *, node_id: str | None = None, notes: str | None = None
    ) -> list[Component]:
        """Components, optionally by ``node_id`` or ``notes`` (``%`` is a wildcard)."""
        params: list[tuple[str, str]] = []
        for name, value in (("nodeId", node_id), ("notes", notes)):
            if value is not None:
                if not isinstance(value, str) or not value:
                    raise UsageError(
                        f"{'node_id' if name == 'nodeId' else name} must be a non-empty string"
                    )
                params.append((name, value))
        path = await self._partner_path(partner_id, "/components")
        return await self._requester.get_list(path, Component, tuple(params))

    async def alerts(
        self,
        partner_id: int | None = None,
        *,
        tz: str = "UTC",
        updated_since: datetime | str | None = None,
        open_during: tuple[datetime | str, datetime | str] | None = None,
        alert_types: str | list[str] | None = None,
        status: str | None = None,
        priority: str | list[str] | None = None,
    ) -> list[Alert]:
        """Alerts of every site of the partner.

        The API needs ``updated_since`` (at most 7 days ago: older raises UsageError) or an
        ``open_during`` window; windows longer than 31 days are split into several requests
        whose alerts are merged, one per id.
        """
        path = await self._partner_path(partner_id, "/alerts")
        zone, params, since = _alert_params(tz, updated_since, alert_types, status, priority)
        if since is None and open_during is None:
            raise UsageError(
                "partner alerts need updated_since (at most 7 days ago) or open_during=(start, end)"
            )
        if since is not None:
            age = self._requester.now() - since
            if age > UPDATED_SINCE_MAX_AGE.total_seconds():
                raise UsageError(
                    f"updated_since {local_string(since, zone)} is {age / 86400:.1f} days ago; the "
                    "API allows at most 7 days for partner alerts (use open_during for older ones)"
                )
        if open_during is None:
            return await self._requester.get_list(path, Alert, tuple(params))
        start, end = _open_during(open_during, zone)
        spans = plan_spans(start, end, zone, OPEN_DURING_MAX)
        batches: list[list[Alert]] = [[] for _ in spans]

        async def job(index: int) -> None:
            span = spans[index]
            extra = (("openDuringMin", span.start_param), ("openDuringMax", span.end_param))
            batches[index] = await self._requester.get_list(path, Alert, (*params, *extra))

        await run_bounded(len(spans), self._requester.limiter.capacity + 1, job)
        return _merge_alerts(batches)

    async def bulk_data_available(self, partner_id: int | None = None) -> list[BaseField]:
        """Fields the bulk (all sites) data call supports."""
        path = await self._partner_path(partner_id, "/sites/dataavailable")
        return await self._requester.get_list(path, BaseField)

    async def bulk_data(
        self,
        partner_id: int | None = None,
        *,
        fields: list[str] | str,
        start: datetime | str,
        end: datetime | str,
        tz: str,
        gran: str = "monthly",
        priority: Priority = Priority.INTERACTIVE,
    ) -> TimeSeries:
        """Monthly data of every site of the partner; ranges over a year are split by year."""
        query = prepare_data_query(fields=fields, start=start, end=end, tz=tz, gran=gran)
        if query.gran is not Granularity.MONTHLY:
            raise UsageError(f"bulk data is monthly only, not {query.gran.value!r}")
        assert query.start is not None
        assert query.end is not None
        windows = plan_calendar_windows(query.start, query.end, query.tz, query.gran, _BULK_MONTHS)
        path = API_PREFIX + await self._partner_path(partner_id, "/sites/data")
        return await self._requester.fetch_series(path, query, windows, priority=priority)


class ClientsAPI(_Resource):
    """``/v3/clients/{id}/...``."""

    kind = "clients"

    async def get(self, client_id: int) -> Client:
        return await self._requester.get_one(self._path(client_id, "client_id"), Client)

    async def sites(self, client_id: int) -> list[Site]:
        return await self._requester.get_list(self._path(client_id, "client_id", "/sites"), Site)

    async def components(self, client_id: int) -> list[Component]:
        path = self._path(client_id, "client_id", "/components")
        return await self._requester.get_list(path, Component)


class _DataResource(_Resource):
    """Shared by sites and components: dataavailable, alerts, data."""

    id_name = "id"
    allow_latest = True

    async def data_available(self, entity_id: int, *, refresh: bool = False) -> list[BaseField]:
        """What data the entity has (cached per client; ``refresh=True`` asks again)."""
        return await self._requester.data_available(
            self.kind, check_id(entity_id, self.id_name), refresh=refresh
        )

    async def alerts(
        self,
        entity_id: int,
        *,
        tz: str = "UTC",
        updated_since: datetime | str | None = None,
        open_during: tuple[datetime | str, datetime | str] | None = None,
        alert_types: str | list[str] | None = None,
        status: str | None = None,
        priority: str | list[str] | None = None,
    ) -> list[Alert]:
        """Alerts, optionally filtered (no range limit at this level)."""
        path = self._path(entity_id, self.id_name, "/alerts")
        zone, params, _ = _alert_params(tz, updated_since, alert_types, status, priority)
        if open_during is not None:
            start, end = _open_during(open_during, zone)
            params += [
                ("openDuringMin", local_string(start, zone)),
                ("openDuringMax", local_string(end, zone)),
            ]
        return await self._requester.get_list(path, Alert, tuple(params))

    def _query(
        self,
        *,
        fields: object,
        start: object,
        end: object,
        tz: object,
        gran: object,
        field_params: Mapping[str, object] | None,
    ) -> DataQuery:
        return prepare_data_query(
            fields=fields,
            start=start,
            end=end,
            tz=tz,
            gran=gran,
            field_params=field_params,
            allow_latest=self.allow_latest,
        )

    async def data(
        self,
        entity_id: int,
        *,
        fields: list[str] | str,
        tz: str,
        gran: Granularity | str,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        field_params: Mapping[str, object] | None = None,
        validate: bool | None = None,
        priority: Priority = Priority.INTERACTIVE,
    ) -> TimeSeries:
        """Time series over ``[start, end)`` in as few requests as the limits allow.

        ``start``/``end``: datetimes (naive = wall time in ``tz``), dates or ISO strings.
        ``gran``: ``latest`` (no range), ``1min`` ... ``yearly``. ``validate`` checks the
        fields against ``dataavailable`` first (default: the client's ``validate_fields``).
        """
        ident = check_id(entity_id, self.id_name)
        query = self._query(
            fields=fields, start=start, end=end, tz=tz, gran=gran, field_params=field_params
        )
        return await self._requester.series(
            kind=self.kind, entity_id=ident, query=query, validate=validate, priority=priority
        )

    def iter_data(
        self,
        entity_id: int,
        *,
        fields: list[str] | str,
        tz: str,
        gran: Granularity | str,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        field_params: Mapping[str, object] | None = None,
        validate: bool | None = None,
        priority: Priority = Priority.INTERACTIVE,
    ) -> WindowStream:
        """The same data one window at a time, in order, with bounded memory.

        Arguments are checked now (before any I/O); requests start on the first iteration.
        ``async for part in ...`` fetches up to the allowance's worth of windows per step;
        ``async with ... as stream: async for part in stream`` also prefetches while you
        work on a window, keeping the slot busy (see ``WindowStream``).
        """
        ident = check_id(entity_id, self.id_name)
        query = self._query(
            fields=fields, start=start, end=end, tz=tz, gran=gran, field_params=field_params
        )
        return self._requester.iter_data(
            kind=self.kind, entity_id=ident, query=query, validate=validate, priority=priority
        )

    def plan(
        self,
        *,
        fields: list[str] | str,
        tz: str,
        gran: Granularity | str,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
    ) -> list[Window] | None:
        """The windows a ``data`` call with these arguments would request."""
        return self._requester.windows(
            self._query(fields=fields, start=start, end=end, tz=tz, gran=gran, field_params=None)
        )


class SitesAPI(_DataResource):
    """``/v3/sites/{id}/...``."""

    kind = "sites"
    id_name = "site_id"
    allow_latest = False

    async def get(self, site_id: int) -> Site:
        return await self._requester.get_one(self._path(site_id, "site_id"), Site)

    async def components(self, site_id: int) -> list[Component]:
        return await self._requester.get_list(
            self._path(site_id, "site_id", "/components"), Component
        )

    async def install_info(self, site_id: int) -> InstallInfo:
        return await self._requester.get_one(
            self._path(site_id, "site_id", "/installinfo"), InstallInfo
        )

    async def model_settings(self, site_id: int) -> ModelSettings:
        path = self._path(site_id, "site_id", "/modelsettings")
        return await self._requester.get_one(path, ModelSettings)


class ComponentsAPI(_DataResource):
    """``/v3/components/{id}/...``."""

    kind = "components"
    id_name = "component_id"

    async def get(self, component_id: int) -> Component:
        return await self._requester.get_one(self._path(component_id, "component_id"), Component)
