"""The Locus commands of ``locus-async``: check, sites, clients, components, site,
available, data, alerts (and, from ``cli.datasets``, backfill and sync).

Owns: their arguments, reading Locus credentials from the environment (``LOCUS_*``), and
their output (tables, JSON, CSV). Must never: echo a credential.
"""

from __future__ import annotations

import argparse
import csv
import json
from typing import Any

from locus_async.cli import datasets
from locus_async.cli.common import (
    EXIT_OK,
    CliIO,
    Parser,
    Runner,
    client_options,
    jsonable,
    name_value,
    objects,
    positive_int,
    table,
)
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
    common.add_argument(
        "-v", "--verbose", action="count", default=0, help="log to stderr (-v info, -vv debug)"
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
    data.add_argument(
        "--param",
        type=name_value,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a field parameter of a modelled field (repeatable), e.g. modelType=simple",
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


# --------------------------------------------------------------------------- commands


def locus_client(io: CliIO, args: argparse.Namespace) -> LocusClient:
    """The Locus client of a command: credentials from the environment, host and
    allowance from the command line."""
    kwargs = client_options(io, args, "LOCUS_BASE_URL")
    if args.max_concurrency is not None:
        kwargs["max_concurrency"] = args.max_concurrency
    return LocusClient(auth=auth_from_env(io.env), **kwargs)


async def _run_check(io: CliIO, args: argparse.Namespace) -> int:
    async with locus_client(io, args) as client:
        kind = await client.authenticate()
    io.out(f"credentials accepted ({kind}) by {client.base_url}")
    return EXIT_OK


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
    objects(io, items, columns, args.json)
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
        io, components, ["id", "node_type", "name", "node_id", "parent_type", "parent_id"], False
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
    async with locus_client(io, args) as client:
        api = client.components if args.component else client.sites
        series = await api.data(
            args.component or args.site,
            fields=args.fields,
            start=args.start,
            end=args.end,
            tz=args.tz,
            gran=args.gran,
            validate=args.validate,
            field_params=dict(args.param) or None,
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
    async with locus_client(io, args) as client:
        if args.partner:
            alerts = await client.partners.alerts(args.partner, **options)
        elif args.site:
            alerts = await client.sites.alerts(args.site, **options)
        else:
            alerts = await client.components.alerts(args.component, **options)
    columns = ["id", "component_id", "site_id", "alert_type", "priority", "start", "end", "updated"]
    objects(io, alerts, columns, args.json)
    return EXIT_OK
