"""Locus token providers: OAuth2 password, refresh and client-credentials grants, the
Cognito sign-in, and the caller's own bearer.

Owns: each provider's auth flow (httpx's pattern over our own types: it yields the grant
requests a token needs, then the caller's request with the token, and once more after a
401), when to obtain a token, single flight (any number of concurrent callers that find
the token stale, or get a 401, cause exactly one token request; waiters wait on an event,
never on a lock held across a yield), the refresh-then-password fallback, and keeping
secrets out of reprs. Must never: send anything itself, or log a token, a secret or a
password.

Each provider keeps its own token, so one provider shared by two clients shares the token.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Final, Protocol

import anyio
import attrs

from locus_async._core.http import Request, Response
from locus_async.errors import (
    AuthenticationError,
    BadRequest,
    InvalidArgumentType,
    TooManyAttempts,
    UsageError,
)
from locus_async.locus._core.cognito import (
    claims_of,
    cognito_endpoint,
    decipher_cognito,
    initiate_auth,
    parse_cognito_token,
    partner_of,
)
from locus_async.locus._core.decipher import decipher_locus
from locus_async.locus._core.tokens import (
    TokenState,
    client_credentials_form,
    parse_token,
    password_form,
    refresh_form,
    refresh_margin,
    token_request,
    token_state,
)
from locus_async.locus.models import Token

if TYPE_CHECKING:
    from locus_async._shell.session import AuthContext, AuthFlow

__all__ = [
    "BearerToken",
    "ClientCredentialsGrant",
    "CognitoPasswordGrant",
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


#: One grant to try: (the request, grant kind).
Attempt = tuple[Request, str]


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
        self._refreshing: anyio.Event | None = None
        self.store = store

    # -- what the session calls -------------------------------------------------------

    def secrets(self) -> tuple[str, ...]:
        """Every secret this provider knows, for redaction."""
        state = self._state
        if state is None:
            return self._static_secrets()
        token = state.token
        return (*self._static_secrets(), token.access_token, token.refresh_token or "")

    def auth_flow(self, request: Request, ctx: AuthContext) -> AuthFlow:
        """``request`` with a valid bearer token: the grants it needs are yielded first (the
        session sends them inside the caller's slot); after a 401 the token is dropped and
        the request yielded once more with a new one, if this provider can renew."""
        return self._flow(request, ctx)

    async def _flow(self, request: Request, ctx: AuthContext) -> AuthFlow:
        for round_ in (0, 1):
            # Single flight by an event, never a lock across a yield: one flow refreshes,
            # the others wait for its event and look again; a refresher that is abandoned
            # (cancelled, failed) sets its event on the way out, so a waiter takes over.
            while not self._fresh_now(ctx):
                running = self._refreshing
                if running is not None:
                    await running.wait()
                    continue
                done = self._refreshing = anyio.Event()
                try:
                    if self.store is not None and await self._adopt_stored(ctx):
                        continue
                    async with self._store_lock():
                        if self.store is not None and await self._adopt_stored(ctx):
                            continue  # another process refreshed while we waited
                        stale = self._state
                        attempts = self._attempts(stale)
                        if not attempts:
                            self._state = await self._direct(ctx, stale)
                        for index, (grant, kind) in enumerate(attempts):
                            sent_monotonic, sent_wall = ctx.monotonic(), ctx.wall()
                            answer = yield grant
                            try:
                                granted = self._accept(answer, ctx, kind, sent_monotonic, sent_wall)
                            except AuthenticationError as exc:
                                # A lockout is never answered with another attempt.
                                if index == len(attempts) - 1 or isinstance(exc, TooManyAttempts):
                                    raise
                                logger.warning(
                                    "%s grant refused; falling back to the next grant once", kind
                                )
                                continue
                            self._state = self._adopt(granted, kind, stale)
                            break
                        await self._save_stored(ctx)
                finally:
                    self._refreshing = None
                    done.set()
            current = self._state
            assert current is not None
            response = yield _with_bearer(request, current)
            if response.status_code != 401 or not self._renewable or round_ == 1:
                return
            await self._drop(current.token.access_token)

    @property
    def _renewable(self) -> bool:
        """Whether a 401 is worth a new token (a caller's static token is not)."""
        return True

    async def _drop(self, used: str) -> None:
        """A 401 came back for the token ``used``: never use it again, here or in the store."""
        state = self._state
        if state is not None and state.token.access_token == used:
            self._state = attrs.evolve(state, refresh_at=float("-inf"))
            logger.info("token rejected with 401; a new one will be obtained")
        if self.store is not None:
            await self.store.invalidate(used)

    def _fresh_now(self, ctx: AuthContext) -> bool:
        state = self._state
        return state is not None and not state.needs_refresh(ctx.monotonic())

    # -- sharing through a store ------------------------------------------------------

    def _store_lock(self) -> AbstractAsyncContextManager[Any]:
        """The store's lock (a distributed lock with a timeout, the one lock held across a
        grant: other processes must not grant meanwhile; the session always closes the flow,
        which releases it), or nothing without a store."""
        return self.store.lock() if self.store is not None else contextlib.nullcontext()

    async def _adopt_stored(self, ctx: AuthContext) -> bool:
        """Take the stored token if it is fresh; keep a stale one as the refresh base."""
        stored = await self._load(ctx)
        if stored is None:
            return False
        if not stored.needs_refresh(ctx.monotonic()):
            self._state = stored
            return True
        if self._state is None or self._state.needs_refresh(ctx.monotonic()):
            self._state = stored  # its refresh token is the newest one
        return False

    async def _save_stored(self, ctx: AuthContext) -> None:
        state = self._state
        if self.store is None or state is None:
            return
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

    # -- what each grant type says ----------------------------------------------------

    def _attempts(self, stale: TokenState | None) -> list[Attempt]:
        """The grants to try, in order: (form, grant kind)."""
        raise NotImplementedError

    #: The grant kind whose answer may lack a refresh token (the old one is kept then).
    _refresh_kind: ClassVar[str | None] = None

    def _adopt(self, state: TokenState, kind: str, stale: TokenState | None) -> TokenState:
        """A granted token, as it is kept: a refresh answer without a refresh token keeps
        the one it was refreshed with."""
        if kind == self._refresh_kind and stale is not None:
            return _keep_refresh_token(state, stale)
        return state

    async def _direct(self, ctx: AuthContext, stale: TokenState | None) -> TokenState:
        """A token obtained without a grant request (the caller's own)."""
        raise NotImplementedError

    def _static_secrets(self) -> tuple[str, ...]:
        return ()

    # -- who signed in ----------------------------------------------------------------

    @property
    def claims(self) -> dict[str, Any]:
        """The current token's claims when it is a JWT (Cognito's IdToken), read without
        checking its signature; ``{}`` before sign-in or for an opaque token."""
        state = self._state
        return claims_of(state.token.access_token) if state is not None else {}

    @property
    def partner_id(self) -> int | None:
        """The Locus partner the signed-in user belongs to (the IdToken's
        ``custom:partnerId``), or None when the token does not say (OAuth tokens)."""
        return partner_of(self.claims)

    # -- one grant's answer -----------------------------------------------------------

    def _accept(
        self,
        response: Response,
        ctx: AuthContext,
        kind: str,
        sent_monotonic: float,
        sent_wall: float,
    ) -> TokenState:
        token = self._granted(response, ctx, kind, sent_wall)
        ctx.note_grant(kind)
        logger.info("obtained a token with the %s grant (expires in %s s)", kind, token.expires_in)
        return token_state(token, sent_monotonic=sent_monotonic, sent_wall=sent_wall)

    def _granted(self, response: Response, ctx: AuthContext, kind: str, sent_wall: float) -> Token:
        """The token in a grant's answer, or the error it carries (an OAuth token endpoint's)."""
        try:
            decipher_locus(response, now=sent_wall, secrets=self.secrets())
        except BadRequest as exc:
            # OAuth servers answer a bad grant with 400 invalid_grant: that is an auth failure.
            raise AuthenticationError(
                exc.message, status_code=exc.status_code, request=exc.request
            ) from None
        return parse_token(response.content, ctx.converter)


def _with_bearer(request: Request, state: TokenState) -> Request:
    return request.with_headers(("Authorization", f"Bearer {state.token.access_token}"))


def _keep_refresh_token(new: TokenState, old: TokenState) -> TokenState:
    """The refresh grant's response may have no refresh token: keep the old one."""
    if new.token.refresh_token or not old.token.refresh_token:
        return new
    return attrs.evolve(new, token=attrs.evolve(new.token, refresh_token=old.token.refresh_token))


class PasswordGrant(TokenProvider):
    """Resource-owner password grant; refreshes with the refresh token, and falls back to
    the password grant once if the refresh token is refused."""

    kind = "password"
    _refresh_kind = "refresh_token"

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

    def _attempts(self, stale: TokenState | None) -> list[Attempt]:
        attempts = []
        if stale is not None and stale.refresh_token:
            refresh = refresh_form(self.client_id, self._client_secret, stale.refresh_token)
            attempts.append((token_request(refresh), "refresh_token"))
        password = password_form(self.client_id, self._client_secret, self.username, self._password)
        attempts.append((token_request(password), "password"))
        return attempts


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

    def _current(self, stale: TokenState | None) -> str:
        if stale is not None and stale.refresh_token:
            return stale.refresh_token
        return self._refresh_token

    def _attempts(self, stale: TokenState | None) -> list[Attempt]:
        form = refresh_form(self.client_id, self._client_secret, self._current(stale))
        return [(token_request(form), "refresh_token")]

    def _adopt(self, state: TokenState, kind: str, stale: TokenState | None) -> TokenState:
        current = self._current(stale)
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

    def _attempts(self, stale: TokenState | None) -> list[Attempt]:
        form = client_credentials_form(self.client_id, self._client_secret)
        return [(token_request(form), "client_credentials")]


class CognitoPasswordGrant(TokenProvider):
    """Sign in to AWS Cognito (SolarNOC / AlsoEnergy accounts) and call the API with the
    Cognito **IdToken** as the bearer.

    ``USER_PASSWORD_AUTH`` with a public app client (``client_id``, no secret), sent as
    Cognito's JSON ``InitiateAuth`` to ``https://cognito-idp.<region>.amazonaws.com`` or to
    ``endpoint``. Before expiry it refreshes with ``REFRESH_TOKEN_AUTH`` (whose answer has
    no new refresh token, so the first one is kept), and signs in again once if the
    refresh token is refused. Single flight and ``store`` sharing as for the OAuth
    grants. Cognito's refusals are typed (``WrongCredentials``, ``UnknownUser``,
    ``UserNotConfirmed``, ``PasswordResetRequired``, ``TooManyAttempts``,
    ``ChallengeRequired``) and never retried. ``partner_id`` is the IdToken's
    ``custom:partnerId``.
    """

    kind = "cognito"
    _refresh_kind = "REFRESH_TOKEN_AUTH"

    def __init__(
        self,
        *,
        client_id: str,
        username: str,
        password: str,
        region: str | None = None,
        endpoint: str | None = None,
        store: TokenStore | None = None,
    ) -> None:
        super().__init__(store=store)
        self.client_id = _check_text(client_id, "client_id")
        self.username = _check_text(username, "username")
        self._password = _check_text(password, "password")
        self.region = region
        self.endpoint = cognito_endpoint(region=region, endpoint=endpoint)

    def __repr__(self) -> str:
        return (
            f"CognitoPasswordGrant(endpoint={self.endpoint!r}, client_id={self.client_id!r}, "
            f"username={self.username!r}, password='***')"
        )

    def _static_secrets(self) -> tuple[str, ...]:
        return (self._password,)

    def _attempts(self, stale: TokenState | None) -> list[Attempt]:
        attempts = []
        if stale is not None and stale.refresh_token:
            refresh = {"REFRESH_TOKEN": stale.refresh_token}
            grant = initiate_auth(self.endpoint, self.client_id, "REFRESH_TOKEN_AUTH", refresh)
            attempts.append((grant, "REFRESH_TOKEN_AUTH"))
        password = {"USERNAME": self.username, "PASSWORD": self._password}
        grant = initiate_auth(self.endpoint, self.client_id, "USER_PASSWORD_AUTH", password)
        attempts.append((grant, "USER_PASSWORD_AUTH"))
        return attempts

    def _granted(self, response: Response, ctx: AuthContext, kind: str, sent_wall: float) -> Token:
        refresh = kind == "REFRESH_TOKEN_AUTH"
        decipher_cognito(response, secrets=self.secrets(), refresh=refresh)
        return parse_cognito_token(response, sent_wall=sent_wall)


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

    @property
    def _renewable(self) -> bool:
        return self._source is not None

    def _attempts(self, stale: TokenState | None) -> list[Attempt]:
        return []  # no grant request: the token is the caller's

    async def _direct(self, ctx: AuthContext, stale: TokenState | None) -> TokenState:
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
