"""The Locus commands of ``locus-async``: check, sites, clients, components, site,
available, data, alerts (and, from ``cli.datasets``, backfill and sync).

Owns: their arguments, reading Locus credentials from the environment (``LOCUS_*``), and
their output (tables, JSON, CSV). Must never: echo a credential.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from locus_async.cli import datasets
from locus_async.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    CliIO,
    Parser,
    Runner,
    add_format,
    client_options,
    count,
    jsonable,
    name_value,
    objects,
    output_format,
    positive_int,
    records,
)
from locus_async.cli.progress import ProgressBar
from locus_async.errors import NotFound, PermissionDenied, UsageError
from locus_async.locus.auth import CognitoPasswordGrant
from locus_async.locus.backfill import BackfillProgress
from locus_async.locus.client import DEFAULT_BASE_URL, LocusClient, auth_from_env
from locus_async.locus.models import BaseField
from locus_async.locus.timeseries import TimeSeries

__all__ = ["add_commands", "locus_client"]

# --------------------------------------------------------------------------- parsing


def add_commands(commands: Any) -> dict[str, Runner]:
    """Register the Locus commands on ``commands``; returns their runners by name."""
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

    data_range = Parser(add_help=False)
    data_range.add_argument(
        "--fields", required=True, help="comma-separated short names, e.g. W_avg,Wh_sum"
    )
    data_range.add_argument(
        "--start", help="local start (YYYY-MM-DDThh:mm:ss) in --tz; backfill: also -30d"
    )
    data_range.add_argument("--end", help="local end, exclusive; backfill: also now")
    data_range.add_argument("--tz", required=True, help="IANA time zone, e.g. America/Los_Angeles")
    data_range.add_argument(
        "--gran", required=True, help="latest, 1min, 5min, 15min, hourly, daily, monthly, yearly"
    )

    check = commands.add_parser(
        "check",
        parents=[common],
        help="who the credentials are, what they reach, at what allowance",
    )
    check.add_argument(
        "--partner",
        type=positive_int,
        action="append",
        metavar="ID",
        help="count this partner's sites, clients and components (repeatable)",
    )

    for name, what in (("sites", "sites"), ("clients", "clients"), ("components", "components")):
        sub = commands.add_parser(name, parents=[common], help=f"list a partner's {what}")
        sub.add_argument(
            "--partner",
            type=positive_int,
            metavar="ID",
            help="partner id (default: the partner a Cognito sign-in names)",
        )
        add_format(sub)
        if name == "components":
            sub.add_argument("--node-id", help="node (MAC) id; %% is a wildcard")
            sub.add_argument("--notes", help="notes; %% is a wildcard")

    site = commands.add_parser("site", parents=[common], help="show a site and its components")
    site.add_argument("site_id", type=positive_int, help="site id")

    available = commands.add_parser(
        "available", parents=[common], help="what data an entity has (dataavailable)"
    )
    target = available.add_mutually_exclusive_group(required=True)
    target.add_argument("--component", type=positive_int, metavar="ID", help="component id")
    target.add_argument(
        "--site", type=positive_int, metavar="ID", help="site id (site-level fields)"
    )
    target.add_argument("--partner", type=positive_int, metavar="ID", help="bulk (all sites) data")
    add_format(available)

    data = commands.add_parser(
        "data", parents=[common, data_range], help="fetch a time series to stdout"
    )
    target = data.add_mutually_exclusive_group(required=True)
    target.add_argument("--component", type=positive_int, metavar="ID", help="component id")
    target.add_argument("--site", type=positive_int, metavar="ID", help="site id (site-level data)")
    add_format(data)
    data.add_argument(
        "--validate", action="store_true", help="check the fields against dataavailable first"
    )
    data.add_argument(
        "--param",
        type=name_value,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a field parameter of a modelled field (repeatable), e.g. modelType=simple",
    )

    alerts = commands.add_parser("alerts", parents=[common], help="list alerts")
    add_format(alerts)
    target = alerts.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--partner", type=positive_int, metavar="ID", help="partner id (every site)"
    )
    target.add_argument("--site", type=positive_int, metavar="ID", help="site id")
    target.add_argument("--component", type=positive_int, metavar="ID", help="component id")
    alerts.add_argument("--tz", default="UTC", help="IANA time zone of the times given and shown")
    alerts.add_argument(
        "--updated-since", help="local time in --tz (partner alerts: at most 7 days ago)"
    )
    alerts.add_argument(
        "--open-during", nargs=2, metavar=("START", "END"), help="local times in --tz"
    )
    alerts.add_argument(
        "--type", action="append", dest="alert_types", help="alert type (repeatable)"
    )
    alerts.add_argument("--status", choices=("open", "closed"), help="only open or closed alerts")
    alerts.add_argument(
        "--priority",
        action="append",
        choices=("high", "medium", "low"),
        help="only this priority (repeatable)",
    )

    return {
        "check": _run_check,
        "sites": _run_list,
        "clients": _run_list,
        "components": _run_list,
        "site": _run_site,
        "available": _run_available,
        "data": _run_data,
        "alerts": _run_alerts,
        **datasets.add_commands(commands, common, data_range),
    }


# --------------------------------------------------------------------------- output


def _series(io: CliIO, series: TimeSeries, fmt: str) -> None:
    """A time series' rows (id, ts with its offset, one column per field) as ``fmt``."""
    records(io, list(series), ["id", "ts", *series.fields], fmt)


# --------------------------------------------------------------------------- commands


def locus_client(io: CliIO, args: argparse.Namespace) -> LocusClient:
    """The Locus client of a command: credentials from the environment, host and
    allowance from the command line."""
    kwargs = client_options(io, args, "LOCUS_BASE_URL")
    if args.max_concurrency is not None:
        kwargs["max_concurrency"] = args.max_concurrency
    return LocusClient(auth=auth_from_env(io.env), **kwargs)


def _identity(auth: object) -> str:
    """Who a credential is, without any secret: the user, the API client, or a token."""
    user, client_id = getattr(auth, "username", None), getattr(auth, "client_id", None)
    if isinstance(auth, CognitoPasswordGrant):
        return f"{user} (Cognito app client {client_id} at {auth.endpoint})"
    if user and client_id:
        return f"{user} (API client {client_id})"
    if client_id:
        return f"API client {client_id}"
    return "a bearer token (LOCUS_ACCESS_TOKEN)"


async def _signed_in_partner(client: LocusClient) -> int | None:
    """The partner a sign-in names (Cognito's ``custom:partnerId``), or None."""
    try:
        return await client.partner_id()
    except UsageError:
        return None


async def _run_check(io: CliIO, args: argparse.Namespace) -> int:
    """Who the credential is, how it signs in, what it reaches and at what allowance."""
    partners = list(args.partner or ())
    reach: list[dict[str, Any]] = []
    async with locus_client(io, args) as client:
        kind = await client.authenticate()
        signed_in = await _signed_in_partner(client)
        if not partners and signed_in is not None:
            partners = [signed_in]
        for partner in partners:
            try:
                counts = {
                    "sites": len(await client.partners.sites(partner)),
                    "clients": len(await client.partners.clients(partner)),
                    "components": len(await client.partners.components(partner)),
                }
            except (NotFound, PermissionDenied) as exc:
                reach.append({"partner": partner, "error": str(exc)})
                continue
            reach.append({"partner": partner, **counts})
        stats = client.stats
        summary = {
            "host": client.base_url,
            "identity": _identity(auth_from_env(io.env)),
            "sign_in": kind,
            "signed_in_partner": signed_in,
            "allowance": client.limiter.capacity,
            "allowance_source": "--max-concurrency" if args.max_concurrency else "default",
            "requests": stats.requests,
            "rate_limited": stats.rate_limited,
            "partners": reach,
        }
    if args.json:
        io.out(json.dumps(summary, indent=2))
    else:
        how = "Cognito sign-in" if kind == "cognito" else f"{kind} grant"
        io.out(f"credentials accepted: {how} for {summary['identity']}")
        io.out(f"host: {summary['host']}")
        told = "set by --max-concurrency" if args.max_concurrency else "the API's documented"
        io.out(
            f"allowance: {count(client.limiter.capacity, 'request')} at a time ({told}); "
            f"observed {stats.rate_limited} x 429 in {count(stats.requests, 'request')}"
        )
        for entry in reach:
            if "error" in entry:
                io.out(f"partner {entry['partner']}: not reachable: {entry['error']}")
            else:
                named = " (the sign-in's)" if entry["partner"] == signed_in else ""
                io.out(
                    f"partner {entry['partner']}{named}: {entry['sites']} sites, "
                    f"{entry['clients']} clients, {entry['components']} components"
                )
        if not partners:
            io.out("partners: add --partner ID (repeatable) to count what it reaches")
    return EXIT_ERROR if any("error" in entry for entry in reach) else EXIT_OK


async def _run_list(io: CliIO, args: argparse.Namespace) -> int:
    async with locus_client(io, args) as client:
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
    objects(io, items, columns, output_format(io, args))
    return EXIT_OK


async def _run_site(io: CliIO, args: argparse.Namespace) -> int:
    async with locus_client(io, args) as client:
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
        io, components, ["id", "node_type", "name", "node_id", "parent_type", "parent_id"], "table"
    )
    return EXIT_OK


async def _run_available(io: CliIO, args: argparse.Namespace) -> int:
    async with locus_client(io, args) as client:
        if args.component:
            fields: list[BaseField] = await client.components.data_available(args.component)
        elif args.site:
            fields = await client.sites.data_available(args.site)
        else:
            fields = await client.partners.bulk_data_available(args.partner)
    fmt = output_format(io, args)
    if fmt in ("json", "jsonl"):
        objects(io, fields, [], fmt)
        return EXIT_OK
    rows = [
        {
            "base field": b.base_field,
            "fields": ",".join(b.short_names) or "-",
            "unit": b.unit,
            "source": b.source,
            "granularities": ",".join(b.granularities),
        }
        for b in fields
    ]
    records(io, rows, ["base field", "fields", "unit", "source", "granularities"], fmt)
    return EXIT_OK


async def _run_data(io: CliIO, args: argparse.Namespace) -> int:
    """One time series to stdout; a range of several windows shows its progress on
    stderr (a bar on a terminal, a line every 30 s otherwise) as the windows arrive."""
    query: dict[str, Any] = {
        "fields": args.fields, "start": args.start, "end": args.end, "tz": args.tz,
        "gran": args.gran, "validate": args.validate, "field_params": dict(args.param) or None,
    }  # fmt: skip
    async with locus_client(io, args) as client:
        api = client.components if args.component else client.sites
        ident = args.component or args.site
        planned = {k: query[k] for k in ("fields", "start", "end", "tz", "gran")}
        windows = api.plan(**planned)
        if windows is None or len(windows) < 2:
            series = await api.data(ident, **query)
        else:
            progress = BackfillProgress(windows_total=len(windows))
            bar = ProgressBar(io, "data", enabled=not (args.quiet or args.no_progress))
            parts: list[TimeSeries] = []
            try:
                async with api.iter_data(ident, **query) as stream:
                    async for part in stream:
                        parts.append(part)
                        stats = client.stats
                        progress.windows_done, progress.rows = len(parts), progress.rows + len(part)
                        progress.requests, progress.retries = stats.requests, stats.retries
                        progress.rate_limited = stats.rate_limited
                        bar(progress)
            finally:
                bar.close()
            series = TimeSeries.concat(parts)
    _series(io, series, output_format(io, args))
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
    async with locus_client(io, args) as client:
        if args.partner:
            alerts = await client.partners.alerts(args.partner, **options)
        elif args.site:
            alerts = await client.sites.alerts(args.site, **options)
        else:
            alerts = await client.components.alerts(args.component, **options)
    columns = ["id", "component_id", "site_id", "alert_type", "priority", "start", "end", "updated"]
    objects(io, alerts, columns, output_format(io, args))
    return EXIT_OK
