"""The simulated Locus v3 server: state and request handlers, synchronous and I/O-free.

Owns: accounts and tokens (three grants, expiry, revocation), routing every documented
endpoint, the rules (formats, time-range limits in absolute time, dataavailable checks,
bulk and partner-alert limits, wildcards), the bodies, counters, and the ground truth.
Must never: sleep, touch sockets or read the real clock (``clock`` is injected). The ASGI
adapter (``_asgi``) adds latency, faults, the concurrency rule and gzip.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any, Final
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
import orjson

from locus_async.locus.auth import ClientCredentialsGrant, PasswordGrant, TokenProvider, TokenStore
from locus_async.simulator._calendar import bucket_starts, format_many, format_ts, parse_local
from locus_async.simulator._fleet import BULK_FIELDS, Fleet, Quantity, default_fleet
from locus_async.simulator._physics import MINUTES_PER_DAY, Physics, epoch_day

__all__ = [
    "DEFAULT_ACCOUNT",
    "Account",
    "SimRequest",
    "SimResponse",
    "SimulatorCore",
    "SimulatorStats",
]

#: Time-range limits per granularity, strictly below, in absolute time.
LIMITS: Final[dict[str, timedelta | None]] = {
    "1min": timedelta(days=5),
    "5min": timedelta(days=31),
    "15min": timedelta(days=31),
    "hourly": timedelta(days=31),
    "daily": timedelta(days=365),
    "monthly": None,
    "yearly": None,
}
GRANULARITIES: Final = ("latest", *LIMITS)
ALERT_TYPES: Final = (
    "Device Fault",
    "Performance Index",
    "Strings Performance",
    "System Disconnect",
    "Zero Generation",
)
UPDATED_SINCE_MAX: Final = timedelta(days=7)
OPEN_DURING_MAX: Final = timedelta(days=31)


@attrs.frozen
class Account:
    """API credentials as an account manager issues them (one OAuth flow per account)."""

    client_id: str
    client_secret: str = attrs.field(repr=False)
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    partner_ids: tuple[int, ...] = (111,)
    allowance: int | None = None  # None: the simulator's default

    @property
    def grant(self) -> str:
        return "password" if self.username is not None else "client_credentials"

    def provider(self, *, store: TokenStore | None = None) -> TokenProvider:
        """The token provider a client of this account uses (the password grant when the
        account has a user, client credentials otherwise)."""
        if self.username is not None and self.password is not None:
            return PasswordGrant(
                client_id=self.client_id,
                client_secret=self.client_secret,
                username=self.username,
                password=self.password,
                store=store,
            )
        return ClientCredentialsGrant(
            client_id=self.client_id, client_secret=self.client_secret, store=store
        )


DEFAULT_ACCOUNT: Final = Account(
    client_id="demo-client",
    client_secret="demo-secret",  # noqa: S106 - the simulator's published demo credentials
    username="demo@locus.example",
    password="demo-password",  # noqa: S106
)
CLIENT_CREDENTIALS_ACCOUNT: Final = Account(
    client_id="demo-service",
    client_secret="demo-service-secret",  # noqa: S106
)


@attrs.frozen
class SimRequest:
    method: str
    path: str
    query: str = ""
    headers: Mapping[str, str] = attrs.field(factory=dict)
    body: bytes = b""
    #: The path exactly as sent, still percent-encoded (what SNWS2 signs).
    raw_path: str | None = None

    @property
    def params(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query, keep_blank_values=True)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@attrs.frozen
class SimResponse:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)
    #: Set on answers that never change (data wholly in the past): adapters may reuse
    #: work keyed on it, such as the compressed body.
    cache_key: str | None = None
    #: Seconds the server holds the answer before sending it (a long poll).
    hold: float = 0.0


class _ByteBoundedCache:
    """An LRU of byte strings bounded by their total size."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._items: OrderedDict[str, tuple[bytes, Any]] = OrderedDict()

    def get(self, key: str) -> tuple[bytes, Any] | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: str, body: bytes, extra: Any = None) -> None:
        if len(body) > self.limit // 4:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self.size -= len(old[0])
        self._items[key] = (body, extra)
        self.size += len(body)
        while self.size > self.limit:
            _, (evicted, _) = self._items.popitem(last=False)
            self.size -= len(evicted)


@attrs.define
class _AccessToken:
    account: Account
    expires_at: float
    revoked: bool = False


@attrs.define
class SimulatorStats:
    """What the simulator saw. ``data_windows`` lists every accepted data request as
    ``(path, start, end, tz, gran, fields)``; ``max_in_flight`` is the most requests one
    account had in progress at once."""

    requests: int = 0
    by_status: Counter[int] = attrs.field(factory=Counter)
    grants: Counter[str] = attrs.field(factory=Counter)
    max_in_flight: int = 0
    in_flight: Counter[str] = attrs.field(factory=Counter)
    data_windows: list[tuple[str, str | None, str | None, str, str, str]] = attrs.field(
        factory=list
    )
    faults: Counter[str] = attrs.field(factory=Counter)
    log: list[tuple[str, str, int]] = attrs.field(factory=list)
    #: Provider-specific counts (SolarNetwork: signatures verified, instructions...).
    counters: Counter[str] = attrs.field(factory=Counter)

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "grants": dict(self.grants),
            "max_in_flight": self.max_in_flight,
            "data_windows": len(self.data_windows),
            "faults": dict(self.faults),
        }


class _Reject(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _json(status: int, body: dict[str, Any]) -> SimResponse:
    return SimResponse(status, orjson.dumps(body))


def error_response(status: int, message: str) -> SimResponse:
    return _json(status, {"statusCode": status, "message": message})


RATE_LIMITED: Final = error_response(429, "Too many requests")


_ROUTES: Final = [
    (re.compile(r"/v3/(partners|clients|sites|components)/(\d+)(/[a-z/]*)?\Z"), "entity"),
]

#: The documented endpoints below each entity (``get`` is the entity itself).
_ENDPOINTS: Final = {
    "partners": {"sites", "clients", "components", "alerts", "sites_dataavailable", "sites_data"},
    "clients": {"get", "sites", "components"},
    "sites": {
        "get",
        "components",
        "installinfo",
        "modelsettings",
        "dataavailable",
        "alerts",
        "data",
    },
    "components": {"get", "dataavailable", "alerts", "data"},
}

_WILDCARD: Final = re.compile(r"%")


def _like(pattern: str, value: str | None) -> bool:
    if value is None:
        return False
    parts = [re.escape(p) for p in _WILDCARD.split(pattern)]
    return re.fullmatch(".*".join(parts), value) is not None


@attrs.frozen
class _Alert:
    id: int
    component_id: int
    alert_type: str
    priority: str
    start: int
    end: int | None  # None: still open (as of generation horizon)
    updated: int
    description: tuple[str, str] | None


class SimulatorCore:
    """All state of one simulated Locus deployment."""

    def __init__(
        self,
        *,
        fleet: Fleet | None = None,
        accounts: Iterable[Account] | None = None,
        allowance: int = 1,
        token_lifetime: float = 3600.0,
        rotate_refresh_tokens: bool = False,
        unknown_fields: bool = False,
        clock: Callable[[], float] = time.time,
        seed: int = 7,
    ) -> None:
        self.fleet = fleet or default_fleet()
        self.accounts = {
            a.client_id: a for a in (accounts or (DEFAULT_ACCOUNT, CLIENT_CREDENTIALS_ACCOUNT))
        }
        self.allowance = allowance
        self.token_lifetime = token_lifetime
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.unknown_fields = unknown_fields
        self.clock = clock
        self.seed = seed
        self.physics = Physics(self.fleet, seed=seed)
        self.stats = SimulatorStats()
        self._tokens: dict[str, _AccessToken] = {}
        #: Every access and refresh token ever issued (tests scan outputs for them).
        self.issued_tokens: list[str] = []
        self._refresh: dict[str, Account] = {}
        self._token_counter = 0
        self._alert_cache: dict[int, list[_Alert]] = {}
        #: Data answers over past ranges, reused when the same request comes again.
        self._responses = _ByteBoundedCache(64 * 1024 * 1024)

    # ------------------------------------------------------------------ accounts & tokens

    def allowance_of(self, account: Account) -> int:
        return account.allowance if account.allowance is not None else self.allowance

    # ------------------------------------------------------------------ the adapter's Backend

    def fault_key(self, request: SimRequest) -> str:
        key = f"{request.method} {request.path}?{request.query}"
        if request.path == "/oauth/token":
            key += "#" + hashlib.blake2b(request.body, digest_size=6).hexdigest()
        return key

    def caller(self, request: SimRequest) -> tuple[str, int | None] | None:
        account = self.account_for(request)
        return None if account is None else (account.client_id, self.allowance_of(account))

    def rate_limited(self, request: SimRequest) -> SimResponse:
        return RATE_LIMITED

    def throttle(self, request: SimRequest) -> SimResponse | None:
        return None

    def error(self, status: int, message: str) -> SimResponse:
        return error_response(status, message)

    def revoke(self, request: SimRequest) -> SimResponse | None:
        """Revoke the request's access token (a fault): it is answered 401 now and after."""
        if request.path == "/oauth/token":
            return None
        record = self._bearer(request)
        if record is None or record.revoked:
            return None
        record.revoked = True
        return error_response(401, "Token revoked")

    def account_for(self, request: SimRequest) -> Account | None:
        """The account a request counts against (None: it will be rejected anyway)."""
        if request.path == "/oauth/token":
            form = dict(parse_qsl(request.body.decode("latin-1"), keep_blank_values=True))
            return self.accounts.get(form.get("client_id", ""))
        record = self._bearer(request)
        return record.account if record is not None and not record.revoked else None

    def _bearer(self, request: SimRequest) -> _AccessToken | None:
        header = request.header("authorization") or ""
        if not header.startswith("Bearer "):
            return None
        return self._tokens.get(header[len("Bearer ") :])

    def _new_secret(self, kind: str) -> str:
        self._token_counter += 1
        raw = f"{self.seed}:{kind}:{self._token_counter}:{random.random()}".encode()
        return hashlib.blake2b(raw, digest_size=16).hexdigest()

    def revoke_token(self, access_token: str) -> None:
        record = self._tokens.get(access_token)
        if record is not None:
            record.revoked = True

    def revoke_all(self, *, refresh_tokens: bool = False) -> None:
        """Revoke every access token (and refresh token, if asked)."""
        for record in self._tokens.values():
            record.revoked = True
        if refresh_tokens:
            self._refresh.clear()

    def _issue(self, account: Account, *, with_refresh: bool) -> dict[str, Any]:
        now = self.clock()
        access = self._new_secret("access")
        self._tokens[access] = _AccessToken(account, now + self.token_lifetime)
        self.issued_tokens.append(access)
        body: dict[str, Any] = {
            "access_token": access,
            "issued_at": int(now),
            "expires_in": max(1, int(self.token_lifetime)),
            "token_type": "bearer",
        }
        if with_refresh:
            refresh = self._new_secret("refresh")
            self._refresh[refresh] = account
            self.issued_tokens.append(refresh)
            body["refresh_token"] = refresh
        return body

    def _token(self, request: SimRequest) -> SimResponse:
        if request.method != "POST":
            return error_response(405, "Method not allowed")
        if not (request.header("content-type") or "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return error_response(400, "Content-Type must be application/x-www-form-urlencoded")
        form = dict(parse_qsl(request.body.decode("latin-1"), keep_blank_values=True))
        grant = form.get("grant_type", "")
        account = self.accounts.get(form.get("client_id", ""))
        if account is None or account.client_secret != form.get("client_secret"):
            return error_response(401, "Bad client credentials")
        if grant == "password":
            if account.grant != "password":
                return error_response(401, "Credentials are not valid for this flow")
            if form.get("username") != account.username or form.get("password") != account.password:
                return error_response(401, "Bad credentials")
            self.stats.grants["password"] += 1
            return _json(200, self._issue(account, with_refresh=True))
        if grant == "refresh_token":
            holder = self._refresh.get(form.get("refresh_token", ""))
            if holder is None or holder.client_id != account.client_id:
                return error_response(401, "Invalid refresh token")
            self.stats.grants["refresh_token"] += 1
            body = self._issue(account, with_refresh=self.rotate_refresh_tokens)
            if self.rotate_refresh_tokens:
                del self._refresh[form["refresh_token"]]
            return _json(200, body)
        if grant == "client_credentials":
            if account.grant != "client_credentials":
                return error_response(401, "Credentials are not valid for this flow")
            self.stats.grants["client_credentials"] += 1
            return _json(200, self._issue(account, with_refresh=False))
        return error_response(400, f"Unsupported grant_type {grant!r}")

    # ------------------------------------------------------------------ dispatch

    def handle(self, request: SimRequest) -> SimResponse:
        """Answer one request (no latency, faults or concurrency rule: see the adapter)."""
        if request.path == "/oauth/token":
            response = self._token(request)
            if self.unknown_fields and response.status == 200:
                response = SimResponse(
                    200, orjson.dumps(_with_unknown(orjson.loads(response.body)))
                )
            return response
        record = self._bearer(request)
        if record is None:
            return error_response(401, "Authentication failed")
        if record.revoked:
            return error_response(401, "Token revoked")
        if self.clock() >= record.expires_at:
            return error_response(401, "Token expired")
        if request.method != "GET":
            return error_response(405, "Method not allowed")
        match = _ROUTES[0][0].match(request.path)
        if match is None:
            return error_response(404, "Not found")
        kind, ident, rest = match.group(1), int(match.group(2)), (match.group(3) or "").rstrip("/")
        partner = self.fleet.partner_of(kind, ident)
        if partner is None:
            return error_response(404, f"{kind[:-1].capitalize()} {ident} not found")
        if partner not in record.account.partner_ids:
            return error_response(403, "You do not have permission to access this entity")
        suffix = rest.strip("/").replace("/", "_") or "get"
        if suffix not in _ENDPOINTS[kind]:
            return error_response(404, "Not found")
        handler = getattr(self, f"_{kind}_{suffix}")
        params = dict(request.params)
        cache_key = self._cache_key(suffix, record.account, request, params)
        if cache_key is not None:
            cached = self._responses.get(cache_key)
            if cached is not None:
                body_bytes, window = cached
                self.stats.data_windows.append(window)
                return SimResponse(200, body_bytes, cache_key=cache_key)
        try:
            body = handler(ident, params, request)
        except _Reject as rejection:
            return error_response(rejection.status, rejection.message)
        response = _json(200, {"statusCode": 200, **self._extra(body)})
        if cache_key is not None:
            self._responses.put(cache_key, response.body, self.stats.data_windows[-1])
            return SimResponse(200, response.body, cache_key=cache_key)
        return response

    def clear_response_cache(self) -> None:
        """Forget cached answers (the minute data stays cached)."""
        self._responses = _ByteBoundedCache(self._responses.limit)

    def _cache_key(
        self, suffix: str, account: Account, request: SimRequest, params: dict[str, str]
    ) -> str | None:
        """A key for data answers that cannot change: their whole range lies in the past."""
        if suffix not in ("data", "sites_data") or params.get("gran") == "latest":
            return None
        try:
            end = parse_local(params.get("end") or "", ZoneInfo(params.get("tz") or ""))
        except (ValueError, ZoneInfoNotFoundError, OSError):
            return None
        if end >= self.clock() - 86_400:
            return None
        return f"{account.client_id} {request.path}?{request.query}"

    def _extra(self, body: dict[str, Any]) -> dict[str, Any]:
        if not self.unknown_fields:
            return body
        extended: dict[str, Any] = _with_unknown(body)
        return extended

    # ------------------------------------------------------------------ entities

    def _partners_sites(self, pid: int, params: dict[str, str], _: SimRequest) -> dict[str, Any]:
        return {
            "sites": [
                {"statusCode": 200, **self.fleet.site_wire(s)} for s in self._partner_sites(pid)
            ]
        }

    def _partner_sites(self, pid: int) -> list[int]:
        return [sid for sid, (_, _, p) in self.fleet.sites.items() if p.id == pid]

    def _partners_clients(self, pid: int, params: dict[str, str], _: SimRequest) -> dict[str, Any]:
        ids = [cid for cid, (_, p) in self.fleet.clients.items() if p.id == pid]
        return {"clients": [self.fleet.client_wire(c) for c in ids]}

    def _partners_components(
        self, pid: int, params: dict[str, str], _: SimRequest
    ) -> dict[str, Any]:
        node_id, notes = params.get("nodeId"), params.get("notes")
        out = []
        for cid, located in self.fleet.components.items():
            if located.partner.id != pid:
                continue
            if node_id is not None and not _like(node_id, located.component.node_id):
                continue
            if notes is not None and not _like(notes, located.component.notes):
                continue
            out.append(self.fleet.component_wire(cid))
        return {"components": out}

    def _clients_get(self, cid: int, params: dict[str, str], _: SimRequest) -> dict[str, Any]:
        return self.fleet.client_wire(cid)

    def _clients_sites(self, cid: int, params: dict[str, str], _: SimRequest) -> dict[str, Any]:
        ids = [sid for sid, (_, c, _) in self.fleet.sites.items() if c.id == cid]
        return {"sites": [{"statusCode": 200, **self.fleet.site_wire(s)} for s in ids]}

    def _clients_components(
        self, cid: int, params: dict[str, str], _: SimRequest
    ) -> dict[str, Any]:
        ids = [i for i, located in self.fleet.components.items() if located.client.id == cid]
        return {"components": [self.fleet.component_wire(i) for i in ids]}

    def _sites_get(self, sid: int, params: dict[str, str], _: SimRequest) -> dict[str, Any]:
        return self.fleet.site_wire(sid)

    def _sites_components(self, sid: int, params: dict[str, str], _: SimRequest) -> dict[str, Any]:
        return {
            "components": [self.fleet.component_wire(c.id) for c in self.fleet.site_components(sid)]
        }

    def _sites_installinfo(self, sid: int, params: dict[str, str], _: SimRequest) -> dict[str, Any]:
        site = self.fleet.sites[sid][0]
        body: dict[str, Any] = {"installer": site.installer, "installCrew": "Crew 7"}
        if site.startup is not None:
            body["installDate"] = (site.startup - timedelta(days=20)).isoformat()
            body["ptoDate"] = site.startup.isoformat()
            body["startupDate"] = site.startup.isoformat()
        return body

    def _sites_modelsettings(
        self, sid: int, params: dict[str, str], _: SimRequest
    ) -> dict[str, Any]:
        site = self.fleet.sites[sid][0]
        body: dict[str, Any] = {
            "size": site.size_kw,
            "mismatch": 98,
            "diodesAndConnections": 99,
            "dcWiring": 98,
            "soiling": 95,
            "sunTracking": 100,
            "nameplate": 100,
            "acWiring": 99,
            "transformer": 100,
        }
        if site.geolocated:
            body["tmy3Id"] = 724000 + sid % 1000
        return body

    def _components_get(self, cid: int, params: dict[str, str], _: SimRequest) -> dict[str, Any]:
        return self.fleet.component_wire(cid)

    # ------------------------------------------------------------------ dataavailable

    def _quantities(self, kind: str, ident: int) -> tuple[Quantity, ...]:
        if kind == "components":
            return self.fleet.component_quantities(ident)
        return self.fleet.site_quantities(ident)

    def _sites_dataavailable(
        self, sid: int, params: dict[str, str], _: SimRequest
    ) -> dict[str, Any]:
        return {"baseFields": [q.wire() for q in self._quantities("sites", sid)]}

    def _components_dataavailable(
        self, cid: int, params: dict[str, str], _: SimRequest
    ) -> dict[str, Any]:
        return {"baseFields": [q.wire() for q in self._quantities("components", cid)]}

    def _partners_sites_dataavailable(
        self, pid: int, params: dict[str, str], _: SimRequest
    ) -> dict[str, Any]:
        return {"baseFields": [q.wire() for q in BULK_FIELDS]}

    # ------------------------------------------------------------------ data

    def _sites_data(self, sid: int, params: dict[str, str], request: SimRequest) -> dict[str, Any]:
        return {"data": self._data("sites", sid, params, request.path)}

    def _components_data(
        self, cid: int, params: dict[str, str], request: SimRequest
    ) -> dict[str, Any]:
        return {"data": self._data("components", cid, params, request.path)}

    def _common(self, params: dict[str, str]) -> tuple[list[str], ZoneInfo, str]:
        fields_text = params.get("fields")
        if not fields_text:
            raise _Reject(400, "fields is required")
        gran = params.get("gran")
        if gran is None:
            raise _Reject(400, "gran is required")
        if gran not in GRANULARITIES:
            raise _Reject(400, f"Invalid gran {gran!r}")
        tz = _zone(params.get("tz"))
        return fields_text.split(","), tz, gran

    def _range(self, params: dict[str, str], tz: ZoneInfo) -> tuple[int, int]:
        try:
            start = parse_local(params.get("start") or "", tz)
            end = parse_local(params.get("end") or "", tz)
        except ValueError:
            raise _Reject(400, "start and end must be YYYY-MM-DDThh:mm:ss local times") from None
        if start >= end:
            raise _Reject(400, "start must be before end")
        return start, end

    def _data(
        self, kind: str, ident: int, params: dict[str, str], path: str
    ) -> list[dict[str, Any]]:
        fields, tz, gran = self._common(params)
        offered = {
            f"{q.base_field}_{a}": q for q in self._quantities(kind, ident) for a in q.aggregations
        }
        for name in fields:
            quantity = offered.get(name)
            if quantity is None:
                raise _Reject(400, f"Invalid field {name!r} for this {kind[:-1]}")
            if gran not in quantity.granularities:
                raise _Reject(400, f"Granularity {gran!r} is not available for {name!r}")
        if gran == "latest":
            if kind != "components":
                raise _Reject(400, "latest is only available for components")
            self.stats.data_windows.append((path, None, None, tz.key, gran, ",".join(fields)))
            return self._latest(ident, fields, tz)
        start, end = self._range(params, tz)
        limit = LIMITS[gran]
        if limit is not None and end - start >= limit.total_seconds():
            raise _Reject(
                400, f"Time range too long for {gran}: must be less than {limit.days} days"
            )
        self.stats.data_windows.append(
            (path, params["start"], params["end"], tz.key, gran, ",".join(fields))
        )
        return self.rows(kind, ident, fields=fields, start=start, end=end, tz=tz, gran=gran)

    def _minutes_source(self, kind: str, ident: int, base: str) -> Callable[[int], Any]:
        if kind == "components":
            return lambda day: self.physics.component_minutes(ident, base, day)
        return lambda day: self.physics.site_minutes(ident, base, day)

    def _available(self, kind: str, ident: int) -> tuple[int, int]:
        """Epoch minutes ``[from, until)`` with data: commissioning to now."""
        if kind == "components":
            commissioned = self.fleet.components[ident].component.commissioned
        else:
            dates = [c.commissioned for c in self.fleet.meters(ident) if c.commissioned]
            commissioned = min(dates) if dates else None
        first = epoch_day(commissioned) * MINUTES_PER_DAY if commissioned else 0
        return first, int(self.clock() // 60)

    def rows(
        self,
        kind: str,
        ident: int,
        *,
        fields: list[str],
        start: int,
        end: int,
        tz: ZoneInfo,
        gran: str,
    ) -> list[dict[str, Any]]:
        """Rows for buckets with ``start <= ts < end`` (no limit check: the ground truth)."""
        starts = bucket_starts(start, end, tz, gran)
        if not starts:
            return []
        if starts[-1] < end:  # no following bucket was found: should not happen
            raise AssertionError("bucket list has no end")
        first_ok, until = self._available(kind, ident)
        plan = [(name, *name.rsplit("_", 1)) for name in fields]
        sources = {base: self._minutes_source(kind, ident, base) for _, base, _ in plan}
        out: list[dict[str, Any]] = []
        physics = self.physics
        # Sub-daily: slice buckets out of one contiguous minute array per base field.
        contiguous = gran in ("1min", "5min", "15min", "hourly")
        span_lo = max(starts[0] // 60, first_ok)
        span_hi = min(starts[-1] // 60, until)
        spans = (
            {base: physics.span(source, span_lo, span_hi) for base, source in sources.items()}
            if contiguous and span_lo < span_hi
            else {}
        )
        labels = (
            format_many(starts[:-1], tz) if contiguous else [format_ts(b, tz) for b in starts[:-1]]
        )
        one_minute = gran == "1min"
        if one_minute and span_lo == starts[0] // 60 and span_hi == starts[-1] // 60:
            # Every minute has data: one value per row, no clipping.
            columns = [(name, spans[base]) for name, base, _ in plan]
            for index, label in enumerate(labels):
                values: dict[str, Any] = {"id": ident, "ts": label}
                for name, column in columns:
                    values[name] = column[index]
                out.append(values)
            return out
        for index, label in enumerate(labels):
            b_start, b_end = starts[index], starts[index + 1]
            row: dict[str, Any] = {"id": ident, "ts": label}
            lo = max(b_start // 60, first_ok)
            hi = min(-(-b_end // 60), until)
            if lo < hi:
                for name, base, how in plan:
                    if one_minute:
                        row[name] = spans[base][lo - span_lo]
                        continue
                    if contiguous:
                        segment = spans[base][lo - span_lo : hi - span_lo]
                        if how == "sum":
                            row[name] = sum(segment)
                        elif how == "max":
                            row[name] = max(segment)
                        elif how == "min":
                            row[name] = min(segment)
                        else:
                            row[name] = sum(segment) / len(segment)
                        continue
                    agg = physics.aggregate(sources[base], (kind, ident, base), lo, hi)
                    if agg is None:
                        continue
                    total, high, low, count = agg
                    row[name] = {"sum": total, "max": high, "min": low}.get(how, total / count)
            out.append(row)
        return out

    def _latest(self, ident: int, fields: list[str], tz: ZoneInfo) -> list[dict[str, Any]]:
        first_ok, until = self._available("components", ident)
        minute = until - 1
        row: dict[str, Any] = {"id": ident, "ts": format_ts(minute * 60, tz)}
        if minute >= first_ok:
            for name in fields:
                base = name.rsplit("_", 1)[0]
                row[name] = self.physics.component_minutes(ident, base, minute // MINUTES_PER_DAY)[
                    minute % MINUTES_PER_DAY
                ]
        return [row]

    # ------------------------------------------------------------------ bulk

    def _partners_sites_data(
        self, pid: int, params: dict[str, str], request: SimRequest
    ) -> dict[str, Any]:
        fields, tz, gran = self._common(params)
        if gran != "monthly":
            raise _Reject(400, "Bulk data supports monthly granularity only")
        offered = {f"{q.base_field}_{a}" for q in BULK_FIELDS for a in q.aggregations}
        for name in fields:
            if name not in offered:
                raise _Reject(400, f"Invalid field {name!r} for bulk data")
        start, end = self._range(params, tz)
        wall_start = datetime.fromtimestamp(start, tz).replace(tzinfo=None)
        try:
            limit = wall_start.replace(year=wall_start.year + 1)
        except ValueError:  # 29 February
            limit = wall_start.replace(year=wall_start.year + 1, day=28)
        if datetime.fromtimestamp(end, tz).replace(tzinfo=None) > limit:
            raise _Reject(400, "end can be at most 1 year after start for bulk data")
        self.stats.data_windows.append(
            (request.path, params["start"], params["end"], tz.key, gran, ",".join(fields))
        )
        return {"data": self.bulk_rows(pid, fields, start, end, tz)}

    def bulk_rows(
        self, pid: int, fields: list[str], start: int, end: int, tz: ZoneInfo
    ) -> list[dict[str, Any]]:
        """Monthly rows of every site of the partner that has components."""
        starts = bucket_starts(start, end, tz, "monthly")
        out: list[dict[str, Any]] = []
        for sid in sorted(self._partner_sites(pid)):
            site = self.fleet.sites[sid][0]
            if not site.components:
                continue
            first_ok, until = self._available("sites", sid)
            for index in range(len(starts) - 1):
                lo = max(starts[index] // 60, first_ok)
                hi = min(starts[index + 1] // 60, until)
                row: dict[str, Any] = {"id": sid, "ts": format_ts(starts[index], tz)}
                energy = self._site_sum(sid, "Wh", lo, hi)
                expected = self._site_sum(sid, "Wh_e", lo, hi)
                values = {
                    "Wh_sum": energy,
                    "Whp_sum": energy,
                    "Wh_e_sum": expected,
                    "GHIh_m_sum": self._insolation(sid, lo, hi) if site.geolocated else None,
                    "EER_avg": energy / expected if energy is not None and expected else None,
                }
                for name in fields:
                    row[name] = values[name]
                out.append(row)
        return out

    def _site_sum(self, sid: int, base: str, lo: int, hi: int) -> float | None:
        agg = self.physics.aggregate(
            self._minutes_source("sites", sid, base), ("sites", sid, base), lo, hi
        )
        return agg[0] if agg is not None else None

    def _insolation(self, sid: int, lo: int, hi: int) -> float | None:
        agg = self.physics.aggregate(
            lambda day: self.physics.insolation_minutes(sid, day), ("ghih", sid), lo, hi
        )
        return agg[0] if agg is not None else None

    # ------------------------------------------------------------------ alerts

    def _component_alerts(self, cid: int) -> list[_Alert]:
        found = self._alert_cache.get(cid)
        if found is not None:
            return found
        located = self.fleet.components[cid]
        rng = random.Random(self.seed * 15_485_863 + cid)
        commissioned = located.component.commissioned or date(2021, 1, 1)
        t = epoch_day(commissioned) * 86_400 + 3600 * 10
        horizon = self.clock() + 30 * 86_400
        alerts: list[_Alert] = []
        while t < horizon:
            t += int(rng.expovariate(1 / (9 * 86_400))) + 3600
            kind = rng.choice(ALERT_TYPES)
            duration = int(rng.uniform(0.5, 96) * 3600)
            end = t + duration
            description = (
                ("VDC high", "A voltage higher than 2100 V is present on the DC bus.")
                if kind == "Device Fault"
                else None
            )
            alerts.append(
                _Alert(
                    id=cid * 10_000 + len(alerts) + 1,
                    component_id=cid,
                    alert_type=kind,
                    priority=rng.choice(("High", "Medium", "Low")),
                    start=t,
                    end=end,
                    updated=end + int(rng.uniform(60, 3600)),
                    description=description,
                )
            )
        self._alert_cache[cid] = alerts
        return alerts

    def alerts_as_of(self, component_ids: Iterable[int]) -> list[_Alert]:
        """Alerts that have started by now; those whose end lies ahead are open."""
        now = self.clock()
        out: list[_Alert] = []
        for cid in component_ids:
            for alert in self._component_alerts(cid):
                if alert.start > now:
                    break
                if alert.end is not None and alert.end > now:
                    out.append(attrs.evolve(alert, end=None, updated=alert.start + 60))
                else:
                    out.append(alert)
        return out

    def _alert_wire(self, alert: _Alert, tz: ZoneInfo) -> dict[str, Any]:
        located = self.fleet.components[alert.component_id]
        body: dict[str, Any] = {
            "id": alert.id,
            "componentId": alert.component_id,
            "componentName": located.component.name,
            "siteId": located.site.id,
            "siteName": located.site.name,
            "alertType": alert.alert_type,
            "priority": alert.priority,
            "start": format_ts(alert.start, tz),
            "updated": format_ts(alert.updated, tz),
        }
        if alert.end is not None:
            body["end"] = format_ts(alert.end, tz)
        if alert.description is not None:
            body["descriptionShort"], body["descriptionLong"] = alert.description
        return body

    def _alerts(
        self, component_ids: list[int], params: dict[str, str], *, partner: bool
    ) -> dict[str, Any]:
        tz = _zone(params.get("tz"))
        since = _optional_local(params, "updatedSince", tz)
        low = _optional_local(params, "openDuringMin", tz)
        high = _optional_local(params, "openDuringMax", tz)
        if (low is None) != (high is None):
            raise _Reject(400, "openDuringMin and openDuringMax must be given together")
        if low is not None and high is not None and low >= high:
            raise _Reject(400, "openDuringMin must be before openDuringMax")
        if partner:
            if since is None and low is None:
                raise _Reject(
                    400, "Either updatedSince or openDuringMin and openDuringMax are required"
                )
            if since is not None and since < self.clock() - UPDATED_SINCE_MAX.total_seconds():
                raise _Reject(400, "updatedSince is limited to up to 7 days ago")
            if (
                low is not None
                and high is not None
                and high - low > OPEN_DURING_MAX.total_seconds()
            ):
                raise _Reject(400, "Open during time period is limited to 31 days")
        types = params.get("alertType")
        wanted_types = {t.strip() for t in types.split(",")} if types else None
        if wanted_types and not wanted_types <= set(ALERT_TYPES):
            raise _Reject(400, f"Invalid alertType {types!r}")
        status = params.get("status")
        if status is not None and status.lower() not in ("open", "closed"):
            raise _Reject(400, "status must be open or closed")
        priorities = params.get("priority")
        wanted_priorities = (
            {p.strip().lower() for p in priorities.split(",")} if priorities else None
        )
        if wanted_priorities and not wanted_priorities <= {"high", "medium", "low"}:
            raise _Reject(400, "priority must be high, medium or low")
        out = []
        for alert in self.alerts_as_of(component_ids):
            if since is not None and alert.updated < since:
                continue
            if (
                low is not None
                and high is not None
                and (alert.start > high or (alert.end is not None and alert.end < low))
            ):
                continue
            if wanted_types and alert.alert_type not in wanted_types:
                continue
            if status is not None and (alert.end is None) != (status.lower() == "open"):
                continue
            if wanted_priorities and alert.priority.lower() not in wanted_priorities:
                continue
            out.append(self._alert_wire(alert, tz))
        return {"alerts": out}

    def _partners_alerts(self, pid: int, params: dict[str, str], _: SimRequest) -> dict[str, Any]:
        ids = [cid for cid, located in self.fleet.components.items() if located.partner.id == pid]
        return self._alerts(ids, params, partner=True)

    def _sites_alerts(self, sid: int, params: dict[str, str], _: SimRequest) -> dict[str, Any]:
        ids = [c.id for c in self.fleet.site_components(sid)]
        return self._alerts(ids, params, partner=False)

    def _components_alerts(self, cid: int, params: dict[str, str], _: SimRequest) -> dict[str, Any]:
        return self._alerts([cid], params, partner=False)

    # ------------------------------------------------------------------ ground truth

    def ground_truth(
        self,
        kind: str,
        ident: int,
        *,
        fields: list[str],
        start: datetime,
        end: datetime,
        tz: str,
        gran: str,
    ) -> list[dict[str, Any]]:
        """What a correct client returns for this request, whatever the range limits.

        ``kind`` is ``"components"``, ``"sites"`` or ``"bulk"`` (partner monthly data);
        ``start``/``end`` naive (wall time in ``tz``) or aware. Rows are
        ``{"id", "ts": aware datetime in tz, <field>: float or None}``, in time order.
        """
        zone = ZoneInfo(tz)
        lo = _instant(start, zone)
        hi = _instant(end, zone)
        if kind == "bulk":
            raw = self.bulk_rows(ident, fields, lo, hi, zone)
            raw.sort(key=lambda r: (datetime.fromisoformat(r["ts"]), r["id"]))
        else:
            raw = self.rows(kind, ident, fields=fields, start=lo, end=hi, tz=zone, gran=gran)
        rows = []
        for item in raw:
            row: dict[str, Any] = {
                "id": item["id"],
                "ts": datetime.fromisoformat(item["ts"]).astimezone(zone),
            }
            for name in fields:
                row[name] = item.get(name)
            rows.append(row)
        return rows


def _instant(value: datetime, zone: ZoneInfo) -> int:
    if value.tzinfo is None:
        return parse_local(value.strftime("%Y-%m-%dT%H:%M:%S"), zone)
    return math.ceil(value.timestamp())


def _zone(name: str | None) -> ZoneInfo:
    if not name:
        raise _Reject(400, "tz is required")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise _Reject(400, f"Invalid tz {name!r}") from None


def _optional_local(params: dict[str, str], name: str, tz: ZoneInfo) -> int | None:
    text = params.get(name)
    if text is None:
        return None
    try:
        return parse_local(text, tz)
    except ValueError:
        raise _Reject(400, f"{name} must be YYYY-MM-DDThh:mm:ss") from None


def _with_unknown(value: Any) -> Any:
    if isinstance(value, dict):
        out = {k: _with_unknown(v) for k, v in value.items()}
        out.setdefault("simulatorNote", "unknown field")
        return out
    if isinstance(value, list):
        return [_with_unknown(v) for v in value]
    return value
