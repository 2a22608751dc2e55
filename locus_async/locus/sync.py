"""The blocking Locus client: ``locus_async.sync.LocusClient``.

Owns: the blocking views of the Locus resources, each method declared once from the async
method it wraps (same parameters, same checks, same errors), and ``LocusClient``, which
runs one async ``LocusClient`` on a background event loop. Must never: reimplement a call
(every request is the async client's).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Generic, TypeVar, Unpack

from locus_async._shell.blocking import (
    SyncClient,
    SyncResource,
    blocking,
    blocking_iter,
    passthrough,
)
from locus_async.locus import client as async_client
from locus_async.locus import resources

if TYPE_CHECKING:
    from locus_async._shell.client import ShellOptions
    from locus_async.locus.auth import TokenProvider
    from locus_async.locus.models import Granularity

__all__ = ["ClientsAPI", "ComponentsAPI", "LocusClient", "PartnersAPI", "SitesAPI"]

D = TypeVar("D", bound=resources._DataResource)


class PartnersAPI(SyncResource[resources.PartnersAPI]):
    """``client.partners``: a partner's sites, clients, components, alerts, bulk data."""

    sites = blocking(resources.PartnersAPI.sites)
    clients = blocking(resources.PartnersAPI.clients)
    components = blocking(resources.PartnersAPI.components)
    alerts = blocking(resources.PartnersAPI.alerts)
    bulk_data_available = blocking(resources.PartnersAPI.bulk_data_available)
    bulk_data = blocking(resources.PartnersAPI.bulk_data)


class ClientsAPI(SyncResource[resources.ClientsAPI]):
    """``client.clients``: one client, its sites and components."""

    get = blocking(resources.ClientsAPI.get)
    sites = blocking(resources.ClientsAPI.sites)
    components = blocking(resources.ClientsAPI.components)


class _DataResource(SyncResource[D], Generic[D]):
    """What sites and components share: fields available, alerts, time series."""

    data_available = blocking(resources._DataResource.data_available)
    alerts = blocking(resources._DataResource.alerts)
    data = blocking(resources._DataResource.data)
    iter_data = blocking_iter(resources._DataResource.iter_data)
    plan = passthrough(resources._DataResource.plan)


class SitesAPI(_DataResource[resources.SitesAPI]):
    """``client.sites``: one site, its components, install info, model settings, data."""

    get = blocking(resources.SitesAPI.get)
    components = blocking(resources.SitesAPI.components)
    install_info = blocking(resources.SitesAPI.install_info)
    model_settings = blocking(resources.SitesAPI.model_settings)


class ComponentsAPI(_DataResource[resources.ComponentsAPI]):
    """``client.components``: one component and its data."""

    get = blocking(resources.ComponentsAPI.get)


class LocusClient(SyncClient[async_client.LocusClient]):
    """The Locus client for scripts and notebooks: the same resources and arguments as
    ``locus_async.LocusClient``, each call waiting for its answer.

    ``with LocusClient(auth=...) as client: client.sites.get(1)``. One async client runs
    on a background event loop (``backend``: ``"asyncio"`` or ``"trio"``); calls from
    several threads share its limiter and token. ``iter_data`` gives a ``SyncIterator``
    (``with`` it to prefetch while you work on a window). Close it (``with`` or
    ``close()``) to stop the loop thread.
    """

    _async_type = async_client.LocusClient
    partners: PartnersAPI
    clients: ClientsAPI
    sites: SitesAPI
    components: ComponentsAPI

    def __init__(
        self,
        *,
        auth: TokenProvider,
        base_url: str = async_client.DEFAULT_BASE_URL,
        limits: Mapping[Granularity | str, timedelta | None] | None = None,
        validate_fields: bool = False,
        strict: bool = False,
        allow_insecure_http: bool = False,
        backend: str = "asyncio",
        **shell: Unpack[ShellOptions],
    ) -> None:
        build = functools.partial(
            async_client.LocusClient,
            auth=auth,
            base_url=base_url,
            limits=limits,
            validate_fields=validate_fields,
            strict=strict,
            allow_insecure_http=allow_insecure_http,
            **shell,
        )
        super().__init__(build, backend=backend)

    def _bind(self) -> None:
        target, loop = self._target, self._loop
        self.partners = PartnersAPI(target.partners, loop)
        self.clients = ClientsAPI(target.clients, loop)
        self.sites = SitesAPI(target.sites, loop)
        self.components = ComponentsAPI(target.components, loop)

    authenticate = blocking(async_client.LocusClient.authenticate)
    partner_id = blocking(async_client.LocusClient.partner_id)
    plan = passthrough(async_client.LocusClient.plan)
    fetch_window = blocking(async_client.LocusClient.fetch_window)
