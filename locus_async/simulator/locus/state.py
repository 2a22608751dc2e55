"""The simulated Locus v3 server's state and vocabulary: accounts, requests and responses,
counters, caches, the documented limits and the fleet with its physics.

Owns: everything the handler modules share. Must never: sleep, touch sockets or read the
real clock (``clock`` is injected). The ASGI adapter (``simulator._asgi``) adds latency,
faults, the concurrency rule and gzip.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
import orjson

from locus_async.locus.auth import ClientCredentialsGrant, PasswordGrant, TokenProvider, TokenStore
from locus_async.simulator._calendar import parse_local
from locus_async.simulator._fleet import Fleet, default_fleet
from locus_async.simulator._http import SimResponse, SimulatorStats, _ByteBoundedCache
from locus_async.simulator._physics import Physics
from locus_async.simulator._timeline import Timeline
from locus_async.simulator.locus.cognito import CognitoTrust

__all__ = [
    "DEFAULT_ACCOUNT",
    "Account",
    "CoreState",
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

    def token_form(self) -> dict[str, str]:
        """The form a client posts to ``/oauth/token`` for this account (curl, benchmarks)."""
        form = {
            "grant_type": self.grant,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
        if self.username is not None:
            form.update(username=self.username, password=self.password or "")
        return form

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


@attrs.define
class _AccessToken:
    account: Account
    expires_at: float
    revoked: bool = False


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


class CoreState:
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
        timeline: Timeline | None = None,
        cognito: CognitoTrust | None = None,
    ) -> None:
        self.fleet = fleet or default_fleet()
        #: The Cognito pool whose IdTokens are accepted beside our own tokens (None: none).
        self.cognito = cognito
        #: Cognito users seen, by ``sub``: each counts as an account of its own.
        self._cognito_accounts: dict[str, Account] = {}
        self.timeline = timeline
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

    def listed(self, component_id: int, now: float | None = None) -> bool:
        """Whether the component exists at ``now`` (the timeline may commission it later)."""
        if self.timeline is None:
            return True
        return self.timeline.listed(component_id, self.clock() if now is None else now)

    def _partner_sites(self, pid: int) -> list[int]:
        return [sid for sid, (_, _, p) in self.fleet.sites.items() if p.id == pid]


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
