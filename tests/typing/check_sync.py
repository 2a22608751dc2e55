"""Static checks of the blocking clients' types, run by mypy (``nox -s typecheck``) and
never executed: each ``assert_type`` fails the type check if a wrapped method lost the
async method's parameters or its result type."""

from __future__ import annotations

from datetime import datetime
from typing import assert_type

from locus_async import BearerToken, Site, TimeSeries
from locus_async.solarnetwork import SolarNode, WhoAmI
from locus_async.sync import LocusClient, SolarNetClient, SyncIterator


def locus(client: LocusClient) -> None:
    """The Locus client's calls keep their parameters and results."""
    assert_type(client.sites.get(3), Site)
    assert_type(client.partners.sites(111), list[Site])
    assert_type(client.partners.sites(), list[Site])  # the signed-in partner's
    assert_type(client.partner_id(), int)
    series = client.components.data(
        54369,
        fields="Wh_sum",
        gran="daily",
        start=datetime(2024, 1, 1),
        end=datetime(2024, 2, 1),
        tz="UTC",
    )
    assert_type(series, TimeSeries)
    stream = client.sites.iter_data(
        3,
        fields=["Wh_sum"],
        gran="5min",
        start=datetime(2024, 1, 1),
        end=datetime(2024, 2, 1),
        tz="UTC",
    )
    assert_type(stream, SyncIterator[TimeSeries])
    for window in stream:
        assert_type(window, TimeSeries)
    client.sites.get("3")  # type: ignore[arg-type]
    client.sites.get(3, extra=1)  # type: ignore[call-arg]
    assert_type(client.with_options(timeout=5.0), LocusClient)


def solarnetwork(client: SolarNetClient) -> None:
    """The SolarNetwork client's calls keep theirs."""
    assert_type(client.whoami(), WhoAmI)
    assert_type(client.nodes.list(), list[SolarNode])
    assert_type(client.nodes.iter(page_size=2), SyncIterator[SolarNode])


def construct() -> None:
    """The constructors keep the async constructors' keywords, plus ``backend``."""
    with LocusClient(auth=BearerToken("t"), timeout=5.0, max_retries=2, backend="trio") as c:
        assert_type(c, LocusClient)
    LocusClient(auth=BearerToken("t"), no_such_option=1)  # type: ignore[call-arg]
