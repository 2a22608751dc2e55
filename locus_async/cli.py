"""The ``locus-async`` command line.

Owns: argument parsing, reading credentials from the environment, output (tables, JSON,
CSV), the progress bar, exit codes and the demo. Must never: echo a credential, print a
traceback for an expected error, or do anything the library cannot do on its own.

Exit codes: 0 done; 1 the API or the network failed; 2 usage (bad arguments); 3
authentication; 4 a backfill finished with failed windows (run it again to retry them); 5
the output directory is in use by another run; 130 interrupted (Ctrl-C).

Credentials: ``LOCUS_ACCESS_TOKEN``, or ``LOCUS_CLIENT_ID`` + ``LOCUS_CLIENT_SECRET`` (+
``LOCUS_USERNAME`` + ``LOCUS_PASSWORD`` for the password grant); ``--base-url`` or
``LOCUS_BASE_URL`` for the host. ``solarnetwork`` (``sn``) commands: ``SN_TOKEN`` and
``SN_SECRET``, ``SN_BASE_URL`` (see ``_cli_solarnet``).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, TextIO

import anyio

from ._cli_common import (
    EXIT_AUTH,
    EXIT_ERROR,
    EXIT_INCOMPLETE,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_USAGE,
    CliIO,
    CliUsage,
    Parser,
    add_repeatable,
    jsonable,
    listen_host,
    non_negative_float,
    objects,
    port_number,
    positive_float,
    positive_int,
    table,
)
from ._cli_solarnet import SN_SECRET_VARIABLES, add_solarnetwork_parser, run_solarnetwork
from ._core.http import redact
from ._version import __version__
from .backfill import Backfill, BackfillProgress, BackfillResult, BackfillSpec, OutputLocked
from .client import DEFAULT_BASE_URL, LocusClient, auth_from_env
from .errors import AuthenticationError, LocusError, UsageError
from .models import BaseField
from .timeseries import TimeSeries

__all__ = ["main"]

_SECRET_VARIABLES = (
    "LOCUS_CLIENT_SECRET",
    "LOCUS_PASSWORD",
    "LOCUS_ACCESS_TOKEN",
    *SN_SECRET_VARIABLES,
)


class _RedactingFilter(logging.Filter):
    """Defence in depth: scrub known secrets from every log line the CLI prints."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message, self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        return True


# --------------------------------------------------------------------------- parsing


def _build_parser() -> argparse.ArgumentParser:  # noqa: PLR0915 - a declarative table
    common = Parser(add_help=False)
    common.add_argument(
        "--base-url", help=f"API host (default: $LOCUS_BASE_URL or {DEFAULT_BASE_URL})"
    )
    common.add_argument(
        "--max-concurrency",
        type=positive_int,
        default=None,
        metavar="N",
        help="requests on the wire at once: your account's allowance (default 1)",
    )
    common.add_argument(
        "-v", "--verbose", action="count", default=0, help="log to stderr (-v info, -vv debug)"
    )

    data_range = Parser(add_help=False)
    data_range.add_argument(
        "--fields", required=True, help="comma-separated short names, e.g. W_avg,Wh_sum"
    )
    data_range.add_argument("--start", help="local start (YYYY-MM-DDThh:mm:ss) in --tz")
    data_range.add_argument("--end", help="local end, exclusive")
    data_range.add_argument("--tz", required=True, help="IANA time zone, e.g. America/Los_Angeles")
    data_range.add_argument(
        "--gran", required=True, help="latest, 1min, 5min, 15min, hourly, daily, monthly, yearly"
    )

    parser = Parser(
        prog="locus-async",
        description="Locus Energy v3 from the command line: list, fetch, backfill, simulate; "
        "and SolarNetwork (solarnetwork/sn): nodes, metadata, instructions.",
        epilog="Credentials come from LOCUS_CLIENT_ID, LOCUS_CLIENT_SECRET, LOCUS_USERNAME, "
        "LOCUS_PASSWORD (or LOCUS_ACCESS_TOKEN); SolarNetwork from SN_TOKEN and SN_SECRET. "
        "Exit codes: 0 done, 1 API/network error (or a declined instruction), 2 usage, "
        "3 authentication, 4 a backfill with failed windows or an unfinished instruction, "
        "5 --out in use by another run, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"locus-async {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True

    commands.add_parser("check", parents=[common], help="check that the credentials work")

    for name, what in (("sites", "sites"), ("clients", "clients"), ("components", "components")):
        sub = commands.add_parser(name, parents=[common], help=f"list a partner's {what}")
        sub.add_argument("--partner", type=positive_int, required=True, help="partner id")
        sub.add_argument("--json", action="store_true", help="JSON instead of a table")
        if name == "components":
            sub.add_argument("--node-id", help="node (MAC) id; %% is a wildcard")
            sub.add_argument("--notes", help="notes; %% is a wildcard")

    site = commands.add_parser("site", parents=[common], help="show a site and its components")
    site.add_argument("site_id", type=positive_int)
    site.add_argument("--json", action="store_true")

    available = commands.add_parser(
        "available", parents=[common], help="what data an entity has (dataavailable)"
    )
    target = available.add_mutually_exclusive_group(required=True)
    target.add_argument("--component", type=positive_int)
    target.add_argument("--site", type=positive_int)
    target.add_argument("--partner", type=positive_int, help="bulk (all sites) data")
    available.add_argument("--json", action="store_true")

    data = commands.add_parser(
        "data", parents=[common, data_range], help="fetch a time series to stdout"
    )
    target = data.add_mutually_exclusive_group(required=True)
    target.add_argument("--component", type=positive_int)
    target.add_argument("--site", type=positive_int)
    data.add_argument("--format", choices=("table", "json", "csv"), default="table")
    data.add_argument(
        "--validate", action="store_true", help="check the fields against dataavailable first"
    )

    alerts = commands.add_parser("alerts", parents=[common], help="list alerts")
    target = alerts.add_mutually_exclusive_group(required=True)
    target.add_argument("--partner", type=positive_int)
    target.add_argument("--site", type=positive_int)
    target.add_argument("--component", type=positive_int)
    alerts.add_argument("--tz", default="UTC")
    alerts.add_argument(
        "--updated-since", help="local time in --tz (partner alerts: at most 7 days ago)"
    )
    alerts.add_argument(
        "--open-during", nargs=2, metavar=("START", "END"), help="local times in --tz"
    )
    alerts.add_argument(
        "--type", action="append", dest="alert_types", help="alert type (repeatable)"
    )
    alerts.add_argument("--status", choices=("open", "closed"))
    alerts.add_argument("--priority", action="append", choices=("high", "medium", "low"))
    alerts.add_argument("--json", action="store_true")

    backfill = commands.add_parser(
        "backfill",
        parents=[common, data_range],
        help="resumable backfill into Parquet (or CSV) files",
        description="Fetch every window of every entity into --out, one file per window. "
        "Running the same command again resumes: finished windows are skipped, failed ones "
        "retried.",
    )
    add_repeatable(backfill, "--component", help="component id (repeatable)", type=positive_int)
    add_repeatable(
        backfill, "--site", help="site-level data of a site (repeatable)", type=positive_int
    )
    add_repeatable(
        backfill,
        "--site-components",
        help="every component of a site (repeatable)",
        type=positive_int,
        metavar="SITE",
    )
    add_repeatable(
        backfill, "--partner", help="every component of a partner (repeatable)", type=positive_int
    )
    add_repeatable(
        backfill, "--node-type", help="only components of this node type (repeatable), e.g. METER"
    )
    backfill.add_argument("--out", required=True, help="output directory")
    backfill.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    backfill.add_argument("--json", action="store_true", help="print a JSON summary at the end")
    backfill.add_argument(
        "--repair",
        action="store_true",
        help="rebuild a lost or damaged checkpoint from the finished files (none is refetched)",
    )

    simulate = commands.add_parser(
        "simulate", help="serve the Locus (or --solarnetwork) simulator on loopback"
    )
    simulate.add_argument("--host", type=listen_host, default="127.0.0.1")
    simulate.add_argument("--port", type=port_number, default=8080)
    simulate.add_argument("--allowance", type=positive_int, default=1)
    simulate.add_argument(
        "--latency", type=non_negative_float, default=0.0, help="seconds added to every answer"
    )
    simulate.add_argument("--token-lifetime", type=positive_float, default=3600.0)
    simulate.add_argument(
        "--solarnetwork", action="store_true", help="the SolarNetwork SolarUser simulator"
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
    demo.add_argument("--json", action="store_true", help="print a JSON summary at the end")
    demo.add_argument("-v", "--verbose", action="count", default=0)

    add_solarnetwork_parser(commands, Parser)
    return parser


# --------------------------------------------------------------------------- output


def _series(io: CliIO, series: TimeSeries, fmt: str) -> None:
    if fmt == "json":
        io.out(json.dumps([jsonable(row) for row in series], indent=1))
    elif fmt == "csv":
        writer = csv.writer(io.stdout, lineterminator="\n")
        writer.writerow(["id", "ts", *series.fields])
        for row in series:
            writer.writerow(
                [
                    row["id"],
                    row["ts"].isoformat(),
                    *("" if row[f] is None else row[f] for f in series.fields),
                ]
            )
    else:
        table(
            io,
            [
                [row["id"], row["ts"].isoformat(), *(row[f] for f in series.fields)]
                for row in series
            ],
            ["id", "ts", *series.fields],
        )


class _ProgressBar:
    """tqdm on a terminal (windows done/total, rows, requests, 429s, retries, ETA), else silent."""

    def __init__(self, io: CliIO, label: str) -> None:
        self._io = io
        self._label = label
        self._bar: Any = None

    def __call__(self, progress: BackfillProgress) -> None:
        if not self._io.stderr.isatty():
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(
                total=progress.windows_total,
                initial=progress.windows_skipped,
                desc=self._label,
                unit="win",
                file=self._io.stderr,
                dynamic_ncols=True,
                leave=True,
                disable=False,  # the check above already found stderr to be a terminal
            )
        self._bar.n = progress.windows_done + progress.windows_skipped + progress.windows_failed
        self._bar.set_postfix(
            rows=f"{progress.rows:,}",
            req=progress.requests,
            r429=progress.rate_limited,
            retries=progress.retries,
            failed=progress.windows_failed,
            refresh=False,
        )
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


# --------------------------------------------------------------------------- commands


def _client(io: CliIO, args: argparse.Namespace) -> LocusClient:
    kwargs: dict[str, Any] = {"auth": auth_from_env(io.env)}
    if args.base_url is not None:  # given, even empty: checked as given
        kwargs["base_url"] = args.base_url
    elif io.env.get("LOCUS_BASE_URL"):  # an empty variable means unset
        kwargs["base_url"] = io.env["LOCUS_BASE_URL"]
    if args.max_concurrency is not None:
        kwargs["max_concurrency"] = args.max_concurrency
    if io.transport is not None:
        kwargs["transport"] = io.transport
    return LocusClient(**kwargs)


async def _run_check(io: CliIO, args: argparse.Namespace) -> int:
    async with _client(io, args) as client:
        kind = await client.authenticate()
    io.out(f"credentials accepted ({kind}) by {client.base_url}")
    return EXIT_OK


async def _run_list(io: CliIO, args: argparse.Namespace) -> int:
    async with _client(io, args) as client:
        if args.command == "sites":
            items: list[Any] = await client.partners.sites(args.partner)
            columns = ["id", "name", "client_id", "location_timezone", "locale3", "country_code"]
        elif args.command == "clients":
            items = await client.partners.clients(args.partner)
            columns = ["id", "first_name", "last_name", "tz", "email"]
        else:
            items = await client.partners.components(
                args.partner, node_id=args.node_id, notes=args.notes
            )
            columns = ["id", "site_id", "node_type", "name", "node_id", "parent_id"]
    objects(io, items, columns, args.json)
    return EXIT_OK


async def _run_site(io: CliIO, args: argparse.Namespace) -> int:
    async with _client(io, args) as client:
        site = await client.sites.get(args.site_id)
        components = await client.sites.components(args.site_id)
    if args.json:
        io.out(json.dumps({"site": jsonable(site), "components": jsonable(components)}, indent=2))
        return EXIT_OK
    io.out(
        f"site {site.id}: {site.name}, {site.locale3} {site.country_code}, "
        f"{site.location_timezone or 'no time zone'}"
    )
    objects(
        io, components, ["id", "node_type", "name", "node_id", "parent_type", "parent_id"], False
    )
    return EXIT_OK


async def _run_available(io: CliIO, args: argparse.Namespace) -> int:
    async with _client(io, args) as client:
        if args.component:
            fields: list[BaseField] = await client.components.data_available(args.component)
        elif args.site:
            fields = await client.sites.data_available(args.site)
        else:
            fields = await client.partners.bulk_data_available(args.partner)
    if args.json:
        io.out(json.dumps(jsonable(fields), indent=2))
    else:
        rows = [
            [
                b.base_field,
                ",".join(b.short_names) or "-",
                b.unit,
                b.source,
                ",".join(b.granularities),
            ]
            for b in fields
        ]
        table(io, rows, ["base field", "fields", "unit", "source", "granularities"])
    return EXIT_OK


async def _run_data(io: CliIO, args: argparse.Namespace) -> int:
    async with _client(io, args) as client:
        api = client.components if args.component else client.sites
        series = await api.data(
            args.component or args.site,
            fields=args.fields,
            start=args.start,
            end=args.end,
            tz=args.tz,
            gran=args.gran,
            validate=args.validate,
        )
    _series(io, series, args.format)
    return EXIT_OK


async def _run_alerts(io: CliIO, args: argparse.Namespace) -> int:
    options: dict[str, Any] = {
        "tz": args.tz,
        "updated_since": args.updated_since,
        "alert_types": args.alert_types,
        "status": args.status,
        "priority": args.priority,
        "open_during": tuple(args.open_during) if args.open_during else None,
    }
    async with _client(io, args) as client:
        if args.partner:
            alerts = await client.partners.alerts(args.partner, **options)
        elif args.site:
            alerts = await client.sites.alerts(args.site, **options)
        else:
            alerts = await client.components.alerts(args.component, **options)
    columns = ["id", "component_id", "site_id", "alert_type", "priority", "start", "end", "updated"]
    objects(io, alerts, columns, args.json)
    return EXIT_OK


def _spec(args: argparse.Namespace, gran: str | None = None) -> BackfillSpec:
    if args.start is None or args.end is None:
        raise CliUsage("backfill needs --start and --end")
    return BackfillSpec(
        fields=tuple(f.strip() for f in args.fields.split(",")),
        start=args.start,
        end=args.end,
        tz=args.tz,
        gran=gran or args.gran,
        components=tuple(args.component),
        sites=tuple(args.site),
        site_components=tuple(args.site_components),
        partner_components=tuple(args.partner),
        node_types=tuple(args.node_type),
        format=args.format,
    )


def _report(io: CliIO, result: BackfillResult, label: str = "backfill") -> None:
    status = (
        "complete"
        if result.complete
        else f"{len(result.failures)} window(s) failed; run again to retry"
    )
    io.err(
        f"{label}: {result.windows_done} windows written, {result.windows_skipped} already done, "
        f"{result.rows:,} rows, {result.requests} requests, {result.rate_limited} x 429, "
        f"{result.retries} retries in {result.elapsed:.1f} s; {status} -> {result.out}"
    )
    for failure in result.failures[:10]:
        io.err(
            f"  failed: {failure.kind[:-1]} {failure.entity_id} "
            f"{failure.start}..{failure.end}: {failure.error}"
        )


async def _run_backfill(io: CliIO, args: argparse.Namespace) -> int:
    spec = _spec(args)
    spec.check()
    bar = _ProgressBar(io, "backfill")
    async with _client(io, args) as client:
        try:
            result = await Backfill(client, spec, args.out, progress=bar, repair=args.repair).run()
        finally:
            bar.close()
    _report(io, result)
    if args.json:
        io.out(json.dumps(result.summary(), indent=2))
    return EXIT_OK if result.complete else EXIT_INCOMPLETE


def _run_simulate(io: CliIO, args: argparse.Namespace) -> int:
    from .simulator import describe_and_build
    from .simulator._server import serve_forever

    sim, lines = describe_and_build(args)
    for line in lines:
        io.out(line)
    serve_forever(sim.app, host=args.host, port=args.port)
    return EXIT_OK


async def _run_demo(io: CliIO, args: argparse.Namespace) -> int:
    from .demo import run_demo

    return await run_demo(
        io.out,
        io.err,
        args.out,
        latency=args.latency,
        as_json=args.json,
        progress=lambda label: _ProgressBar(io, label),
    )


_ASYNC: dict[str, Callable[[CliIO, argparse.Namespace], Coroutine[Any, Any, int]]] = {
    "check": _run_check,
    "sites": _run_list,
    "clients": _run_list,
    "components": _run_list,
    "site": _run_site,
    "available": _run_available,
    "data": _run_data,
    "alerts": _run_alerts,
    "backfill": _run_backfill,
    "demo": _run_demo,
    "solarnetwork": run_solarnetwork,
    "sn": run_solarnetwork,
}


def _configure_logging(io: CliIO, verbose: int) -> None:
    if verbose <= 0:
        return
    handler = logging.StreamHandler(io.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_RedactingFilter([io.env.get(name, "") for name in _SECRET_VARIABLES]))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    transport: Any = None,
) -> int:
    """Run the CLI; returns the exit code (``locus-async`` calls ``sys.exit`` with it)."""
    io = CliIO(
        stdout or sys.stdout, stderr or sys.stderr, os.environ if env is None else env, transport
    )
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    _configure_logging(io, getattr(args, "verbose", 0))
    secrets = [io.env.get(name, "") for name in _SECRET_VARIABLES]
    try:
        if args.command == "simulate":
            return _run_simulate(io, args)
        return anyio.run(_ASYNC[args.command], io, args)
    except (CliUsage, UsageError) as exc:
        io.err(f"locus-async: error: {redact(str(exc), secrets)}")
        return EXIT_USAGE
    except AuthenticationError as exc:
        io.err(f"locus-async: authentication failed: {redact(str(exc), secrets)}")
        return EXIT_AUTH
    except OutputLocked as exc:
        io.err(f"locus-async: error: {redact(str(exc), secrets)}")
        return EXIT_LOCKED
    except LocusError as exc:
        io.err(f"locus-async: {type(exc).__name__}: {redact(str(exc), secrets)}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        io.err("locus-async: interrupted; a backfill resumes where it stopped when run again")
        return 130
    except OSError as exc:
        io.err(f"locus-async: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
