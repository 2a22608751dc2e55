"""``LocusClient``: every Locus v3 endpoint, typed, on the provider-neutral shell.

Owns: wiring the shell together (transport, limiter, token provider, retry policy,
converter) and the client's own calls (``authenticate``, ``plan``, ``fetch_window``). The
resource groups (``partners``, ``clients``, ``sites``, ``components``) live in
``resources`` and send through ``requester``. Must never: import httpx for sending or
parse bodies itself (``_core`` does), or put a secret in a repr, a log line or an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final, TypeVar, Unpack

from locus_async._core.checks import check_flag, check_id
from locus_async._core.converter import make_converter
from locus_async._core.http import Request, api_root
from locus_async._shell.client import ShellClient, ShellOptions, build_session, env_kwargs
from locus_async._shell.limiter import Priority
from locus_async._shell.session import Session
from locus_async.errors import InvalidArgumentType, UsageError
from locus_async.locus._core.decipher import decipher_locus
from locus_async.locus._core.endpoints import API_PREFIX, data_path
from locus_async.locus._core.query import (
    DataQuery,
    merge_limits,
)
from locus_async.locus._core.windows import (
    Window,
)
from locus_async.locus.auth import (
    BearerToken,
    ClientCredentialsGrant,
    CognitoPasswordGrant,
    PasswordGrant,
    TokenProvider,
    TokenStore,
)
from locus_async.locus.models import Granularity
from locus_async.locus.requester import Requester
from locus_async.locus.resources import ClientsAPI, ComponentsAPI, PartnersAPI, SitesAPI
from locus_async.locus.timeseries import (
    TimeSeries,
    fetch_window,
)

__all__ = ["DEFAULT_BASE_URL", "LocusClient"]

DEFAULT_BASE_URL: Final = "https://api.locusenergy.com"

T = TypeVar("T")


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
        self._bind(self._session)

    def _bind(self, session: Session) -> None:
        """Requests through ``session`` (``with_options`` gives a clone its own)."""
        self._session = session
        self._requester = Requester(
            session, self._converter, limits=self.limits, validate_fields=self.validate_fields
        )
        self.partners = PartnersAPI(self._requester, self.partner_id)
        self.clients = ClientsAPI(self._requester)
        self.sites = SitesAPI(self._requester)
        self.components = ComponentsAPI(self._requester)

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
        grant) or without them (client credentials). ``LOCUS_AUTH=cognito`` signs in with
        Cognito instead: ``LOCUS_COGNITO_CLIENT_ID``, ``LOCUS_COGNITO_REGION`` (or
        ``LOCUS_COGNITO_ENDPOINT``), ``LOCUS_USERNAME`` and ``LOCUS_PASSWORD``.
        ``LOCUS_BASE_URL`` sets the host.
        Keyword arguments are passed to the constructor and win over the environment.
        """
        return cls(**cls._env_kwargs(env, kwargs))

    @classmethod
    def _env_kwargs(cls, env: Mapping[str, str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        return env_kwargs(
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

    async def partner_id(self) -> int:
        """The partner of the signed-in user: the Cognito IdToken's ``custom:partnerId``
        (signing in first if needed). ``partners.*`` calls use it when given no id. Other
        sign-ins do not say: ``UsageError`` then, asking for the id."""
        known = self._auth.partner_id
        if known is None:
            await self.authenticate()
            known = self._auth.partner_id
        if known is None:
            raise UsageError(
                f"this sign-in ({self._auth.kind}) does not say which partner it belongs to: "
                "pass partner_id (a Cognito sign-in carries it as custom:partnerId)"
            )
        return known

    def plan(self, query: DataQuery) -> list[Window] | None:
        """The windows a data call for ``query`` would request (``None`` for latest)."""
        return self._requester.windows(query)

    async def fetch_window(
        self,
        kind: str,
        entity_id: int,
        query: DataQuery,
        window: Window,
        *,
        priority: Priority = Priority.BACKGROUND,
        arrow: bool = False,
    ) -> TimeSeries:
        """One planned window of ``kind`` (``"components"`` or ``"sites"``) ``entity_id``:
        what a backfill fetches, one request through the limiter at ``priority``.
        ``arrow``: decode the body straight into Arrow (``TimeSeries.arrow``) when pyarrow
        and msgspec are installed and the body allows it; the same rows either way."""
        check_flag(arrow, "arrow")
        path = data_path(kind, check_id(entity_id, "entity id"))
        return await fetch_window(self._session, path, query, window, priority, arrow=arrow)


#: ``LOCUS_AUTH`` values: how the credentials in the environment sign in.
AUTH_KINDS: Final = ("oauth", "cognito")


def auth_from_env(env: Mapping[str, str], *, store: TokenStore | None = None) -> TokenProvider:
    """A token provider from ``LOCUS_*`` variables (see ``LocusClient.from_env``);
    ``store``: where a grant's token is shared (a caller's own bearer token has none)."""
    kind = (env.get("LOCUS_AUTH") or "oauth").strip().lower()
    if kind not in AUTH_KINDS:
        raise UsageError(
            f"LOCUS_AUTH={env.get('LOCUS_AUTH')!r} is not one of {', '.join(AUTH_KINDS)}"
        )
    if kind == "cognito":
        return _cognito_from_env(env, store)
    token = env.get("LOCUS_ACCESS_TOKEN")
    if token:
        return BearerToken(token)
    client_id, secret = env.get("LOCUS_CLIENT_ID"), env.get("LOCUS_CLIENT_SECRET")
    user, password = env.get("LOCUS_USERNAME"), env.get("LOCUS_PASSWORD")
    if client_id and secret and user and password:
        return PasswordGrant(
            client_id=client_id,
            client_secret=secret,
            username=user,
            password=password,
            store=store,
        )
    if client_id and secret and not user and not password:
        return ClientCredentialsGrant(client_id=client_id, client_secret=secret, store=store)
    wanted = ("LOCUS_CLIENT_ID", "LOCUS_CLIENT_SECRET", "LOCUS_USERNAME", "LOCUS_PASSWORD")
    missing = [name for name in wanted if not env.get(name)]
    raise UsageError(
        "no Locus credentials: set LOCUS_ACCESS_TOKEN, or LOCUS_CLIENT_ID and "
        "LOCUS_CLIENT_SECRET (plus LOCUS_USERNAME and LOCUS_PASSWORD for the password grant), "
        f"or LOCUS_AUTH=cognito; missing: {', '.join(missing)}"
    )


def _cognito_from_env(env: Mapping[str, str], store: TokenStore | None) -> CognitoPasswordGrant:
    wanted = ("LOCUS_COGNITO_CLIENT_ID", "LOCUS_USERNAME", "LOCUS_PASSWORD")
    missing = [name for name in wanted if not env.get(name)]
    region, endpoint = env.get("LOCUS_COGNITO_REGION"), env.get("LOCUS_COGNITO_ENDPOINT")
    if not region and not endpoint:
        missing.append("LOCUS_COGNITO_REGION (or LOCUS_COGNITO_ENDPOINT)")
    if missing:
        raise UsageError(f"LOCUS_AUTH=cognito needs {', '.join(missing)}")
    if region and endpoint:
        raise UsageError("set LOCUS_COGNITO_REGION or LOCUS_COGNITO_ENDPOINT, not both")
    return CognitoPasswordGrant(
        client_id=env["LOCUS_COGNITO_CLIENT_ID"],
        username=env["LOCUS_USERNAME"],
        password=env["LOCUS_PASSWORD"],
        region=region or None,
        endpoint=endpoint or None,
        store=store,
    )
