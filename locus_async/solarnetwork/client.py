"""``SolarNetClient``: every SolarUser endpoint, typed, on the same shell as ``LocusClient``.

Owns: the public methods grouped by resource (``nodes``, ``node_metadata``,
``user_metadata``, ``datum_metadata``, ``location_metadata``, ``datum_auxiliary``,
``stale_aggregates``, ``streams``, ``instructions``, ``tokens``, ``events``), paging as async
iterators, the instruction helpers (exec with ``resultMaxWait``, queue-and-wait, cancel) and
which calls may be retried. Transport, limiter, retries, errors and decoding are the shared
shell's; SNWS2 signing is ``auth``'s; parameter checks are ``_core.wire``'s; each
resource family is a module of ``resources``, sending through ``requester``.
Must never: put the token secret (or a keystore password) in a repr, a log line or an error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Final, Unpack

from locus_async._core.checks import check_flag
from locus_async._core.converter import make_converter
from locus_async._core.http import api_root
from locus_async._core.pacing import RateLimit
from locus_async._shell.client import ShellClient, ShellOptions, build_session, env_kwargs
from locus_async._shell.session import Session
from locus_async.errors import (
    InvalidArgumentType,
    UsageError,
)
from locus_async.solarnetwork._core import wire
from locus_async.solarnetwork._core.endpoints import (
    API_PREFIX,
    ASSOCIATE_PATH,
    DATUM_METADATA,
    DEFAULT_BASE_URL,
    DEFAULT_LOCATION_METADATA_PREFIX,
    INSTRUCTION_STATES,
    NODES,
    WHOAMI,
)
from locus_async.solarnetwork._core.envelope import (
    decipher_solarnetwork,
    object_decoder,
)
from locus_async.solarnetwork.auth import Snws2Credentials, Snws2Signer
from locus_async.solarnetwork.models import (
    Metadata,
    NodeAssociation,
    SolarNode,
    WhoAmI,
)
from locus_async.solarnetwork.requester import Requester
from locus_async.solarnetwork.resources.datum import (
    DatumAuxiliaryAPI,
    StaleAggregatesAPI,
    StreamsAPI,
)
from locus_async.solarnetwork.resources.events import EventsAPI
from locus_async.solarnetwork.resources.instructions import InstructionsAPI
from locus_async.solarnetwork.resources.metadata import (
    NodeMetadataAPI,
    SourceMetadataAPI,
    UserMetadataAPI,
)
from locus_async.solarnetwork.resources.nodes import NodeCertificate, NodesAPI
from locus_async.solarnetwork.resources.tokens import TokensAPI

__all__ = [
    "API_PREFIX",
    "DEFAULT_BASE_URL",
    "DEFAULT_LOCATION_METADATA_PREFIX",
    "INSTRUCTION_STATES",
    "NodeCertificate",
    "SolarNetClient",
]


def _credentials_from_env(env: Mapping[str, str]) -> Snws2Credentials:
    token, secret = env.get("SN_TOKEN", ""), env.get("SN_SECRET", "")
    if not token or not secret:
        raise UsageError(
            "set SN_TOKEN and SN_SECRET (a SolarNetwork security token and its secret)"
        )
    return Snws2Credentials(token, token_secret=secret)


#: The documented rate rule of the shipped server, per token.
DEFAULT_RATE: Final = RateLimit(burst=2.0, per_second=1.0)
#: The header of a successful answer saying how many requests the token has left.
RATE_REMAINING_HEADER: Final = "x-sn-rate-limit-remaining"


class SolarNetClient(ShellClient):
    """An async client for the SolarNetwork SolarUser API, safe to share between tasks.

    Every request is signed with SNWS2 when it gets its slot (so a request that queued for a
    while still carries a fresh date), goes through one limiter (default one request at a
    time; the server's rate limit is about 1 per second after a burst of 2, and its 429s
    pause the whole credential until the instant it names), and is retried only when safe.

    Arguments: ``credentials`` (``Snws2Credentials``; only ``associate`` works without);
    ``base_url`` (default ``https://data.solarnetwork.net``);
    ``location_metadata_prefix`` (the reference says ``/location/datum/meta``, some servers
    map ``/location/meta``); ``strict`` raises on any response value off the schema and on
    unknown fields (the default forgives them, with a warning); ``rate`` (a ``RateLimit``,
    default the documented burst of 2 then 1 per second; None turns it off) paces requests
    on the client's side, corrected by the server's ``X-SN-Rate-Limit-Remaining``; and the
    shell's
    options, the same as ``LocusClient``'s (``ShellOptions``): ``max_concurrency`` or
    ``limiter``, ``retry``, ``timeouts``, ``transport``, ``verify``, ``max_response_bytes``,
    ``headers``, ``clock``, ``wall``, ``sleep``, ``rng``.
    """

    def __init__(
        self,
        *,
        credentials: Snws2Credentials | None,
        base_url: str = DEFAULT_BASE_URL,
        location_metadata_prefix: str = DEFAULT_LOCATION_METADATA_PREFIX,
        strict: bool = False,
        allow_insecure_http: bool = False,
        rate: RateLimit | None = DEFAULT_RATE,
        **shell: Unpack[ShellOptions],
    ) -> None:
        if credentials is not None and not isinstance(credentials, Snws2Credentials):
            raise InvalidArgumentType(
                f"credentials must be Snws2Credentials, not {type(credentials).__name__}"
            )
        if not isinstance(location_metadata_prefix, str) or not location_metadata_prefix.startswith(
            "/"
        ):
            raise UsageError("location_metadata_prefix must be a path such as '/location/meta'")
        check_flag(strict, "strict")
        check_flag(allow_insecure_http, "allow_insecure_http")
        # the host alone, or with /solaruser or the whole API prefix after it
        self.base_url = api_root(
            base_url, [API_PREFIX, "/solaruser"], allow_insecure_http=allow_insecure_http
        )
        self.location_metadata_prefix = location_metadata_prefix.rstrip("/")
        self._signer = (
            Snws2Signer(credentials, base_url=self.base_url, headers=shell.get("headers"))
            if credentials is not None
            else None
        )
        self._converter = make_converter(strict=strict)
        self._session = build_session(
            "SolarNetClient",
            base_url=self.base_url,
            authenticator=self._signer,
            decipher=decipher_solarnetwork,
            converter=self._converter,
            options=shell,
            rate=rate,
            remaining_header=RATE_REMAINING_HEADER,
        )
        self._bind(self._session)

    def _bind(self, session: Session) -> None:
        """Requests through ``session`` (``with_options`` gives a clone its own)."""
        self._session = session
        requester = Requester(session, self._converter, signs=self._signer is not None)
        self._requester = requester
        self.nodes = NodesAPI(requester)
        self.node_metadata = NodeMetadataAPI(requester)
        self.user_metadata = UserMetadataAPI(requester)
        self.datum_metadata = SourceMetadataAPI(requester, DATUM_METADATA, "node_id")
        self.location_metadata = SourceMetadataAPI(
            requester, self.location_metadata_prefix, "location_id"
        )
        self.datum_auxiliary = DatumAuxiliaryAPI(requester)
        self.stale_aggregates = StaleAggregatesAPI(requester)
        self.streams = StreamsAPI(requester)
        self.instructions = InstructionsAPI(requester)
        self.tokens = TokensAPI(requester)
        self.events = EventsAPI(requester)

    def __repr__(self) -> str:
        creds = self._signer.credentials if self._signer is not None else None
        return (
            f"SolarNetClient(base_url={self.base_url!r}, credentials={creds!r}, "
            f"limiter={self._session.limiter!r})"
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> SolarNetClient:
        """A client from ``SN_TOKEN`` and ``SN_SECRET`` (and ``SN_BASE_URL``); keyword
        arguments win over the environment."""
        return cls(**cls._env_kwargs(env, kwargs))

    @classmethod
    def _env_kwargs(cls, env: Mapping[str, str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        return env_kwargs(
            env,
            kwargs,
            credential="credentials",
            read=_credentials_from_env,
            base_url_variable="SN_BASE_URL",
        )

    # -- account-level calls ----------------------------------------------------------

    async def whoami(self) -> WhoAmI:
        """Who the token is (``GET /whoami``): the cheapest check that signing works."""
        return await self._requester.call("GET", WHOAMI, object_decoder(self._converter, WhoAmI))

    async def associate(
        self, *, username: str, confirmation_key: str, keystore_password: str
    ) -> NodeAssociation:
        """Accept a SolarNode invitation (``POST /solaruser/associate.json``, no token).

        Not retried once sent: an invitation is accepted only once.
        """
        for name, value in (
            ("username", username),
            ("confirmation_key", confirmation_key),
            ("keystore_password", keystore_password),
        ):
            if not isinstance(value, str) or not value:
                raise UsageError(f"{name} must be a non-empty string")
        return await self._requester.call(
            "POST",
            ASSOCIATE_PATH,
            object_decoder(self._converter, NodeAssociation, bare=True),
            form=[
                ("username", username),
                ("confirmationKey", confirmation_key),
                ("keystorePassword", keystore_password),
            ],
            authenticate=False,
            sensitive=True,
        )

    async def nodes_with_metadata(
        self, *, page_size: int = 100
    ) -> AsyncIterator[tuple[SolarNode, Metadata | None]]:
        """Every node of the account with its metadata: one metadata request per page of
        nodes (not one per node)."""
        async for page in self._requester.pages(NODES, SolarNode, [], page_size=page_size):
            if not page.results:
                continue
            ids = [node.id for node in page.results]
            found: dict[int, Metadata] = {}
            async for meta in self.node_metadata.iter(ids, page_size=wire.MAX_PAGE):
                if meta.node_id is not None:
                    found[meta.node_id] = meta
            for node in page.results:
                yield node, found.get(node.id)
