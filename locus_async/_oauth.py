"""Locus OAuth2 token providers: password, refresh, client credentials, caller's bearer.

Owns: when to obtain a token, single flight (any number of concurrent callers that find the
token stale, or get a 401, cause exactly one token request), the refresh-then-password
fallback, and keeping secrets out of reprs. Must never: hold its lock across the caller's
own request (only across the token exchange), or log a token, a secret or a password.

Each provider keeps its own token, so one provider shared by two clients shares the token.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Final, Protocol

import anyio
import attrs

from ._core.decipher import decipher_locus
from ._core.http import Request
from ._core.tokens import (
    TokenState,
    client_credentials_form,
    parse_token,
    password_form,
    refresh_form,
    refresh_margin,
    token_request,
    token_state,
)
from .errors import AuthenticationError, BadRequest, InvalidArgumentType, UsageError
from .models import Token

if TYPE_CHECKING:
    from ._session import AuthContext

__all__ = [
    "BearerToken",
    "ClientCredentialsGrant",
    "PasswordGrant",
    "RefreshTokenGrant",
    "TokenProvider",
    "TokenStore",
]

logger = logging.getLogger("locus_async.auth")


def _check_text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidArgumentType(f"{name} must be a string, not {type(value).__name__}")
    if not value:
        raise UsageError(f"{name} must not be empty")
    return value


def _bearer_of(request: Request) -> str | None:
    for name, value in request.headers:
        if name.lower() == "authorization" and value.startswith("Bearer "):
            return value[len("Bearer ") :]
    return None


class TokenStore(Protocol):
    """Where processes share a token (``RedisTokenStore``); see ``TokenProvider``."""

    async def load(self) -> dict[str, Any] | None: ...

    async def save(self, value: dict[str, Any], ttl: float) -> None: ...

    async def invalidate(self, access_token: str) -> None: ...

    def lock(self) -> AbstractAsyncContextManager[Any]: ...


#: How long a stored token outlives its access token, so its refresh token can be used.
_REFRESH_KEEP: Final = 86_400.0


class TokenProvider:
    """Base of the Locus providers: caches a token, refreshes it once for everybody.

    With a ``store`` the token is shared between processes: a process takes the stored
    token while it is fresh, and when it is not, refreshes it under the store's lock (the
    others wait, then use the new one): one grant per token lifetime for a whole fleet.
    """

    kind: ClassVar[str] = "token"

    def __init__(self, *, store: TokenStore | None = None) -> None:
        self._state: TokenState | None = None
        self._lock: anyio.Lock | None = None
        self.store = store

    # -- what the session calls -------------------------------------------------------

    def secrets(self) -> tuple[str, ...]:
        """Every secret this provider knows, for redaction."""
        state = self._state
        if state is None:
            return self._static_secrets()
        token = state.token
        return (*self._static_secrets(), token.access_token, token.refresh_token or "")

    async def authorize(self, request: Request, ctx: AuthContext) -> Request:
        """``request`` with a valid bearer token (obtaining or refreshing one if needed)."""
        state = await self._fresh_state(ctx)
        return request.with_headers(("Authorization", f"Bearer {state.token.access_token}"))

    async def on_unauthorized(self, sent: Request, ctx: AuthContext) -> bool:
        """A 401 came back for ``sent``: drop that token; True means retry once."""
        used = _bearer_of(sent)
        state = self._state
        if state is not None and state.token.access_token == used:
            self._state = attrs.evolve(state, refresh_at=float("-inf"))
            logger.info("token rejected with 401; a new one will be obtained")
        if self.store is not None and used:
            await self.store.invalidate(used)
        return True

    # -- the single flight ------------------------------------------------------------

    async def _fresh_state(self, ctx: AuthContext) -> TokenState:
        state = self._state
        if state is not None and not state.needs_refresh(ctx.monotonic()):
            return state
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            state = self._state  # somebody may have refreshed while we waited
            if state is not None and not state.needs_refresh(ctx.monotonic()):
                return state
            if self.store is None:
                state = await self._obtain(ctx, state)
            else:
                state = await self._shared(ctx, state)
            self._state = state
            return state

    async def _shared(self, ctx: AuthContext, local: TokenState | None) -> TokenState:
        """The stored token if fresh; otherwise refresh it under the store's lock."""
        assert self.store is not None
        stored = await self._load(ctx)
        if stored is not None and not stored.needs_refresh(ctx.monotonic()):
            return stored
        async with self.store.lock():
            stored = await self._load(ctx)  # another process may have refreshed meanwhile
            if stored is not None and not stored.needs_refresh(ctx.monotonic()):
                return stored
            state = await self._obtain(ctx, stored if stored is not None else local)
            remaining = state.expires_at - ctx.monotonic()
            token = state.token
            await self.store.save(
                {
                    "access_token": token.access_token,
                    "refresh_token": token.refresh_token,
                    "token_type": token.token_type,
                    "issued_at": token.issued_at.timestamp(),
                    "expires_in": token.expires_in,
                    "expires_at": ctx.wall() + remaining,
                },
                ttl=remaining + _REFRESH_KEEP,
            )
            return state

    async def _load(self, ctx: AuthContext) -> TokenState | None:
        assert self.store is not None
        value = await self.store.load()
        if value is None:
            return None
        try:
            token = Token(
                access_token=str(value["access_token"]),
                refresh_token=value.get("refresh_token"),
                token_type=value.get("token_type"),
                issued_at=datetime.fromtimestamp(float(value["issued_at"]), UTC),
                expires_in=int(value["expires_in"]),
            )
            remaining = float(value["expires_at"]) - ctx.wall()
        except (KeyError, TypeError, ValueError):
            return None
        expires_at = ctx.monotonic() + remaining
        return TokenState(
            token=token,
            refresh_at=expires_at - refresh_margin(token.expires_in),
            expires_at=expires_at,
        )

    async def _obtain(self, ctx: AuthContext, stale: TokenState | None) -> TokenState:
        raise NotImplementedError

    def _static_secrets(self) -> tuple[str, ...]:
        return ()

    # -- one grant --------------------------------------------------------------------

    async def _grant(
        self, ctx: AuthContext, form: tuple[tuple[str, str], ...], kind: str
    ) -> TokenState:
        sent_monotonic, sent_wall = ctx.monotonic(), ctx.wall()
        response = await ctx.exchange(token_request(form))
        try:
            decipher_locus(response, now=sent_wall, secrets=self.secrets())
        except BadRequest as exc:
            # OAuth servers answer a bad grant with 400 invalid_grant: that is an auth failure.
            raise AuthenticationError(
                exc.message, status_code=exc.status_code, request=exc.request
            ) from None
        token = parse_token(response.content, ctx.converter)
        ctx.note_grant(kind)
        logger.info("obtained a token with the %s grant (expires in %s s)", kind, token.expires_in)
        return token_state(token, sent_monotonic=sent_monotonic, sent_wall=sent_wall)


def _keep_refresh_token(new: TokenState, old: TokenState) -> TokenState:
    """The refresh grant's response may have no refresh token: keep the old one."""
    if new.token.refresh_token or not old.token.refresh_token:
        return new
    return attrs.evolve(new, token=attrs.evolve(new.token, refresh_token=old.token.refresh_token))


class PasswordGrant(TokenProvider):
    """Resource-owner password grant; refreshes with the refresh token, and falls back to
    the password grant once if the refresh token is refused."""

    kind = "password"

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        username: str,
        password: str,
        store: TokenStore | None = None,
    ) -> None:
        super().__init__(store=store)
        self.client_id = _check_text(client_id, "client_id")
        self.username = _check_text(username, "username")
        self._client_secret = _check_text(client_secret, "client_secret")
        self._password = _check_text(password, "password")

    def __repr__(self) -> str:
        return (
            f"PasswordGrant(client_id={self.client_id!r}, client_secret='***', "
            f"username={self.username!r}, password='***')"
        )

    def _static_secrets(self) -> tuple[str, ...]:
        return (self._client_secret, self._password)

    async def _obtain(self, ctx: AuthContext, stale: TokenState | None) -> TokenState:
        if stale is not None and stale.refresh_token:
            form = refresh_form(self.client_id, self._client_secret, stale.refresh_token)
            try:
                return _keep_refresh_token(await self._grant(ctx, form, "refresh_token"), stale)
            except AuthenticationError:
                logger.warning("refresh token refused; falling back to the password grant once")
        form = password_form(self.client_id, self._client_secret, self.username, self._password)
        return await self._grant(ctx, form, "password")


class RefreshTokenGrant(TokenProvider):
    """Start from a refresh token you already hold; keeps it when responses carry none."""

    kind = "refresh_token"

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        store: TokenStore | None = None,
    ) -> None:
        super().__init__(store=store)
        self.client_id = _check_text(client_id, "client_id")
        self._client_secret = _check_text(client_secret, "client_secret")
        self._refresh_token = _check_text(refresh_token, "refresh_token")

    def __repr__(self) -> str:
        return (
            f"RefreshTokenGrant(client_id={self.client_id!r}, client_secret='***', "
            "refresh_token='***')"
        )

    def _static_secrets(self) -> tuple[str, ...]:
        return (self._client_secret, self._refresh_token)

    async def _obtain(self, ctx: AuthContext, stale: TokenState | None) -> TokenState:
        current = (
            stale.refresh_token
            if stale is not None and stale.refresh_token
            else self._refresh_token
        )
        form = refresh_form(self.client_id, self._client_secret, current)
        state = await self._grant(ctx, form, "refresh_token")
        if not state.token.refresh_token:
            state = attrs.evolve(state, token=attrs.evolve(state.token, refresh_token=current))
        self._refresh_token = state.token.refresh_token or current
        return state


class ClientCredentialsGrant(TokenProvider):
    """Client-credentials grant: no refresh token, so it authenticates again at expiry."""

    kind = "client_credentials"

    def __init__(
        self, *, client_id: str, client_secret: str, store: TokenStore | None = None
    ) -> None:
        super().__init__(store=store)
        self.client_id = _check_text(client_id, "client_id")
        self._client_secret = _check_text(client_secret, "client_secret")

    def __repr__(self) -> str:
        return f"ClientCredentialsGrant(client_id={self.client_id!r}, client_secret='***')"

    def _static_secrets(self) -> tuple[str, ...]:
        return (self._client_secret,)

    async def _obtain(self, ctx: AuthContext, stale: TokenState | None) -> TokenState:
        return await self._grant(
            ctx, client_credentials_form(self.client_id, self._client_secret), "client_credentials"
        )


_FOREVER = float("inf")


class BearerToken(TokenProvider):
    """A token you supply: a string, or an async callable returning a fresh one.

    The callable may return a string (used until the server answers 401) or a ``Token``
    (also replaced before it expires). A static string cannot be renewed, so its 401 is final.
    """

    kind = "bearer"

    def __init__(self, token: str | Callable[[], Awaitable[str | Token]]) -> None:
        super().__init__()
        if isinstance(token, str):
            self._static: str | None = _check_text(token, "token")
            self._source: Callable[[], Awaitable[str | Token]] | None = None
        elif callable(token):
            self._static, self._source = None, token
        else:
            raise InvalidArgumentType(
                f"token must be a string or an async callable, not {type(token).__name__}"
            )

    def __repr__(self) -> str:
        what = "'***'" if self._static is not None else "<callable>"
        return f"BearerToken({what})"

    def _static_secrets(self) -> tuple[str, ...]:
        return (self._static,) if self._static else ()

    async def on_unauthorized(self, sent: Request, ctx: AuthContext) -> bool:
        if self._source is None:
            return False
        return await super().on_unauthorized(sent, ctx)

    async def _obtain(self, ctx: AuthContext, stale: TokenState | None) -> TokenState:
        now, wall = ctx.monotonic(), ctx.wall()
        if self._source is None:
            assert self._static is not None
            value: str | Token = self._static
        else:
            result = self._source()
            if not inspect.isawaitable(result):
                raise InvalidArgumentType(
                    "the bearer token callable must be async (return an awaitable)"
                )
            value = await result
            ctx.note_grant("bearer")
        if isinstance(value, Token):
            return token_state(value, sent_monotonic=now, sent_wall=wall)
        if not isinstance(value, str) or not value:
            raise AuthenticationError(
                "the bearer token callable returned no token", status_code=401, request=""
            )
        return _static_state(value)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _static_state(value: str) -> TokenState:
    """A caller's token without an expiry: used until the server answers 401."""
    token = Token(access_token=value, issued_at=_EPOCH, expires_in=0, token_type="bearer")  # noqa: S106
    return TokenState(token=token, refresh_at=_FOREVER, expires_at=_FOREVER)
