"""SNWS2 credentials and the authenticator that signs every SolarNetwork request.

Owns: ``Snws2Credentials`` (a token id with its secret, or with only a signing key derived
earlier), the signing-key cache (one key per UTC day, derived once), and choosing what to
sign: ``host`` (with the port only when it is not the scheme's default), ``x-sn-date``,
``content-type`` when there is one, ``digest`` for non-form bodies, and every ``x-sn-*``
header the request carries. Must never: put the secret or a key in a repr, an error or a
log line; do I/O.
"""

from __future__ import annotations

import email.utils
import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Final
from urllib.parse import urlsplit

import attrs

from locus_async._core.http import Request
from locus_async._shell.session import AuthContext, AuthFlow
from locus_async.errors import InvalidArgumentType, UsageError
from locus_async.solarnetwork._core.signing import (
    digest_header,
    http_date,
    is_form,
    signing_key,
    snws2_authorization,
)

__all__ = ["KEY_VALID_DAYS", "Snws2Credentials", "Snws2Signer", "host_header"]

#: A key derived for day D signs requests dated D to D + 6 (the server tries 7 days).
KEY_VALID_DAYS: Final = 7
#: A refused signature is blamed on the clock only when the server's ``Date`` is further
#: than this from ours (the server accepts 15 minutes; seconds of drift are not the cause).
SKEW_WORTH_FIXING: Final = 60.0

logger = logging.getLogger("locus_async.solarnetwork")

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}

#: Headers the server requires to be signed whenever the request carries them.
_ALWAYS_SIGNED: Final = frozenset({"content-type", "content-md5", "digest"})


def _check_token_id(_: object, __: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgumentType("token_id must be a non-empty string")
    if any(c in value for c in ",; \t\r\n"):
        raise UsageError("token_id must not contain spaces, commas or semicolons")


@attrs.frozen(repr=False)
class Snws2Credentials:
    """A SolarNetwork security token.

    Give ``token_secret``, or (to keep the secret out of this process) a ``signing_key``
    derived earlier with ``Snws2Credentials.derive_key`` and the UTC ``key_date`` it was
    derived for; such a key signs requests for 7 days. Neither ever appears in a repr.
    """

    token_id: str = attrs.field(validator=_check_token_id)
    token_secret: str | None = None
    signing_key: bytes | None = None
    key_date: date | None = None

    def __attrs_post_init__(self) -> None:
        if (self.token_secret is None) == (self.signing_key is None):
            raise UsageError("give exactly one of token_secret and signing_key")
        if self.token_secret is not None and (
            not isinstance(self.token_secret, str) or not self.token_secret
        ):
            raise InvalidArgumentType("token_secret must be a non-empty string")
        if self.signing_key is not None:
            if not isinstance(self.signing_key, bytes) or len(self.signing_key) != 32:
                raise InvalidArgumentType("signing_key must be the 32 bytes derive_key returns")
            if not isinstance(self.key_date, date) or isinstance(self.key_date, datetime):
                raise UsageError("a signing_key needs the key_date (a UTC date) it was derived for")

    def __repr__(self) -> str:
        held = "secret" if self.token_secret is not None else f"key for {self.key_date}"
        return f"Snws2Credentials(token_id={self.token_id!r}, {held}=***)"

    @staticmethod
    def derive_key(token_secret: str, day: date) -> bytes:
        """The signing key for ``day`` (UTC): valid for requests dated that day and 6 after."""
        return signing_key(token_secret, day)

    def secrets(self) -> tuple[str, ...]:
        """The values logs and errors must never show."""
        if self.token_secret is not None:
            return (self.token_secret,)
        assert self.signing_key is not None
        return (self.signing_key.hex(),)


def host_header(base_url: str) -> str:
    """The ``Host`` a request to ``base_url`` carries: the port only when non-default."""
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{port}"
    return host


class Snws2Signer:
    """The SolarNetwork ``Authenticator``: signs each request when it gets its slot."""

    def __init__(
        self,
        credentials: Snws2Credentials,
        *,
        base_url: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(credentials, Snws2Credentials):
            raise InvalidArgumentType(
                f"credentials must be Snws2Credentials, not {type(credentials).__name__}"
            )
        self.credentials = credentials
        self.host = host_header(base_url)
        self.prefix = urlsplit(base_url).path.rstrip("/")
        #: The client's own headers (``headers=``), sent on every request: an ``X-SN-*``
        #: one among them must be signed like the request's.
        self.headers = tuple((headers or {}).items())
        self._key: tuple[date, bytes] | None = None
        self.keys_derived = 0
        #: Seconds the server's clock is ahead of ours, learned from a refused signature's
        #: ``Date`` (0 until then); every request is dated with it.
        self.skew = 0.0

    def __repr__(self) -> str:
        return f"Snws2Signer({self.credentials!r}, host={self.host!r})"

    def secrets(self) -> tuple[str, ...]:
        return self.credentials.secrets()

    def key_for(self, day: date) -> bytes:
        """The signing key for a request dated ``day``, derived at most once per day."""
        creds = self.credentials
        if creds.signing_key is not None:
            assert creds.key_date is not None
            age = (day - creds.key_date).days
            if not 0 <= age < KEY_VALID_DAYS:
                last = creds.key_date + timedelta(days=KEY_VALID_DAYS - 1)
                raise UsageError(
                    f"the signing key derived for {creds.key_date} signs requests dated "
                    f"{creds.key_date} to {last} (UTC) only, not {day}: derive a new key "
                    "from the token secret"
                )
            return creds.signing_key
        if self._key is None or self._key[0] != day:
            assert creds.token_secret is not None
            self._key = (day, signing_key(creds.token_secret, day))
            self.keys_derived += 1
        return self._key[1]

    def sign(self, request: Request, now: float) -> Request:
        """``request`` with ``Host``, ``X-SN-Date``, ``Digest`` (non-form bodies) and
        ``Authorization`` added, dated ``now`` (unix seconds, whole seconds used)."""
        when = datetime.fromtimestamp(int(now), UTC)
        named = {n.lower() for n, _ in request.headers}
        everyone = [(n, v) for n, v in self.headers if n.lower() not in named]
        own = [
            (n, v)
            for n, v in (*everyone, *request.headers)
            if n.lower() not in ("host", "authorization")
        ]
        added = [("Host", self.host), ("X-SN-Date", http_date(when))]
        carried = {n.lower(): v for n, v in own}
        if request.content and not is_form(carried) and "digest" not in carried:
            added.append(("Digest", digest_header(request.content)))
        signed = {
            n: v
            for n, v in [*own, *added]
            if n.lower() in ("host", "x-sn-date")
            or n.lower() in _ALWAYS_SIGNED
            or n.lower().startswith("x-sn-")
        }
        authorization = snws2_authorization(
            method=request.method,
            path=self.prefix + request.path,
            query=request.params,
            headers=signed,
            body=request.content,
            token_id=self.credentials.token_id,
            key=self.key_for(when.date()),
            date=when,
        )
        return attrs.evolve(request, headers=(*own, *added, ("Authorization", authorization)))

    def auth_flow(self, request: Request, ctx: AuthContext) -> AuthFlow:
        """``request`` signed at the moment it is sent (it has its slot). A refused
        signature is not fixed by signing again, so a 401 is not retried, with one
        exception: when the answer's ``Date`` shows the clocks apart by more than
        ``SKEW_WORTH_FIXING``, the skew is learned (once, for every later request too) and
        the request signed again with the server's time."""
        return self._flow(request, ctx)

    async def _flow(self, request: Request, ctx: AuthContext) -> AuthFlow:
        response = yield self.sign(request, ctx.wall() + self.skew)
        if response.status_code not in (401, 403):
            return
        server = _server_time(response.headers.get("date"))
        if server is None:
            return
        skew = round(server - ctx.wall())
        if abs(skew - self.skew) <= SKEW_WORTH_FIXING:
            return
        logger.warning(
            "signature refused and the server's clock is %+d s from this machine's: "
            "signing with the server's time from now on (set the machine's clock right)",
            skew,
        )
        self.skew = float(skew)
        yield self.sign(request, ctx.wall() + self.skew)


def _server_time(value: str | None) -> float | None:
    """Unix seconds of an HTTP ``Date`` header, or None if absent or unreadable."""
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when.timestamp() if when.tzinfo is not None else None
