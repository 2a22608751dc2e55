"""``locus-async simulate`` and ``demo``: the simulators of both providers from the shell.

Owns: the simulator's one parser (host, port, allowance, latency, token lifetime, which
provider) and the demo. Must never: listen on anything the user did not ask for.
"""

from __future__ import annotations

import argparse
import contextlib
from typing import Any, Final

from locus_async.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    CliIO,
    Runner,
    listen_host,
    non_negative_float,
    port_number,
    positive_float,
    positive_int,
    require,
)
from locus_async.cli.progress import ProgressBar

__all__ = ["add_commands", "run_simulate"]


#: ``simulate``'s latency: about a round trip of the real APIs over the internet (a data
#: request is answered in a few hundred milliseconds). With none, requests never overlap,
#: and a client under test never meets the documented 429.
DEFAULT_LATENCY: Final = 0.25


def add_commands(commands: Any) -> dict[str, Runner]:
    """Register ``simulate`` and ``demo`` on ``commands``; returns the async runners
    (``simulate`` serves in the foreground, see ``run_simulate``)."""
    simulate = commands.add_parser(
        "simulate", help="serve the Locus (or --solarnetwork) simulator on loopback"
    )
    simulate.add_argument(
        "--host", type=listen_host, default="127.0.0.1", help="address to listen on (an IP address)"
    )
    simulate.add_argument("--port", type=port_number, default=8080, help="TCP port")
    simulate.add_argument(
        "--allowance",
        type=positive_int,
        default=1,
        help="requests one account may have in progress (more get 429)",
    )
    simulate.add_argument(
        "--latency",
        type=non_negative_float,
        default=DEFAULT_LATENCY,
        help=(
            f"seconds added to every answer (default {DEFAULT_LATENCY}: a real API's round "
            "trip, so concurrent callers overlap and meet the one-at-a-time 429; 0 for speed)"
        ),
    )
    simulate.add_argument(
        "--token-lifetime",
        type=positive_float,
        default=3600.0,
        help="seconds an access token lives",
    )
    simulate.add_argument(
        "--solarnetwork", action="store_true", help="the SolarNetwork SolarUser simulator"
    )
    simulate.add_argument(
        "--cognito-issuer",
        metavar="URL",
        help=(
            "also accept this Cognito user pool's IdTokens "
            "(https://cognito-idp.REGION.amazonaws.com/POOL_ID); needs --cognito-client-id"
        ),
    )
    simulate.add_argument(
        "--cognito-client-id", metavar="ID", help="the app client the IdTokens must be for"
    )
    simulate.add_argument(
        "--cognito-jwks",
        metavar="URL",
        help="where the pool's keys are read from (default: the issuer's /.well-known/jwks.json)",
    )

    demo = commands.add_parser(
        "demo", help="backfill a simulated fleet end to end (no credentials, no network)"
    )
    demo.add_argument(
        "--out", default="demo-output", help="output directory (default ./demo-output)"
    )
    demo.add_argument(
        "--latency",
        type=non_negative_float,
        default=0.02,
        help="simulated network latency in seconds",
    )

    return {"demo": _run_demo}


def run_simulate(io: CliIO, args: argparse.Namespace) -> int:
    require("locus-async simulate", "simulator", "uvicorn")
    from locus_async.simulator import describe_and_build
    from locus_async.simulator._server import listen, serve_forever

    if (args.cognito_issuer is None) != (args.cognito_client_id is None):
        io.err("locus-async: error: give --cognito-issuer and --cognito-client-id together")
        return EXIT_USAGE
    try:
        sock = listen(args.host, args.port)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        io.err(
            f"locus-async: error: cannot listen on {args.host}:{args.port}: {reason.lower()} "
            "(another simulator? choose another --port)"
        )
        return EXIT_ERROR
    with sock:
        sim, lines = describe_and_build(args)
        for line in lines:
            io.out(line)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a server is stopped
            serve_forever(sim.app, sock)
    return EXIT_OK


async def _run_demo(io: CliIO, args: argparse.Namespace) -> int:
    require("locus-async demo", "demo", "uvicorn", "pyarrow")
    from locus_async.cli.demo import run_demo

    return await run_demo(
        io.out,
        io.err,
        args.out,
        latency=args.latency,
        as_json=args.json,
        progress=lambda label: ProgressBar(io, label, enabled=not (args.quiet or args.no_progress)),
    )
