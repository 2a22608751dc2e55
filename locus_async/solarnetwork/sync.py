"""The blocking SolarNetwork client: ``locus_async.sync.SolarNetClient``.

Owns: the blocking views of the SolarUser resources, each method declared once from the
async method it wraps, and ``SolarNetClient``, which runs one async ``SolarNetClient`` on a
background event loop. Must never: reimplement a call (every request is the async
client's).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Unpack

from locus_async._shell.blocking import SyncClient, SyncResource, blocking, blocking_iter
from locus_async.solarnetwork import client as async_client
from locus_async.solarnetwork.resources import datum, events, instructions, metadata, nodes, tokens

if TYPE_CHECKING:
    from locus_async._core.pacing import RateLimit
    from locus_async._shell.client import ShellOptions
    from locus_async.solarnetwork.auth import Snws2Credentials

__all__ = [
    "DatumAuxiliaryAPI",
    "EventsAPI",
    "InstructionsAPI",
    "NodeMetadataAPI",
    "NodesAPI",
    "SolarNetClient",
    "SourceMetadataAPI",
    "StaleAggregatesAPI",
    "StreamsAPI",
    "TokensAPI",
    "UserMetadataAPI",
]


class NodesAPI(SyncResource[nodes.NodesAPI]):
    """``client.nodes``: the account's nodes, archiving, certificates."""

    iter = blocking_iter(nodes.NodesAPI.iter)
    list = blocking(nodes.NodesAPI.list)
    page = blocking(nodes.NodesAPI.page)
    archived = blocking(nodes.NodesAPI.archived)
    set_archived = blocking(nodes.NodesAPI.set_archived)
    create_certificate = blocking(nodes.NodesAPI.create_certificate)
    certificate = blocking(nodes.NodesAPI.certificate)


class NodeMetadataAPI(SyncResource[metadata.NodeMetadataAPI]):
    """``client.node_metadata``: node metadata documents."""

    iter = blocking_iter(metadata.NodeMetadataAPI.iter)
    list = blocking(metadata.NodeMetadataAPI.list)
    get = blocking(metadata.NodeMetadataAPI.get)
    add = blocking(metadata.NodeMetadataAPI.add)
    store = blocking(metadata.NodeMetadataAPI.store)
    delete = blocking(metadata.NodeMetadataAPI.delete)


class UserMetadataAPI(SyncResource[metadata.UserMetadataAPI]):
    """``client.user_metadata``: the account's own metadata document."""

    get = blocking(metadata.UserMetadataAPI.get)
    add = blocking(metadata.UserMetadataAPI.add)
    store = blocking(metadata.UserMetadataAPI.store)
    delete = blocking(metadata.UserMetadataAPI.delete)


class SourceMetadataAPI(SyncResource[metadata.SourceMetadataAPI]):
    """``client.datum_metadata`` and ``client.location_metadata``: per-source documents."""

    add = blocking(metadata.SourceMetadataAPI.add)
    store = blocking(metadata.SourceMetadataAPI.store)
    delete = blocking(metadata.SourceMetadataAPI.delete)


class DatumAuxiliaryAPI(SyncResource[datum.DatumAuxiliaryAPI]):
    """``client.datum_auxiliary``: reset and other auxiliary records."""

    iter = blocking_iter(datum.DatumAuxiliaryAPI.iter)
    list = blocking(datum.DatumAuxiliaryAPI.list)
    store = blocking(datum.DatumAuxiliaryAPI.store)
    move = blocking(datum.DatumAuxiliaryAPI.move)
    get = blocking(datum.DatumAuxiliaryAPI.get)
    delete = blocking(datum.DatumAuxiliaryAPI.delete)


class StaleAggregatesAPI(SyncResource[datum.StaleAggregatesAPI]):
    """``client.stale_aggregates``: aggregates waiting to be recomputed, and marking."""

    iter = blocking_iter(datum.StaleAggregatesAPI.iter)
    list = blocking(datum.StaleAggregatesAPI.list)
    mark = blocking(datum.StaleAggregatesAPI.mark)


class StreamsAPI(SyncResource[datum.StreamsAPI]):
    """``client.streams``: datum stream metadata."""

    get = blocking(datum.StreamsAPI.get)
    update_ids = blocking(datum.StreamsAPI.update_ids)
    update = blocking(datum.StreamsAPI.update)


class InstructionsAPI(SyncResource[instructions.InstructionsAPI]):
    """``client.instructions``: queue, read, wait for and cancel node instructions."""

    add = blocking(instructions.InstructionsAPI.add)
    exec = blocking(instructions.InstructionsAPI.exec)
    list = blocking(instructions.InstructionsAPI.list)
    get = blocking(instructions.InstructionsAPI.get)
    get_many = blocking(instructions.InstructionsAPI.get_many)
    active = blocking(instructions.InstructionsAPI.active)
    pending = blocking(instructions.InstructionsAPI.pending)
    update_state = blocking(instructions.InstructionsAPI.update_state)
    wait = blocking(instructions.InstructionsAPI.wait)
    queue_and_wait = blocking(instructions.InstructionsAPI.queue_and_wait)
    cancel = blocking(instructions.InstructionsAPI.cancel)


class TokensAPI(SyncResource[tokens.TokensAPI]):
    """``client.tokens``: the account's security tokens and their policies."""

    list = blocking(tokens.TokensAPI.list)
    generate = blocking(tokens.TokensAPI.generate)
    update_info = blocking(tokens.TokensAPI.update_info)
    set_status = blocking(tokens.TokensAPI.set_status)
    delete = blocking(tokens.TokensAPI.delete)
    add_policy = blocking(tokens.TokensAPI.add_policy)
    store_policy = blocking(tokens.TokensAPI.store_policy)


class EventsAPI(SyncResource[events.EventsAPI]):
    """``client.events``: the account's user events."""

    iter = blocking_iter(events.EventsAPI.iter)
    list = blocking(events.EventsAPI.list)


class SolarNetClient(SyncClient[async_client.SolarNetClient]):
    """The SolarNetwork client for scripts and notebooks: the same resources and arguments
    as ``locus_async.SolarNetClient``, each call waiting for its answer.

    ``with SolarNetClient(credentials=...) as client: client.whoami()``. One async client
    runs on a background event loop (``backend``: ``"asyncio"`` or ``"trio"``); calls from
    several threads share its limiter and rate limit. Lists that page (``iter``) give a
    ``SyncIterator``. Close it (``with`` or ``close()``) to stop the loop thread.
    """

    _async_type = async_client.SolarNetClient
    nodes: NodesAPI
    node_metadata: NodeMetadataAPI
    user_metadata: UserMetadataAPI
    datum_metadata: SourceMetadataAPI
    location_metadata: SourceMetadataAPI
    datum_auxiliary: DatumAuxiliaryAPI
    stale_aggregates: StaleAggregatesAPI
    streams: StreamsAPI
    instructions: InstructionsAPI
    tokens: TokensAPI
    events: EventsAPI

    def __init__(
        self,
        *,
        credentials: Snws2Credentials | None,
        base_url: str = async_client.DEFAULT_BASE_URL,
        location_metadata_prefix: str = async_client.DEFAULT_LOCATION_METADATA_PREFIX,
        strict: bool = False,
        allow_insecure_http: bool = False,
        rate: RateLimit | None = async_client.DEFAULT_RATE,
        backend: str = "asyncio",
        **shell: Unpack[ShellOptions],
    ) -> None:
        build = functools.partial(
            async_client.SolarNetClient,
            credentials=credentials,
            base_url=base_url,
            location_metadata_prefix=location_metadata_prefix,
            strict=strict,
            allow_insecure_http=allow_insecure_http,
            rate=rate,
            **shell,
        )
        super().__init__(build, backend=backend)

    def _bind(self) -> None:
        target, loop = self._target, self._loop
        self.nodes = NodesAPI(target.nodes, loop)
        self.node_metadata = NodeMetadataAPI(target.node_metadata, loop)
        self.user_metadata = UserMetadataAPI(target.user_metadata, loop)
        self.datum_metadata = SourceMetadataAPI(target.datum_metadata, loop)
        self.location_metadata = SourceMetadataAPI(target.location_metadata, loop)
        self.datum_auxiliary = DatumAuxiliaryAPI(target.datum_auxiliary, loop)
        self.stale_aggregates = StaleAggregatesAPI(target.stale_aggregates, loop)
        self.streams = StreamsAPI(target.streams, loop)
        self.instructions = InstructionsAPI(target.instructions, loop)
        self.tokens = TokensAPI(target.tokens, loop)
        self.events = EventsAPI(target.events, loop)

    whoami = blocking(async_client.SolarNetClient.whoami)
    associate = blocking(async_client.SolarNetClient.associate)
    nodes_with_metadata = blocking_iter(async_client.SolarNetClient.nodes_with_metadata)
