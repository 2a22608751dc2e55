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
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from .._transport import asgi_transport
from ..client import LocusClient
from ._asgi import Faults, SimulatorApp
from ._core import (
    CLIENT_CREDENTIALS_ACCOUNT,
    DEFAULT_ACCOUNT,
    LIMITS,
    Account,
    SimRequest,
    SimResponse,
    SimulatorCore,
    SimulatorStats,
)
from ._fleet import ClientSpec, ComponentSpec, Fleet, PartnerSpec, SiteSpec, default_fleet
from ._server import ServedSimulator, serve_forever

__all__ = [
    "Account",
    "CLIENT_CREDENTIALS_ACCOUNT",
    "ClientSpec",
    "ComponentSpec",
    "DEFAULT_ACCOUNT",
    "Faults",
    "Fleet",
    "LIMITS",
    "PartnerSpec",
    "ServedSimulator",
    "SimRequest",
    "SimResponse",
    "Simulator",
    "SimulatorStats",
    "SiteSpec",
    "default_fleet",
]

#: Base URL of the in-process transport (any loopback name works; nothing is resolved).
IN_PROCESS_URL = "http://localhost"


class Simulator:
    """One simulated Locus deployment: state, rules, faults and counters.

    ``allowance``: requests one account may have in progress (default 1, as documented);
    ``token_lifetime``: seconds (default 3600); ``rotate_refresh_tokens``: the refresh grant
    also returns a new refresh token (the reference says it does not); ``unknown_fields``:
    add an undocumented field to every object; ``faults``: see ``Faults``; ``clock``: wall
    clock for token expiry, "now" and alert ages; ``seed``: the weather.
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
    ) -> None:
        self.core = SimulatorCore(
            fleet=fleet,
            accounts=accounts,
            allowance=allowance,
            token_lifetime=token_lifetime,
            rotate_refresh_tokens=rotate_refresh_tokens,
            unknown_fields=unknown_fields,
            clock=clock,
            seed=seed,
        )
        self.app = SimulatorApp(self.core, faults)

    @property
    def stats(self) -> SimulatorStats:
        return self.core.stats

    @property
    def fleet(self) -> Fleet:
        return self.core.fleet

    @property
    def faults(self) -> Faults:
        return self.app.faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        self.app.faults = value

    def reset_stats(self) -> None:
        self.core.stats = SimulatorStats()

    def transport(self) -> Any:
        """An in-process httpx transport (no sockets; bodies are buffered)."""
        return asgi_transport(self.app)

    def client(self, account: Account = DEFAULT_ACCOUNT, **kwargs: Any) -> LocusClient:
        """A LocusClient for ``account``, wired to this simulator in process."""
        from .._oauth import ClientCredentialsGrant, PasswordGrant

        if account.username is not None and account.password is not None:
            auth: Any = PasswordGrant(
                client_id=account.client_id,
                client_secret=account.client_secret,
                username=account.username,
                password=account.password,
            )
        else:
            auth = ClientCredentialsGrant(
                client_id=account.client_id, client_secret=account.client_secret
            )
        kwargs.setdefault("auth", auth)
        kwargs.setdefault("base_url", IN_PROCESS_URL)
        kwargs.setdefault("transport", self.transport())
        return LocusClient(**kwargs)

    def serve(self, *, host: str = "127.0.0.1", port: int = 0) -> ServedSimulator:
        """A loopback server (not yet started): ``with sim.serve() as server: server.url``."""
        return ServedSimulator(self.app, host=host, port=port)

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
    ) -> list[dict[str, Any]]:
        """Rows a correct client returns for this request (see ``SimulatorCore.ground_truth``)."""
        return self.core.ground_truth(
            kind, entity_id, fields=fields, start=start, end=end, tz=tz, gran=gran
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


def main(argv: list[str] | None = None) -> int:
    """``python -m locus_async.simulator``: serve the default fleet until interrupted."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m locus_async.simulator", description="Serve the Locus v3 simulator."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    parser.add_argument("--allowance", type=int, default=1, help="requests at once per account")
    parser.add_argument("--token-lifetime", type=float, default=3600.0, help="seconds")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each answer")
    args = parser.parse_args(argv)
    sim = Simulator(
        allowance=args.allowance,
        token_lifetime=args.token_lifetime,
        faults=Faults(latency=args.latency),
    )
    print(f"Locus v3 simulator on http://{args.host}:{args.port}")
    print(
        f"demo credentials: client_id={DEFAULT_ACCOUNT.client_id} "
        f"username={DEFAULT_ACCOUNT.username} (see locus_async.simulator.DEFAULT_ACCOUNT)"
    )
    serve_forever(sim.app, host=args.host, port=args.port)
    return 0
