"""``SolarNetClient``: every SolarUser endpoint, typed, on the same shell as ``LocusClient``.

Owns: the public methods grouped by resource (``nodes``, ``node_metadata``,
``user_metadata``, ``datum_metadata``, ``location_metadata``, ``datum_auxiliary``,
``stale_aggregates``, ``streams``, ``instructions``, ``tokens``, ``events``), paging as async
iterators, the instruction helpers (exec with ``resultMaxWait``, queue-and-wait, cancel) and
which calls may be retried. Transport, limiter, retries, errors and decoding are the shared
shell's; SNWS2 signing is ``_signer``'s; parameter checks are ``_wire``'s.
Must never: put the token secret (or a keystore password) in a repr, a log line or an error.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, Literal, TypeVar, Unpack
from urllib.parse import quote

import orjson

from .._core.checks import check_flag
from .._core.converter import make_converter
from .._core.http import Request, Response, api_root
from .._core.query import check_id
from .._core.windows import resolve_tz
from .._limiter import Priority
from .._shell import ShellClient, ShellOptions, build_session
from ..errors import InstructionTimeout, InvalidArgumentType, ResponseDecodeError, UsageError
from . import _wire as wire
from ._envelope import (
    bool_decoder,
    decipher_solarnetwork,
    first_decoder,
    list_decoder,
    object_decoder,
    page_decoder,
    success_decoder,
)
from ._signer import Snws2Credentials, Snws2Signer
from .filters import parse_filter
from .models import (
    DatumAuxiliary,
    Instruction,
    Metadata,
    NodeAssociation,
    NodeCertificateInfo,
    Page,
    SecurityToken,
    SolarNode,
    StaleAggregate,
    StreamMetadata,
    StreamMetadataIds,
    UserEvent,
    WhoAmI,
)

__all__ = [
    "API_PREFIX",
    "DEFAULT_BASE_URL",
    "DEFAULT_LOCATION_METADATA_PREFIX",
    "INSTRUCTION_STATES",
    "NodeCertificate",
    "SolarNetClient",
]

DEFAULT_BASE_URL: Final = "https://data.solarnetwork.net"
API_PREFIX: Final = "/solaruser/api/v1/sec"
ASSOCIATE_PATH: Final = "/solaruser/associate.json"
#: The reference documents this path; SolarNetwork's server code maps ``/location/meta``.
DEFAULT_LOCATION_METADATA_PREFIX: Final = "/location/datum/meta"

INSTRUCTION_STATES: Final = (
    "Unknown",
    "Queuing",
    "Queued",
    "Received",
    "Executing",
    "Declined",
    "Completed",
)
TOKEN_TYPES: Final = ("ReadNodeData", "User")
TOKEN_STATUSES: Final = ("Active", "Disabled")
STALE_KINDS: Final = ("h", "d", "m")

JSON_TYPE: Final = "application/json;charset=UTF-8"
FORM_TYPE: Final = "application/x-www-form-urlencoded;charset=UTF-8"

T = TypeVar("T")

_SORTS: Final = {
    "datum_auxiliary": ("created", "node", "source", "updated"),
    "stale": ("created", "kind", "node", "source", "start"),
    "node_metadata": ("created", "node", "updated"),
}


class NodeCertificate:
    """A node's PKCS#12 keystore (encrypted with the keystore password) and its file name."""

    def __init__(self, node_id: int, filename: str, content: bytes) -> None:
        self.node_id = node_id
        self.filename = filename
        self.content = content

    def __repr__(self) -> str:
        size = len(self.content)
        return f"NodeCertificate(node_id={self.node_id}, filename={self.filename!r}, {size} bytes)"


def _credentials_from_env(env: Mapping[str, str]) -> Snws2Credentials:
    token, secret = env.get("SN_TOKEN", ""), env.get("SN_SECRET", "")
    if not token or not secret:
        raise UsageError(
            "set SN_TOKEN and SN_SECRET (a SolarNetwork security token and its secret)"
        )
    return Snws2Credentials(token, token_secret=secret)


def _segment(value: str) -> str:
    return quote(value, safe="")


class SolarNetClient(ShellClient):
    """An async client for the SolarNetwork SolarUser API, safe to share between tasks.

    Every request is signed with SNWS2 when it gets its slot (so a request that queued for a
    while still carries a fresh date), goes through one limiter (default one request at a
    time; the server's rate limit is about 1 per second after a burst of 2, and its 429s
    pause the whole credential until the instant it names), and is retried only when safe.

    Arguments: ``credentials`` (``Snws2Credentials``; only ``associate`` works without);
    ``base_url`` (default ``https://data.solarnetwork.net``);
    ``location_metadata_prefix`` (the reference says ``/location/datum/meta``, some servers
    map ``/location/meta``); ``strict`` rejects unknown response fields; and the shell's
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
            Snws2Signer(credentials, base_url=self.base_url) if credentials is not None else None
        )
        self._converter = make_converter(strict=strict)
        self._session = build_session(
            "SolarNetClient",
            base_url=self.base_url,
            authenticator=self._signer,
            decipher=decipher_solarnetwork,
            converter=self._converter,
            options=shell,
        )
        self.nodes = NodesAPI(self)
        self.node_metadata = NodeMetadataAPI(self)
        self.user_metadata = UserMetadataAPI(self)
        self.datum_metadata = SourceMetadataAPI(self, "/datum/meta", "node_id")
        self.location_metadata = SourceMetadataAPI(
            self, self.location_metadata_prefix, "location_id"
        )
        self.datum_auxiliary = DatumAuxiliaryAPI(self)
        self.stale_aggregates = StaleAggregatesAPI(self)
        self.streams = StreamsAPI(self)
        self.instructions = InstructionsAPI(self)
        self.tokens = TokensAPI(self)
        self.events = EventsAPI(self)

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
        return cls._configured(
            env,
            kwargs,
            credential="credentials",
            read=_credentials_from_env,
            base_url_variable="SN_BASE_URL",
        )

    # -- one call ---------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        decode: Callable[[Response], T],
        *,
        params: Iterable[wire.Param] = (),
        json: bytes | None = None,
        form: Iterable[wire.Param] | None = None,
        retry_safe: bool | None = None,
        server_wait: float = 0.0,
        authenticate: bool = True,
        sensitive: bool = False,
        accept: str | None = None,
    ) -> T:
        """Send one request under the shell's limiter, signing and retry policy.

        ``retry_safe`` defaults to True for GET, PUT and DELETE (sending them twice does no
        harm) and False otherwise; calls that merge (metadata add, policy add) pass True.
        """
        if authenticate and self._signer is None:
            raise UsageError("this call needs credentials: pass Snws2Credentials to the client")
        headers: list[tuple[str, str]] = []
        content = b""
        if json is not None:
            headers.append(("Content-Type", JSON_TYPE))
            content = json
        elif form is not None:
            headers.append(("Content-Type", FORM_TYPE))
            content = wire.form_body(form)
        if accept is not None:
            headers.append(("Accept", accept))
        request = Request(
            method,
            (API_PREFIX + path) if authenticate else path,
            tuple(params),
            tuple(headers),
            content,
            retry_safe=method in ("GET", "PUT", "DELETE") if retry_safe is None else retry_safe,
            authenticate=authenticate,
            sensitive=sensitive,
            server_wait=server_wait,
        )
        return await self._session.call(request, decode, priority=Priority.INTERACTIVE)

    async def _pages(
        self,
        path: str,
        item: type[T],
        params: list[wire.Param],
        *,
        page_size: int,
    ) -> AsyncIterator[Page[T]]:
        """Every page of a paged list, from offset 0 until the total is reached. Totals are
        asked for, so a server that caps pages below ``page_size`` loses nothing."""
        decode = page_decoder(self._converter, item)
        offset = largest = 0
        while True:
            page = await self._call(
                "GET",
                path,
                decode,
                params=params + wire.page_params(page_size, offset, count=True),
            )
            if page.starting_offset != offset:
                raise ResponseDecodeError(
                    f"asked for offset {offset} but the page starts at {page.starting_offset}; "
                    "paging on would repeat or skip items",
                    path="$.data.startingOffset",
                    request=f"GET {API_PREFIX}{path}",
                )
            yield page
            got = len(page.results)
            offset += got
            if not wire.more_pages(
                got=got, asked=page_size, offset=offset, total=page.total_results, largest=largest
            ):
                return
            largest = max(largest, got)

    def _items(
        self, path: str, item: type[T], params: list[wire.Param], *, page_size: int
    ) -> AsyncIterator[T]:
        """Every item of a paged list; arguments are checked now, not at the first item."""
        wire.page_params(page_size, 0, count=False)
        return self._each(self._pages(path, item, params, page_size=page_size))

    @staticmethod
    async def _each(pages: AsyncIterator[Page[T]]) -> AsyncIterator[T]:
        async for page in pages:
            for result in page.results:
                yield result

    # -- account-level calls ----------------------------------------------------------

    async def whoami(self) -> WhoAmI:
        """Who the token is (``GET /whoami``): the cheapest check that signing works."""
        return await self._call("GET", "/whoami", object_decoder(self._converter, WhoAmI))

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
        return await self._call(
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
        async for page in self._pages("/nodes", SolarNode, [], page_size=page_size):
            if not page.results:
                continue
            ids = [node.id for node in page.results]
            found: dict[int, Metadata] = {}
            async for meta in self.node_metadata.iter(ids, page_size=wire.MAX_PAGE):
                if meta.node_id is not None:
                    found[meta.node_id] = meta
            for node in page.results:
                yield node, found.get(node.id)


class _Group:
    def __init__(self, client: SolarNetClient) -> None:
        self._client = client

    @property
    def _converter(self) -> Any:
        return self._client._converter


class NodesAPI(_Group):
    """``/nodes``: list (paged), archived list and update, certificates."""

    def iter(self, *, page_size: int = 100) -> AsyncIterator[SolarNode]:
        """Every node of the account, page by page."""
        return self._client._items("/nodes", SolarNode, [], page_size=page_size)

    async def list(self, *, page_size: int = 100) -> builtins.list[SolarNode]:
        return [node async for node in self.iter(page_size=page_size)]

    async def page(self, *, offset: int = 0, page_size: int = 100) -> Page[SolarNode]:
        """One page, with ``total_results``."""
        return await self._client._call(
            "GET",
            "/nodes",
            page_decoder(self._converter, SolarNode),
            params=wire.page_params(page_size, offset, count=True),
        )

    async def archived(self) -> builtins.list[SolarNode]:
        return await self._client._call(
            "GET", "/nodes/archived", list_decoder(self._converter, SolarNode)
        )

    async def set_archived(self, node_ids: int | Iterable[int], archived: bool = True) -> None:
        """Archive (or with ``archived=False`` restore) nodes; safe to repeat."""
        if not isinstance(archived, bool):
            raise InvalidArgumentType("archived must be a bool")
        ids = wire.id_list(node_ids, "node_ids")
        await self._client._call(
            "POST",
            "/nodes/archived",
            success_decoder,
            form=[("nodeIds", ",".join(map(str, ids))), ("archived", str(archived).lower())],
            retry_safe=True,
        )

    async def create_certificate(
        self, *, time_zone: str, country: str, keystore_password: str
    ) -> NodeCertificateInfo:
        """Create a node and its certificate without an invitation. The password travels in
        the signed form body (never in the URL) and is not retried once sent."""
        zone = resolve_tz(time_zone).key
        if not isinstance(country, str) or len(country) != 2 or not country.isalpha():
            raise UsageError(f"country must be a 2-letter code such as 'NZ', got {country!r}")
        if not isinstance(keystore_password, str) or not keystore_password:
            raise UsageError("keystore_password must be a non-empty string")
        return await self._client._call(
            "POST",
            "/nodes/create-cert",
            object_decoder(self._converter, NodeCertificateInfo),
            form=[
                ("timeZone", zone),
                ("country", country.upper()),
                ("keystorePassword", keystore_password),
            ],
            sensitive=True,
        )

    async def certificate(self, node_id: int) -> NodeCertificate:
        """Download a node's PKCS#12 keystore (``GET /nodes/cert/{nodeId}``)."""
        ident = check_id(node_id, "node_id")

        def decode(response: Response) -> NodeCertificate:
            disposition = response.header("content-disposition") or ""
            name = f"solarnode-{ident}.p12"
            if "filename=" in disposition:
                name = disposition.split("filename=", 1)[1].strip().strip('"') or name
            return NodeCertificate(ident, os.path.basename(name), response.content)

        return await self._client._call(
            "GET",
            f"/nodes/cert/{ident}",
            decode,
            accept="application/x-pkcs12, application/octet-stream, application/json",
        )


class _MetadataDocument(_Group):
    """Merge (POST), replace (PUT) and delete one metadata document at ``where``."""

    async def _merge(self, where: tuple[str, builtins.list[wire.Param]], document: Any) -> None:
        path, params = where
        await self._client._call(
            "POST",
            path,
            success_decoder,
            params=params,
            json=wire.metadata_body(document),
            retry_safe=True,
        )

    async def _replace(self, where: tuple[str, builtins.list[wire.Param]], document: Any) -> None:
        path, params = where
        await self._client._call(
            "PUT", path, success_decoder, params=params, json=wire.metadata_body(document)
        )

    async def _remove(self, where: tuple[str, builtins.list[wire.Param]]) -> None:
        path, params = where
        await self._client._call("DELETE", path, success_decoder, params=params)


MetadataDocument = Metadata | Mapping[str, Any]


class NodeMetadataAPI(_MetadataDocument):
    """``/nodes/meta``: ``iter``/``list`` (optionally by metadata filter), ``get``, and
    ``add`` (merge), ``store`` (replace), ``delete`` of one node's document."""

    @staticmethod
    def _where(node_id: int) -> tuple[str, builtins.list[wire.Param]]:
        return f"/nodes/meta/{check_id(node_id, 'node_id')}", []

    def iter(
        self,
        node_ids: int | Iterable[int] | None = None,
        *,
        metadata_filter: str | None = None,
        sort: str | Sequence[str] | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[Metadata]:
        """Metadata of the given nodes (all the token may see when None) matching the
        filter, e.g. ``(&(/m/hardware=raspberry-pi)(t=special))``."""
        params: builtins.list[wire.Param] = []
        if node_ids is not None:
            params.append(("nodeIds", ",".join(map(str, wire.id_list(node_ids, "node_ids")))))
        if metadata_filter is not None:
            parse_filter(metadata_filter)
            params.append(("metadataFilter", metadata_filter))
        params += wire.sort_params(sort, _SORTS["node_metadata"])
        return self._client._items("/nodes/meta", Metadata, params, page_size=page_size)

    async def list(
        self,
        node_ids: int | Iterable[int] | None = None,
        *,
        metadata_filter: str | None = None,
        sort: str | Sequence[str] | None = None,
    ) -> builtins.list[Metadata]:
        return [m async for m in self.iter(node_ids, metadata_filter=metadata_filter, sort=sort)]

    async def get(self, node_id: int) -> Metadata | None:
        """The node's metadata, or None when it has none."""
        path, _ = self._where(node_id)
        return await self._client._call("GET", path, first_decoder(self._converter, Metadata))

    async def add(self, node_id: int, document: MetadataDocument) -> None:
        """Merge ``document`` into the node's metadata (created when absent)."""
        await self._merge(self._where(node_id), document)

    async def store(self, node_id: int, document: MetadataDocument) -> None:
        """Replace the node's metadata with ``document``."""
        await self._replace(self._where(node_id), document)

    async def delete(self, node_id: int) -> None:
        await self._remove(self._where(node_id))


class UserMetadataAPI(_MetadataDocument):
    """``/users/meta``: the token's user's metadata document."""

    _WHERE: Final[tuple[str, builtins.list[wire.Param]]] = ("/users/meta", [])

    async def get(self) -> Metadata | None:
        return await self._client._call(
            "GET", "/users/meta", first_decoder(self._converter, Metadata)
        )

    async def add(self, document: MetadataDocument) -> None:
        await self._merge(self._WHERE, document)

    async def store(self, document: MetadataDocument) -> None:
        await self._replace(self._WHERE, document)

    async def delete(self) -> None:
        await self._remove(self._WHERE)


class SourceMetadataAPI(_MetadataDocument):
    """Datum source metadata (owner: a node) or location source metadata (owner: a
    location): ``add``, ``store``, ``delete``. The source id travels as a query parameter,
    since it usually contains ``/``."""

    def __init__(self, client: SolarNetClient, prefix: str, owner: str) -> None:
        super().__init__(client)
        self._prefix = prefix
        self._owner = owner

    def _where(self, owner_id: int, source_id: str) -> tuple[str, builtins.list[wire.Param]]:
        path = f"{self._prefix}/{check_id(owner_id, self._owner)}"
        return path, wire.source_params([source_id], "source_id")

    async def add(self, owner_id: int, source_id: str, document: MetadataDocument) -> None:
        await self._merge(self._where(owner_id, source_id), document)

    async def store(self, owner_id: int, source_id: str, document: MetadataDocument) -> None:
        await self._replace(self._where(owner_id, source_id), document)

    async def delete(self, owner_id: int, source_id: str) -> None:
        await self._remove(self._where(owner_id, source_id))


class DatumAuxiliaryAPI(_Group):
    """``/datum/auxiliary``: list (paged), store, move, get, delete."""

    def iter(
        self,
        node_ids: int | Iterable[int],
        *,
        source_ids: str | Iterable[str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        sort: str | Sequence[str] | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[DatumAuxiliary]:
        params = wire.node_params(node_ids)
        if source_ids is not None:
            params += wire.source_params(source_ids)
        if start is not None:
            params.append(("startDate", wire.utc_instant(start, "start")))
        if end is not None:
            params.append(("endDate", wire.utc_instant(end, "end")))
        params += wire.sort_params(sort, _SORTS["datum_auxiliary"])
        return self._client._items("/datum/auxiliary", DatumAuxiliary, params, page_size=page_size)

    async def list(
        self, node_ids: int | Iterable[int], **kwargs: Any
    ) -> builtins.list[DatumAuxiliary]:
        return [r async for r in self.iter(node_ids, **kwargs)]

    async def store(self, record: DatumAuxiliary) -> None:
        """Add or replace the record with the same (type, node, created, source)."""
        body = wire.datum_auxiliary_wire(record, epoch=False)
        if "final" not in body or "start" not in body:
            raise UsageError("a datum auxiliary record needs both final and start samples")
        await self._client._call(
            "POST", "/datum/auxiliary", success_decoder, json=orjson.dumps(body), retry_safe=True
        )

    async def move(
        self,
        *,
        type: str,
        node_id: int,
        created: datetime,
        source_id: str,
        to: DatumAuxiliary,
    ) -> bool:
        """Move the record at (type, node, created, source) to ``to``'s key, replacing its
        values. False when no record had the old key."""
        body = {
            "from": wire.datum_auxiliary_key(type, node_id, created, source_id, epoch=True),
            "to": wire.datum_auxiliary_wire(to, epoch=True),
        }
        return await self._client._call(
            "POST", "/datum/auxiliary/move", bool_decoder, json=orjson.dumps(body)
        )

    def _key_params(
        self, type_: str, node_id: int, created: datetime, source_id: str
    ) -> builtins.list[wire.Param]:
        key = wire.datum_auxiliary_key(type_, node_id, created, source_id, epoch=False)
        return [
            ("type", key["type"]),
            ("nodeId", str(key["nodeId"])),
            ("date", key["created"]),
            ("sourceId", key["sourceId"]),
        ]

    async def get(
        self,
        *,
        type: str,
        node_id: int,
        created: datetime,
        source_id: str,
    ) -> DatumAuxiliary:
        return await self._client._call(
            "GET",
            "/datum/auxiliary",
            object_decoder(self._converter, DatumAuxiliary),
            params=self._key_params(type, node_id, created, source_id),
        )

    async def delete(
        self,
        *,
        type: str,
        node_id: int,
        created: datetime,
        source_id: str,
    ) -> None:
        await self._client._call(
            "DELETE",
            "/datum/auxiliary",
            success_decoder,
            params=self._key_params(type, node_id, created, source_id),
        )


class StaleAggregatesAPI(_Group):
    """``/datum/maint/agg/stale``: list (paged) and mark."""

    def iter(
        self,
        node_ids: int | Iterable[int],
        *,
        source_ids: str | Iterable[str] | None = None,
        kind: Literal["h", "d", "m"] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        sort: str | Sequence[str] | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[StaleAggregate]:
        params = wire.node_params(node_ids)
        if source_ids is not None:
            params += wire.source_params(source_ids)
        if kind is not None:
            if kind not in STALE_KINDS:
                raise UsageError(f"kind must be one of h, d, m, got {kind!r}")
            params.append(("type", kind))
        if start is not None:
            params.append(("startDate", wire.utc_minute(start, "start")))
        if end is not None:
            params.append(("endDate", wire.utc_minute(end, "end")))
        params += wire.sort_params(sort, _SORTS["stale"])
        return self._client._items(
            "/datum/maint/agg/stale", StaleAggregate, params, page_size=page_size
        )

    async def list(
        self, node_ids: int | Iterable[int], **kwargs: Any
    ) -> builtins.list[StaleAggregate]:
        return [s async for s in self.iter(node_ids, **kwargs)]

    async def mark(
        self,
        node_ids: int | Iterable[int],
        source_ids: str | Iterable[str],
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        local_start: datetime | None = None,
        local_end: datetime | None = None,
    ) -> None:
        """Mark aggregates stale so they are recomputed: a UTC range (``start``/``end``,
        aware) or a node-local one (``local_start``/``local_end``, naive). Safe to repeat."""
        form = wire.node_params(node_ids) + wire.source_params(source_ids)
        if (start is None) != (end is None) or (local_start is None) != (local_end is None):
            raise UsageError("give both ends of the range")
        if (start is None) == (local_start is None):
            raise UsageError("give start/end (UTC) or local_start/local_end, one pair")
        if start is not None:
            form += [
                ("startDate", wire.utc_minute(start, "start")),
                ("endDate", wire.utc_minute(end, "end")),
            ]
        else:
            form += [
                ("localStartDate", wire.local_minute(local_start, "local_start")),
                ("localEndDate", wire.local_minute(local_end, "local_end")),
            ]
        await self._client._call(
            "POST", "/datum/maint/agg/stale", success_decoder, form=form, retry_safe=True
        )


def _stream_id(value: object) -> str:
    if not isinstance(value, str) or not value or "/" in value:
        raise UsageError(f"stream_id must be a stream UUID string, got {value!r}")
    return value


def _names(value: object, name: str) -> str:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidArgumentType(f"{name} must be a list of property names")
    items = list(value)
    if not items or not all(isinstance(v, str) and v and "," not in v for v in items):
        raise UsageError(f"{name} must be non-empty property names without commas")
    return ",".join(items)


class StreamsAPI(_Group):
    """``/datum/stream/meta/node/{streamId}``: view, update ids, update names."""

    async def get(self, stream_id: str) -> StreamMetadata:
        return await self._client._call(
            "GET",
            f"/datum/stream/meta/node/{_segment(_stream_id(stream_id))}",
            object_decoder(self._converter, StreamMetadata),
        )

    async def update_ids(
        self, stream_id: str, *, node_id: int | None = None, source_id: str | None = None
    ) -> StreamMetadataIds:
        """Move the stream to another node and/or source id (omitted ones stay)."""
        params: builtins.list[wire.Param] = []
        if node_id is not None:
            params.append(("nodeId", str(check_id(node_id, "node_id"))))
        if source_id is not None:
            params += wire.source_params([source_id], "source_id")
        if not params:
            raise UsageError("give node_id, source_id or both")
        return await self._client._call(
            "PATCH",
            f"/datum/stream/meta/node/{_segment(_stream_id(stream_id))}",
            object_decoder(self._converter, StreamMetadataIds),
            params=params,
            retry_safe=True,
        )

    async def update(
        self,
        stream_id: str,
        *,
        node_id: int | None = None,
        source_id: str | None = None,
        instantaneous: Sequence[str] | None = None,
        accumulating: Sequence[str] | None = None,
        status: Sequence[str] | None = None,
    ) -> StreamMetadata | None:
        """Rename or add property names (lists may not shrink), or move the stream. None
        when the server would not update it (for example a list shorter than the stream's)."""
        form: builtins.list[wire.Param] = []
        if node_id is not None:
            form.append(("nodeId", str(check_id(node_id, "node_id"))))
        if source_id is not None:
            form += wire.source_params([source_id], "source_id")
        for key, value in (("i", instantaneous), ("a", accumulating), ("s", status)):
            if value is not None:
                form.append((key, _names(value, key)))
        if not form:
            raise UsageError("nothing to update")
        return await self._client._call(
            "POST",
            f"/datum/stream/meta/node/{_segment(_stream_id(stream_id))}",
            first_decoder(self._converter, StreamMetadata),
            form=form,
            retry_safe=True,
        )


def _instruction_ids(values: object) -> builtins.list[int]:
    return wire.id_list(values, "instruction_ids")


class InstructionsAPI(_Group):
    """``/instr``: queue (``add``), ``exec`` (wait server-side), list, view, active,
    pending, state updates, and the helpers ``wait``, ``queue_and_wait`` and ``cancel``.

    Queueing is never retried once it may have reached the server (it would queue twice);
    a 429 or a connection that never opened is retried.
    """

    def _body(
        self,
        node_ids: int | Iterable[int],
        topic: str,
        params: Mapping[str, object] | Iterable[tuple[str, object]] | None,
        execution_date: datetime | str | None,
        encoding: Literal["auto", "json", "form"],
    ) -> dict[str, Any]:
        ids = wire.id_list(node_ids, "node_ids")
        name = wire.check_topic(topic)
        pairs = wire.parse_instruction_params(params, execution_date)
        if encoding not in ("auto", "json", "form"):
            raise UsageError("encoding must be 'auto', 'json' or 'form'")
        if encoding == "json" and len(ids) > 1:
            raise UsageError("the JSON form takes one node; use encoding='form' for several")
        if encoding == "form" or len(ids) > 1:
            return {"form": wire.instruction_form(ids, name, pairs)}
        return {"json": wire.instruction_json(ids[0], name, pairs)}

    async def add(
        self,
        node_ids: int | Iterable[int],
        topic: str,
        params: Mapping[str, object] | Iterable[tuple[str, object]] | None = None,
        *,
        execution_date: datetime | str | None = None,
        encoding: Literal["auto", "json", "form"] = "auto",
    ) -> builtins.list[Instruction]:
        """Queue ``topic`` for each node (one instruction per node). ``execution_date``
        (aware datetime) defers execution on the node."""
        body = self._body(node_ids, topic, params, execution_date, encoding)
        return await self._client._call(
            "POST", "/instr/add", list_decoder(self._converter, Instruction), **body
        )

    async def exec(
        self,
        node_ids: int | Iterable[int],
        topic: str,
        params: Mapping[str, object] | Iterable[tuple[str, object]] | None = None,
        *,
        result_max_wait: int = wire.MAX_RESULT_WAIT,
        execution_date: datetime | str | None = None,
        encoding: Literal["auto", "json", "form"] = "auto",
    ) -> builtins.list[Instruction]:
        """Queue and let the server wait up to ``result_max_wait`` seconds (at most 60) for
        Completed or Declined; instructions still running come back as they stand.

        The credential's slot is held while the server waits: with the default allowance
        of 1, other calls queue behind it.
        """
        if isinstance(result_max_wait, bool) or not isinstance(result_max_wait, int):
            raise InvalidArgumentType("result_max_wait must be an int number of seconds")
        if not 0 <= result_max_wait <= wire.MAX_RESULT_WAIT:
            raise UsageError(
                f"result_max_wait must be between 0 and {wire.MAX_RESULT_WAIT} seconds, "
                f"got {result_max_wait}"
            )
        body = self._body(node_ids, topic, params, execution_date, encoding)
        return await self._client._call(
            "POST",
            "/instr/exec",
            list_decoder(self._converter, Instruction),
            params=[("resultMaxWait", str(result_max_wait))],
            server_wait=float(result_max_wait),
            **body,
        )

    async def list(
        self,
        node_ids: int | Iterable[int],
        *,
        states: str | Iterable[str] | None = None,
        instruction_ids: int | Iterable[int] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> builtins.list[Instruction]:
        """Instructions of the nodes matching the filters (``GET /instr``)."""
        params = wire.node_params(node_ids)
        if states is not None:
            params.append(("states", ",".join(self._states(states))))
        if instruction_ids is not None:
            params.append(("instructionIds", ",".join(map(str, _instruction_ids(instruction_ids)))))
        if start is not None:
            params.append(("startDate", wire.utc_minute(start, "start")))
        if end is not None:
            params.append(("endDate", wire.utc_minute(end, "end")))
        return await self._client._call(
            "GET", "/instr", list_decoder(self._converter, Instruction), params=params
        )

    @staticmethod
    def _states(states: str | Iterable[str]) -> builtins.list[str]:
        items = [states] if isinstance(states, str) else list(states)
        for state in items:
            if state not in INSTRUCTION_STATES:
                raise UsageError(f"state {state!r} is not one of: {', '.join(INSTRUCTION_STATES)}")
        if not items:
            raise UsageError("states is empty")
        return items

    async def get(self, instruction_id: int) -> Instruction:
        ident = check_id(instruction_id, "instruction_id")
        return await self._client._call(
            "GET",
            "/instr/view",
            object_decoder(self._converter, Instruction),
            params=[("id", str(ident))],
        )

    async def get_many(self, instruction_ids: Iterable[int]) -> builtins.list[Instruction]:
        ids = _instruction_ids(instruction_ids)
        return await self._client._call(
            "GET",
            "/instr/view",
            list_decoder(self._converter, Instruction),
            params=[("ids", ",".join(map(str, ids)))],
        )

    async def active(self, node_ids: int | Iterable[int]) -> builtins.list[Instruction]:
        """Queued instructions (at most 2,000; use ``list(states='Queued')`` for all)."""
        return await self._client._call(
            "GET",
            "/instr/viewActive",
            list_decoder(self._converter, Instruction),
            params=wire.node_params(node_ids),
        )

    async def pending(self, node_ids: int | Iterable[int]) -> builtins.list[Instruction]:
        """Queued, Received or Executing instructions (at most 2,000)."""
        return await self._client._call(
            "GET",
            "/instr/viewPending",
            list_decoder(self._converter, Instruction),
            params=wire.node_params(node_ids),
        )

    async def update_state(self, instruction_ids: int | Iterable[int], state: str) -> None:
        """Set the state of instructions (Declined on a Queued one cancels it). Safe to
        repeat."""
        (name,) = self._states([state])
        ids = _instruction_ids(instruction_ids)
        field = ("id", str(ids[0])) if len(ids) == 1 else ("ids", ",".join(map(str, ids)))
        await self._client._call(
            "POST",
            "/instr/updateState",
            success_decoder,
            form=[field, ("state", name)],
            retry_safe=True,
        )

    async def wait(
        self,
        instruction_id: int,
        *,
        max_wait: float = 60.0,
        poll_interval: float = 1.0,
        max_poll_interval: float = 10.0,
    ) -> Instruction:
        """Poll until the instruction is Completed or Declined, backing off from
        ``poll_interval`` to ``max_poll_interval`` seconds; InstructionTimeout after
        ``max_wait`` seconds (the slot is free between polls)."""
        for name, value in (
            ("max_wait", max_wait),
            ("poll_interval", poll_interval),
            ("max_poll_interval", max_poll_interval),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise UsageError(f"{name} must be a positive number of seconds")
        client = self._client
        session = client._session
        deadline = session.monotonic() + max_wait
        delay = float(poll_interval)
        while True:
            instruction = await self.get(instruction_id)
            if instruction.is_final:
                return instruction
            remaining = deadline - session.monotonic()
            if remaining <= 0:
                raise InstructionTimeout(
                    f"instruction {instruction.id} ({instruction.topic}) is still "
                    f"{instruction.state} after {max_wait:g} s",
                    instruction=instruction,
                )
            await session.sleep(min(delay, remaining))
            delay = min(delay * 2, float(max_poll_interval))

    async def queue_and_wait(
        self,
        node_id: int,
        topic: str,
        params: Mapping[str, object] | Iterable[tuple[str, object]] | None = None,
        *,
        execution_date: datetime | str | None = None,
        max_wait: float = 60.0,
        poll_interval: float = 1.0,
        max_poll_interval: float = 10.0,
    ) -> Instruction:
        """Queue one instruction and wait for it to finish (see ``wait``)."""
        (queued,) = await self.add(node_id, topic, params, execution_date=execution_date)
        if queued.is_final:
            return queued
        return await self.wait(
            queued.id,
            max_wait=max_wait,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
        )

    async def cancel(self, instruction_id: int) -> Instruction:
        """Cancel an instruction the way its state allows, and return it as it stands.

        Queued: set to Declined. Received (a deferred one the node holds): a
        ``CancelInstruction`` is queued for its node, which declines it. Executing or final:
        nothing can be done; it is returned unchanged (check ``state``).
        """
        instruction = await self.get(instruction_id)
        if instruction.state in ("Queued", "Queuing"):
            await self.update_state(instruction.id, "Declined")
            return await self.get(instruction.id)
        if instruction.state == "Received" and instruction.node_id is not None:
            await self.add(instruction.node_id, "CancelInstruction", {"id": str(instruction.id)})
            return await self.get(instruction.id)
        return instruction


class TokensAPI(_Group):
    """``/user/auth-tokens``: list, generate, info, status, delete, policy add and store."""

    async def list(self) -> builtins.list[SecurityToken]:
        return await self._client._call(
            "GET", "/user/auth-tokens", list_decoder(self._converter, SecurityToken)
        )

    async def generate(
        self,
        type: Literal["ReadNodeData", "User"],
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> SecurityToken:
        """A new token; its ``auth_secret`` is returned this once (never printed)."""
        if type not in TOKEN_TYPES:
            raise UsageError(f"type must be one of {', '.join(TOKEN_TYPES)}, got {type!r}")
        form = [(k, v) for k, v in (("name", name), ("description", description)) if v is not None]
        return await self._client._call(
            "POST",
            f"/user/auth-tokens/generate/{type}",
            object_decoder(self._converter, SecurityToken),
            form=form,
            sensitive=True,
        )

    @staticmethod
    def _token(token_id: object) -> str:
        if not isinstance(token_id, str) or not token_id.strip():
            raise UsageError("token_id must be a non-empty string")
        return token_id

    async def update_info(
        self, token_id: str, *, name: str | None = None, description: str | None = None
    ) -> None:
        form = [("tokenId", self._token(token_id))]
        form += [(k, v) for k, v in (("name", name), ("description", description)) if v is not None]
        await self._client._call(
            "POST", "/user/auth-tokens/info", success_decoder, form=form, retry_safe=True
        )

    async def set_status(self, token_id: str, status: Literal["Active", "Disabled"]) -> None:
        if status not in TOKEN_STATUSES:
            raise UsageError(f"status must be Active or Disabled, got {status!r}")
        await self._client._call(
            "POST",
            "/user/auth-tokens/status",
            success_decoder,
            form=[("tokenId", self._token(token_id)), ("status", status)],
            retry_safe=True,
        )

    async def delete(self, token_id: str) -> None:
        await self._client._call(
            "DELETE",
            "/user/auth-tokens",
            success_decoder,
            params=[("tokenId", self._token(token_id))],
        )

    @staticmethod
    def _policy(policy: Mapping[str, Any]) -> bytes:
        if not isinstance(policy, Mapping) or not policy:
            raise UsageError("policy must be a non-empty dict such as {'nodeIds': [1, 2]}")
        try:
            return orjson.dumps(dict(policy))
        except TypeError as exc:
            raise InvalidArgumentType(f"policy is not JSON-serialisable: {exc}") from None

    async def add_policy(self, token_id: str, policy: Mapping[str, Any]) -> SecurityToken:
        """Merge ``policy`` into the token's (lists are unioned); returns the token."""
        return await self._client._call(
            "PATCH",
            "/user/auth-tokens/policy",
            object_decoder(self._converter, SecurityToken),
            params=[("tokenId", self._token(token_id))],
            json=self._policy(policy),
            retry_safe=True,
        )

    async def store_policy(self, token_id: str, policy: Mapping[str, Any]) -> SecurityToken:
        """Replace the token's policy with ``policy``; returns the token."""
        return await self._client._call(
            "PUT",
            "/user/auth-tokens/policy",
            object_decoder(self._converter, SecurityToken),
            params=[("tokenId", self._token(token_id))],
            json=self._policy(policy),
        )


class EventsAPI(_Group):
    """``/user/events``: the account's application events, oldest first, paged."""

    def iter(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        tags: str | Iterable[str] | None = None,
        search_filter: str | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[UserEvent]:
        """Events matching all ``tags`` and the ``search_filter`` (dotted keys:
        ``(&(cp=1234ZY)(options.duration<=60))``). Pages until a short one."""
        params: builtins.list[wire.Param] = []
        if start is not None:
            params.append(("startDate", wire.utc_instant(start, "start")))
        if end is not None:
            params.append(("endDate", wire.utc_instant(end, "end")))
        if tags is not None:
            items = [tags] if isinstance(tags, str) else list(tags)
            if not items or not all(isinstance(t, str) and t for t in items):
                raise UsageError("tags must be non-empty strings")
            params += [("tags", t) for t in items]
        if search_filter is not None:
            parse_filter(search_filter)
            params.append(("searchFilter", search_filter))
        wire.page_params(page_size, 0, count=False)
        return self._batches(params, page_size)

    async def _batches(
        self, params: builtins.list[wire.Param], page_size: int
    ) -> AsyncIterator[UserEvent]:
        """A flat list per request, without totals: the next offset is the count so far."""
        decode = list_decoder(self._converter, UserEvent)
        offset = largest = 0
        while True:
            batch = await self._client._call(
                "GET",
                "/user/events",
                decode,
                params=[*params, ("max", str(page_size)), ("offset", str(offset))],
            )
            for event in batch:
                yield event
            offset += len(batch)
            if not wire.more_pages(
                got=len(batch), asked=page_size, offset=offset, total=None, largest=largest
            ):
                return
            largest = max(largest, len(batch))

    async def list(self, **kwargs: Any) -> builtins.list[UserEvent]:
        return [e async for e in self.iter(**kwargs)]
