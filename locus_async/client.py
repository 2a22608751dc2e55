"""``LocusClient``: every Locus v3 endpoint, typed, on the provider-neutral shell.

Owns: the public methods grouped by resource (``partners``, ``clients``, ``sites``,
``components``), argument checking before any I/O, and wiring the shell together (transport,
limiter, token provider, retry policy, converter). Must never: import httpx for sending or
parse bodies itself (``_core`` does), or put a secret in a repr, a log line or an error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar, Unpack

import anyio

from ._core.checks import check_flag
from ._core.converter import make_converter
from ._core.decipher import decipher_locus
from ._core.http import Request, Response, api_root
from ._core.locus import API_PREFIX, DATA_KINDS, data_path, decoder, list_decoder
from ._core.query import (
    ALERT_PRIORITIES,
    ALERT_STATUSES,
    OPEN_DURING_MAX,
    UPDATED_SINCE_MAX_AGE,
    DataQuery,
    alert_types_param,
    check_choice,
    check_id,
    merge_limits,
    prepare_data_query,
)
from ._core.windows import (
    Window,
    local_string,
    plan_calendar_windows,
    plan_spans,
    plan_windows,
    resolve_tz,
    to_instant,
)
from ._limiter import Priority
from ._oauth import BearerToken, ClientCredentialsGrant, PasswordGrant, TokenProvider
from ._shell import ShellClient, ShellOptions, build_session
from .errors import InvalidArgumentType, UsageError
from .models import (
    Alert,
    BaseField,
    Client,
    Component,
    Granularity,
    InstallInfo,
    ModelSettings,
    Site,
)
from .timeseries import TimeSeries, WindowStream, fetch_series, fetch_window, run_bounded

__all__ = ["DEFAULT_BASE_URL", "LocusClient"]

DEFAULT_BASE_URL: Final = "https://api.locusenergy.com"

T = TypeVar("T")

#: Bulk data: monthly only, at most one year per request.
_BULK_MONTHS: Final = 12


class LocusClient(ShellClient):
    """An async client for the Locus Energy v3 API, safe to share between tasks.

    Every request goes through one limiter (default: one request on the wire at a time,
    the API's default allowance), carries a token that is refreshed before it expires, and
    is retried only when that is safe. Use it as ``async with LocusClient(...) as c:`` or
    call ``await c.aclose()`` yourself.

    Arguments: ``auth`` a token provider (``PasswordGrant``, ``ClientCredentialsGrant``,
    ``RefreshTokenGrant``, ``BearerToken``); ``base_url`` (``/v3`` optional);
    ``max_concurrency`` the account's allowance, or ``limiter`` to share one between clients
    or processes; ``retry`` a RetryPolicy; ``timeouts``; ``limits`` overrides of the
    per-granularity time-range limits (``{"5min": timedelta(days=7)}``); ``validate_fields``
    checks fields against ``dataavailable`` (cached) before data requests; ``strict`` rejects
    unknown response fields (for tests against the simulator); ``transport`` an httpx
    transport (for example the simulator's in-process one); ``allow_insecure_http`` permits
    ``http://`` to non-loopback hosts.
    """

    def __init__(
        self,
        *,
        auth: TokenProvider,
        base_url: str = DEFAULT_BASE_URL,
        limits: Mapping[Granularity | str, timedelta | None] | None = None,
        validate_fields: bool = False,
        strict: bool = False,
        allow_insecure_http: bool = False,
        **shell: Unpack[ShellOptions],
    ) -> None:
        if not isinstance(auth, TokenProvider):
            raise InvalidArgumentType(
                "auth must be a PasswordGrant, ClientCredentialsGrant, RefreshTokenGrant or "
                f"BearerToken, not {type(auth).__name__}"
            )
        check_flag(allow_insecure_http, "allow_insecure_http")
        # with or without the /v3 suffix
        self.base_url = api_root(base_url, [API_PREFIX], allow_insecure_http=allow_insecure_http)
        self.limits = merge_limits(limits)
        self.validate_fields = check_flag(validate_fields, "validate_fields")
        check_flag(strict, "strict")
        self._auth = auth
        self._converter = make_converter(strict=strict)
        self._session = build_session(
            "LocusClient",
            base_url=self.base_url,
            authenticator=auth,
            decipher=lambda response, now, secrets: decipher_locus(
                response, now=now, secrets=secrets
            ),
            converter=self._converter,
            options=shell,
        )
        self._available: dict[tuple[str, int], list[BaseField]] = {}
        self._available_lock: anyio.Lock | None = None
        self.partners = PartnersAPI(self)
        self.clients = ClientsAPI(self)
        self.sites = SitesAPI(self)
        self.components = ComponentsAPI(self)

    def __repr__(self) -> str:
        return (
            f"LocusClient(base_url={self.base_url!r}, auth={self._auth!r}, "
            f"limiter={self._session.limiter!r})"
        )

    # -- construction helpers ---------------------------------------------------------

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> LocusClient:
        """A client configured from ``LOCUS_*`` environment variables.

        ``LOCUS_ACCESS_TOKEN`` (a bearer token) wins; otherwise ``LOCUS_CLIENT_ID`` and
        ``LOCUS_CLIENT_SECRET`` with ``LOCUS_USERNAME`` and ``LOCUS_PASSWORD`` (password
        grant) or without them (client credentials). ``LOCUS_BASE_URL`` sets the host.
        Keyword arguments are passed to the constructor and win over the environment.
        """
        return cls._configured(
            env, kwargs, credential="auth", read=auth_from_env, base_url_variable="LOCUS_BASE_URL"
        )

    async def authenticate(self) -> str:
        """Make sure the credentials work now: obtain (or refresh) a token if the provider
        can, without calling any API endpoint. Returns the provider's kind
        (``"password"``, ``"client_credentials"``...). A fixed bearer token cannot be
        checked this way; it is accepted as is.
        """
        await self._session.authenticate(Request("GET", API_PREFIX))
        return self._auth.kind

    # -- what every resource group uses -----------------------------------------------

    async def _get(
        self,
        path: str,
        decode: Callable[[Response], T],
        params: tuple[tuple[str, str], ...] = (),
        priority: Priority = Priority.INTERACTIVE,
    ) -> T:
        return await self._session.call(
            Request("GET", API_PREFIX + path, params), decode, priority=priority
        )

    async def _get_one(self, path: str, cls: type[T]) -> T:
        return await self._get(path, decoder(self._converter, cls))

    async def _get_list(
        self, path: str, cls: type[T], params: tuple[tuple[str, str], ...] = ()
    ) -> list[T]:
        return await self._get(path, list_decoder(self._converter, cls), params)

    async def _data_available(
        self, kind: str, entity_id: int, *, refresh: bool = False
    ) -> list[BaseField]:
        key = (kind, entity_id)
        if not refresh and key in self._available:
            return self._available[key]
        if self._available_lock is None:
            self._available_lock = anyio.Lock()
        async with self._available_lock:
            if refresh or key not in self._available:
                self._available[key] = await self._get_list(
                    f"/{kind}/{entity_id}/dataavailable", BaseField
                )
        return self._available[key]

    async def _check_fields(self, kind: str, entity_id: int, query: DataQuery) -> None:
        available = await self._data_available(kind, entity_id)
        check_fields_available(available, query, f"{kind[:-1]} {entity_id}")

    def _windows(self, query: DataQuery) -> list[Window] | None:
        if query.gran is Granularity.LATEST:
            return None
        assert query.start is not None
        assert query.end is not None
        return plan_windows(query.start, query.end, query.tz, query.gran, self.limits[query.gran])

    async def _data(
        self,
        *,
        kind: str,
        entity_id: int,
        query: DataQuery,
        validate: bool | None,
        priority: Priority,
    ) -> TimeSeries:
        if self.validate_fields if validate is None else validate:
            await self._check_fields(kind, entity_id, query)
        return await fetch_series(
            self._session,
            data_path(kind, entity_id),
            query,
            self._windows(query),
            priority=priority,
        )

    def _iter_data(
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
                await self._check_fields(kind, entity_id, query)

        return WindowStream(
            self._session,
            data_path(kind, entity_id),
            query,
            self._windows(query),
            priority=priority,
            before=before,
        )

    def plan(self, query: DataQuery) -> list[Window] | None:
        """The windows a data call for ``query`` would request (``None`` for latest)."""
        return self._windows(query)

    async def fetch_window(
        self,
        kind: str,
        entity_id: int,
        query: DataQuery,
        window: Window,
        *,
        priority: Priority = Priority.BACKGROUND,
    ) -> TimeSeries:
        """One planned window of ``kind`` (``"components"`` or ``"sites"``) ``entity_id``:
        what a backfill fetches, one request through the limiter at ``priority``."""
        if kind not in DATA_KINDS:
            raise UsageError(f"kind must be 'components' or 'sites', not {kind!r}")
        check_id(entity_id, "entity id")
        return await fetch_window(
            self._session, data_path(kind, entity_id), query, window, priority
        )


def auth_from_env(env: Mapping[str, str]) -> TokenProvider:
    """A token provider from ``LOCUS_*`` variables (see ``LocusClient.from_env``)."""
    token = env.get("LOCUS_ACCESS_TOKEN")
    if token:
        return BearerToken(token)
    client_id, secret = env.get("LOCUS_CLIENT_ID"), env.get("LOCUS_CLIENT_SECRET")
    user, password = env.get("LOCUS_USERNAME"), env.get("LOCUS_PASSWORD")
    if client_id and secret and user and password:
        return PasswordGrant(
            client_id=client_id, client_secret=secret, username=user, password=password
        )
    if client_id and secret and not user and not password:
        return ClientCredentialsGrant(client_id=client_id, client_secret=secret)
    wanted = ("LOCUS_CLIENT_ID", "LOCUS_CLIENT_SECRET", "LOCUS_USERNAME", "LOCUS_PASSWORD")
    missing = [name for name in wanted if not env.get(name)]
    raise UsageError(
        "no Locus credentials: set LOCUS_ACCESS_TOKEN, or LOCUS_CLIENT_ID and "
        "LOCUS_CLIENT_SECRET (plus LOCUS_USERNAME and LOCUS_PASSWORD for the password grant); "
        f"missing: {', '.join(missing)}"
    )


def check_fields_available(available: list[BaseField], query: DataQuery, what: str) -> None:
    """UsageError naming each requested field (or the granularity) the entity does not offer."""
    offered: dict[str, tuple[str, ...]] = {}
    loose: dict[str, tuple[str, ...]] = {}
    for base in available:
        for name in base.short_names:
            offered[name] = base.granularities
        if not base.aggregations:
            loose[base.base_field] = base.granularities
    for name in query.fields:
        grans = offered.get(name)
        if grans is None:
            prefix = name.rsplit("_", 1)[0]
            grans = loose.get(prefix, loose.get(name))
        if grans is None:
            valid = ", ".join(sorted(offered)) or "none"
            raise UsageError(f"field {name!r} is not available for {what}; valid fields: {valid}")
        if query.gran.value not in grans:
            raise UsageError(
                f"granularity {query.gran.value!r} is not available for field {name!r} of {what}; "
                f"valid: {', '.join(grans)}"
            )


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
            if seen is None or alert.updated > seen.updated:
                merged[alert.id] = alert
    return list(merged.values())


class _Resource:
    kind: str = ""

    def __init__(self, client: LocusClient) -> None:
        self._client = client

    def _path(self, entity_id: object, name: str, suffix: str = "") -> str:
        return f"/{self.kind}/{check_id(entity_id, name)}{suffix}"


class PartnersAPI(_Resource):
    """``/v3/partners/{id}/...``: a partner's sites, clients, components, alerts, bulk data."""

    kind = "partners"

    async def sites(self, partner_id: int) -> list[Site]:
        return await self._client._get_list(self._path(partner_id, "partner_id", "/sites"), Site)

    async def clients(self, partner_id: int) -> list[Client]:
        return await self._client._get_list(
            self._path(partner_id, "partner_id", "/clients"), Client
        )

    async def components(
        self, partner_id: int, *, node_id: str | None = None, notes: str | None = None
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
        path = self._path(partner_id, "partner_id", "/components")
        return await self._client._get_list(path, Component, tuple(params))

    async def alerts(
        self,
        partner_id: int,
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
        path = self._path(partner_id, "partner_id", "/alerts")
        zone, params, since = _alert_params(tz, updated_since, alert_types, status, priority)
        if since is None and open_during is None:
            raise UsageError(
                "partner alerts need updated_since (at most 7 days ago) or open_during=(start, end)"
            )
        if since is not None:
            age = self._client.now() - since
            if age > UPDATED_SINCE_MAX_AGE.total_seconds():
                raise UsageError(
                    f"updated_since {local_string(since, zone)} is {age / 86400:.1f} days ago; the "
                    "API allows at most 7 days for partner alerts (use open_during for older ones)"
                )
        if open_during is None:
            return await self._client._get_list(path, Alert, tuple(params))
        start, end = _open_during(open_during, zone)
        spans = plan_spans(start, end, zone, OPEN_DURING_MAX)
        batches: list[list[Alert]] = [[] for _ in spans]

        async def job(index: int) -> None:
            span = spans[index]
            extra = (("openDuringMin", span.start_param), ("openDuringMax", span.end_param))
            batches[index] = await self._client._get_list(path, Alert, (*params, *extra))

        await run_bounded(len(spans), self._client.limiter.capacity + 1, job)
        return _merge_alerts(batches)

    async def bulk_data_available(self, partner_id: int) -> list[BaseField]:
        """Fields the bulk (all sites) data call supports."""
        path = self._path(partner_id, "partner_id", "/sites/dataavailable")
        return await self._client._get_list(path, BaseField)

    async def bulk_data(
        self,
        partner_id: int,
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
        path = API_PREFIX + self._path(partner_id, "partner_id", "/sites/data")
        return await fetch_series(self._client._session, path, query, windows, priority=priority)


class ClientsAPI(_Resource):
    """``/v3/clients/{id}/...``."""

    kind = "clients"

    async def get(self, client_id: int) -> Client:
        return await self._client._get_one(self._path(client_id, "client_id"), Client)

    async def sites(self, client_id: int) -> list[Site]:
        return await self._client._get_list(self._path(client_id, "client_id", "/sites"), Site)

    async def components(self, client_id: int) -> list[Component]:
        path = self._path(client_id, "client_id", "/components")
        return await self._client._get_list(path, Component)


class _DataResource(_Resource):
    """Shared by sites and components: dataavailable, alerts, data."""

    id_name = "id"
    allow_latest = True

    async def data_available(self, entity_id: int, *, refresh: bool = False) -> list[BaseField]:
        """What data the entity has (cached per client; ``refresh=True`` asks again)."""
        return await self._client._data_available(
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
        return await self._client._get_list(path, Alert, tuple(params))

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
        return await self._client._data(
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
        return self._client._iter_data(
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
        return self._client.plan(
            self._query(fields=fields, start=start, end=end, tz=tz, gran=gran, field_params=None)
        )


class SitesAPI(_DataResource):
    """``/v3/sites/{id}/...``."""

    kind = "sites"
    id_name = "site_id"
    allow_latest = False

    async def get(self, site_id: int) -> Site:
        return await self._client._get_one(self._path(site_id, "site_id"), Site)

    async def components(self, site_id: int) -> list[Component]:
        return await self._client._get_list(
            self._path(site_id, "site_id", "/components"), Component
        )

    async def install_info(self, site_id: int) -> InstallInfo:
        return await self._client._get_one(
            self._path(site_id, "site_id", "/installinfo"), InstallInfo
        )

    async def model_settings(self, site_id: int) -> ModelSettings:
        path = self._path(site_id, "site_id", "/modelsettings")
        return await self._client._get_one(path, ModelSettings)


class ComponentsAPI(_DataResource):
    """``/v3/components/{id}/...``."""

    kind = "components"
    id_name = "component_id"

    async def get(self, component_id: int) -> Component:
        return await self._client._get_one(self._path(component_id, "component_id"), Component)
