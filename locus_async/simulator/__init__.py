"""A faithful fake Locus v3 server, for your tests, the demo and benchmarks.

``Simulator`` serves every documented endpoint plus ``POST /oauth/token``, enforces the
documented rules strictly (one request at a time per account by default, time-range limits
in absolute time, dataavailable checks, bulk and partner-alert limits), and computes values
from a deterministic per-minute model, so every granularity aggregates the minute data
exactly. It can inject faults (latency, 5xx, HTML 502s, spurious 429s, dropped bodies,
revoked tokens, slow answers, unknown fields), counts what it sees, and answers "what must
a correct client return" with ``ground_truth`` without any HTTP.

Run it in process::

    sim = Simulator()
    async with sim.client() as client:          # a LocusClient wired to the simulator
        print(await client.partners.sites(111))

or over loopback sockets (needs the ``simulator`` extra)::

    with sim.serve() as server:                  # uvicorn in a thread, port 0
        print(server.url)

or for people and other programs: ``python -m locus_async.simulator --port 8080``.

``SolarNetSimulator`` does the same for the SolarNetwork SolarUser API: it verifies every
SNWS2 signature as the server does, keeps nodes, metadata, records, tokens and events in
memory, and runs simulated nodes that carry instructions out::

    sn = SolarNetSimulator()
    async with sn.client() as client:           # a SolarNetClient with the demo token
        print(await client.whoami())
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any

import anyio

from locus_async._core.checks import check_number, check_whole
from locus_async._core.pacing import RateLimit
from locus_async._shell.transport import asgi_transport
from locus_async.errors import InvalidArgumentType
from locus_async.locus.client import LocusClient
from locus_async.locus.sync import LocusClient as SyncLocusClient
from locus_async.simulator._asgi import Faults, SimulatorApp
from locus_async.simulator._fleet import (
    ClientSpec,
    ComponentSpec,
    Fleet,
    PartnerSpec,
    SiteSpec,
    default_fleet,
)
from locus_async.simulator._http import SimRequest, SimResponse, SimulatorStats
from locus_async.simulator._server import ServedSimulator
from locus_async.simulator._snstate import (
    SN_DEFAULT_TOKEN,
    SN_OTHER_TOKEN,
    SN_READ_TOKEN,
    SnWorld,
    default_world,
)
from locus_async.simulator._timeline import SimClock, Timeline
from locus_async.simulator.locus import (
    CLIENT_CREDENTIALS_ACCOUNT,
    DEFAULT_ACCOUNT,
    LIMITS,
    Account,
    SimulatorCore,
)
from locus_async.simulator.locus.cognito import CognitoTrust
from locus_async.simulator.solarnet import RateRule, SolarNetCore
from locus_async.solarnetwork import Snws2Credentials, SolarNetClient
from locus_async.solarnetwork.sync import SolarNetClient as SyncSolarNetClient

__all__ = [
    "CLIENT_CREDENTIALS_ACCOUNT",
    "DEFAULT_ACCOUNT",
    "LIMITS",
    "SN_DEFAULT_TOKEN",
    "SN_OTHER_TOKEN",
    "SN_READ_TOKEN",
    "Account",
    "ClientSpec",
    "CognitoTrust",
    "ComponentSpec",
    "Faults",
    "Fleet",
    "PartnerSpec",
    "RateRule",
    "ServedSimulator",
    "SimClock",
    "SimRequest",
    "SimResponse",
    "Simulator",
    "SimulatorStats",
    "SiteSpec",
    "SnWorld",
    "SolarNetSimulator",
    "Timeline",
    "default_fleet",
    "default_world",
]

#: Base URL of the in-process transport (any loopback name works; nothing is resolved).
IN_PROCESS_URL = "http://localhost"


class _Simulated:
    """What both simulators offer: the ASGI app, its counters and faults, an in-process
    transport and a loopback server."""

    app: SimulatorApp

    @property
    def stats(self) -> SimulatorStats:
        return self.app.core.stats

    @property
    def faults(self) -> Faults:
        return self.app.faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        self.app.faults = value

    def reset_stats(self) -> None:
        self.app.core.stats = SimulatorStats()

    def transport(self) -> Any:
        """An in-process httpx transport (no sockets; bodies are buffered)."""
        return asgi_transport(self.app)

    def serve(self, *, host: str = "127.0.0.1", port: int = 0) -> ServedSimulator:
        """A loopback server (not yet started): ``with sim.serve() as server: server.url``."""
        return ServedSimulator(self.app, host=host, port=port)


class Simulator(_Simulated):
    """One simulated Locus deployment: state, rules, faults and counters.

    ``allowance``: requests one account may have in progress (default 1, as documented);
    ``token_lifetime``: seconds (default 3600); ``rotate_refresh_tokens``: the refresh grant
    also returns a new refresh token (the reference says it does not); ``unknown_fields``:
    add an undocumented field to every object; ``faults``: see ``Faults``; ``clock``: wall
    clock for token expiry, "now" and alert ages (``SimClock`` is one tests move by hand);
    ``seed``: the weather; ``timeline``: when data reaches the server (upload lag per
    component, late revisions, components commissioned during the run; see ``Timeline``;
    default: every minute is there as soon as it ends); ``cognito``: also accept the
    IdTokens of a Cognito user pool (``CognitoTrust``: signature against its JWKS, issuer,
    app client; AccessTokens are refused as the real API refuses them). Each Cognito user
    is an account of its own for the concurrency rule, with the partner of its
    ``custom:partnerId``; ``stats.grants["cognito"]`` counts the distinct IdTokens seen.
    """

    def __init__(
        self,
        *,
        fleet: Fleet | None = None,
        accounts: Iterable[Account] | None = None,
        allowance: int = 1,
        token_lifetime: float = 3600.0,
        rotate_refresh_tokens: bool = False,
        unknown_fields: bool = False,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.time,
        seed: int = 7,
        timeline: Timeline | None = None,
        cognito: CognitoTrust | None = None,
    ) -> None:
        check_whole(allowance, "allowance")
        if cognito is not None and not isinstance(cognito, CognitoTrust):
            raise InvalidArgumentType(
                f"cognito must be a CognitoTrust(...), not {type(cognito).__name__}"
            )
        if timeline is not None and not isinstance(timeline, Timeline):
            raise InvalidArgumentType(
                f"timeline must be a Timeline(...), not {type(timeline).__name__}"
            )
        check_number(token_lifetime, "token_lifetime", above=True)
        if faults is not None and not isinstance(faults, Faults):
            raise InvalidArgumentType(f"faults must be a Faults(...), not {type(faults).__name__}")
        if not callable(clock):
            raise InvalidArgumentType(f"clock must be callable, not {type(clock).__name__}")
        self.core = SimulatorCore(
            fleet=fleet,
            accounts=accounts,
            allowance=allowance,
            token_lifetime=token_lifetime,
            rotate_refresh_tokens=rotate_refresh_tokens,
            unknown_fields=unknown_fields,
            clock=clock,
            seed=seed,
            timeline=timeline,
            cognito=cognito,
        )
        self.app = SimulatorApp(self.core, faults)

    @property
    def fleet(self) -> Fleet:
        return self.core.fleet

    def client(self, account: Account = DEFAULT_ACCOUNT, **kwargs: Any) -> LocusClient:
        """A LocusClient for ``account``, wired to this simulator in process."""
        return LocusClient(**self._client_kwargs(account, kwargs))

    def sync_client(self, account: Account = DEFAULT_ACCOUNT, **kwargs: Any) -> SyncLocusClient:
        """The blocking ``locus_async.sync.LocusClient`` for ``account``, wired the same way
        (close it, or use it in a ``with`` block)."""
        return SyncLocusClient(**self._client_kwargs(account, kwargs))

    def _client_kwargs(self, account: Account, kwargs: dict[str, Any]) -> dict[str, Any]:
        kwargs.setdefault("auth", account.provider())
        kwargs.setdefault("base_url", IN_PROCESS_URL)
        kwargs.setdefault("transport", self.transport())
        return kwargs

    def ground_truth(
        self,
        kind: str,
        entity_id: int,
        *,
        fields: list[str],
        start: datetime,
        end: datetime,
        tz: str,
        gran: str = "monthly",
        as_of: datetime | float | None = None,
        field_params: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Rows a correct client returns for this request, as of ``as_of`` (default the
        simulator's clock; see ``SimulatorCore.ground_truth``); ``field_params``: the PV
        model's parameters, for modelled fields."""
        return self.core.ground_truth(
            kind,
            entity_id,
            fields=fields,
            start=start,
            end=end,
            tz=tz,
            gran=gran,
            as_of=as_of,
            field_params=field_params,
        )

    @staticmethod
    def environment(base_url: str, account: Account = DEFAULT_ACCOUNT) -> dict[str, str]:
        """``LOCUS_*`` variables that point the CLI at a served simulator."""
        env = {
            "LOCUS_BASE_URL": base_url,
            "LOCUS_CLIENT_ID": account.client_id,
            "LOCUS_CLIENT_SECRET": account.client_secret,
        }
        if account.username is not None and account.password is not None:
            env["LOCUS_USERNAME"] = account.username
            env["LOCUS_PASSWORD"] = account.password
        return env


class SolarNetSimulator(_Simulated):
    """One simulated SolarNetwork (SolarUser API) deployment.

    ``world``: the stored state (``default_world()``: user 147 with nodes 177-180, user 200
    with node 300, metadata, streams, events, an invitation); ``extra_nodes``/``events``
    grow the default world for paging; ``clock``: the server's wall clock (signature dates
    are checked against it, instructions advance with it); ``sleep``: how the server waits
    (``/instr/exec`` holds its answer); ``rate``: a per-token RateRule (None: unlimited);
    ``instruction_step``: seconds between a simulated node's instruction states;
    ``page_cap``: the largest page served; ``location_metadata_prefix``: where location
    metadata is mapped; ``paged_events``: answer ``/user/events`` as a paged object (the
    reference's text) instead of a flat list (its example); ``faults``: see ``Faults``.
    """

    def __init__(
        self,
        *,
        world: SnWorld | None = None,
        extra_nodes: int = 0,
        events: int = 0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        rate: RateRule | None = None,
        instruction_step: float = 1.0,
        page_cap: int = 1000,
        location_metadata_prefix: str = "/location/datum/meta",
        paged_events: bool = False,
        faults: Faults | None = None,
    ) -> None:
        self.core = SolarNetCore(
            world=world or default_world(extra_nodes=extra_nodes, events=events),
            clock=clock,
            rate=rate,
            instruction_step=instruction_step,
            page_cap=page_cap,
            location_metadata_prefix=location_metadata_prefix,
            paged_events=paged_events,
        )
        self.app = SimulatorApp(self.core, faults, sleep=sleep)

    @property
    def world(self) -> SnWorld:
        """The stored state as of now (instructions that have ended have taken effect)."""
        self.core.settle()
        return self.core.world

    def client(self, token: tuple[str, str] = SN_DEFAULT_TOKEN, **kwargs: Any) -> SolarNetClient:
        """A SolarNetClient for ``token`` (id, secret), wired in process and signing with
        the simulator's clock (pass ``wall=`` to sign with another one), paced to this
        server's rate rule (none unless it was given one; pass ``rate=`` to differ)."""
        return SolarNetClient(**self._client_kwargs(token, kwargs))

    def sync_client(
        self, token: tuple[str, str] = SN_DEFAULT_TOKEN, **kwargs: Any
    ) -> SyncSolarNetClient:
        """The blocking ``locus_async.sync.SolarNetClient``, wired the same way (close it,
        or use it in a ``with`` block)."""
        return SyncSolarNetClient(**self._client_kwargs(token, kwargs))

    def _client_kwargs(self, token: tuple[str, str], kwargs: dict[str, Any]) -> dict[str, Any]:
        kwargs.setdefault("credentials", Snws2Credentials(token[0], token_secret=token[1]))
        rule = self.core.rate
        kwargs.setdefault(
            "rate",
            None if rule is None else RateLimit(burst=rule.burst, per_second=rule.per_second),
        )
        kwargs.setdefault("base_url", IN_PROCESS_URL)
        kwargs.setdefault("transport", self.transport())
        kwargs.setdefault("wall", self.core.clock)
        return kwargs

    @staticmethod
    def environment(base_url: str, token: tuple[str, str] = SN_DEFAULT_TOKEN) -> dict[str, str]:
        """``SN_*`` variables that point the CLI at a served simulator."""
        return {"SN_BASE_URL": base_url, "SN_TOKEN": token[0], "SN_SECRET": token[1]}


def main(argv: list[str] | None = None) -> int:
    """``python -m locus_async.simulator``: ``locus-async simulate`` under another name (the
    same options, defaults and errors)."""
    import sys

    from locus_async.cli import main as cli_main

    return cli_main(["simulate", *(sys.argv[1:] if argv is None else argv)])


def describe_and_build(args: Any) -> tuple[_Simulated, list[str]]:
    """The simulator ``args`` ask for and the lines that tell people how to use it (shared
    by ``python -m locus_async.simulator`` and ``locus-async simulate``)."""
    faults = Faults(latency=args.latency)
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{host}:{args.port}"
    if getattr(args, "solarnetwork", False):
        return SolarNetSimulator(faults=faults), [
            f"SolarNetwork SolarUser simulator on {url}",
            f"demo token: {SN_DEFAULT_TOKEN[0]} (its secret: locus_async.simulator."
            "SN_DEFAULT_TOKEN)",
        ]
    issuer = getattr(args, "cognito_issuer", None)
    cognito = None
    if issuer is not None:
        cognito = CognitoTrust(
            issuer=issuer, client_id=args.cognito_client_id, jwks_url=args.cognito_jwks
        )
    sim = Simulator(
        allowance=args.allowance,
        token_lifetime=args.token_lifetime,
        faults=faults,
        cognito=cognito,
    )
    lines = [
        f"Locus v3 simulator on {url} (allowance {args.allowance})",
        f"demo account: client_id={DEFAULT_ACCOUNT.client_id}, "
        f"username={DEFAULT_ACCOUNT.username}; its secret and password are documented in "
        "locus_async.simulator.DEFAULT_ACCOUNT",
    ]
    if cognito is not None:
        lines.append(f"also accepts the IdTokens of {issuer} for app client {cognito.client_id}")
    return sim, lines
