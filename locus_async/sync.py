"""Blocking clients for scripts and notebooks, as httpx and openai-python ship them::

    from locus_async import sync

    with sync.LocusClient(auth=locus_async.BearerToken("...")) as client:
        site = client.sites.get(3)

Each runs one async client on a background event loop (anyio's blocking portal): the same
resources, arguments, checks, errors, limiter and token, and calls from several threads
at once. Iterating methods (``iter_data``, ``iter``) give a ``SyncIterator``.
"""

from locus_async._shell.blocking import SyncIterator
from locus_async.locus.sync import LocusClient
from locus_async.solarnetwork.sync import SolarNetClient

__all__ = ["LocusClient", "SolarNetClient", "SyncIterator"]

for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
