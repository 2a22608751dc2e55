"""The dataset commands of ``locus-async``: ``backfill`` (start or grow a dataset) and
``sync`` (keep it current: once, for cron, or ``--every 5m`` as a service).

Owns: their arguments, ``--plan``, the ``--every`` loop, stopping cleanly on SIGTERM and
Ctrl-C, and their summaries (one line on stderr; ``--json`` on stdout). Must never: echo
a credential, or leave a run half-recorded when stopped (the backfill's checkpoint is
written on the way out).
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import anyio

from locus_async._core.http import redact
from locus_async._shell.fanout import run_in_thread
from locus_async._shell.store import OutputLocked
from locus_async.cli import cluster
from locus_async.cli.common import (
    EXIT_INCOMPLETE,
    EXIT_OK,
    CliIO,
    CliUsage,
    Parser,
    Runner,
    add_repeatable,
    count,
    positive_int,
)
from locus_async.cli.progress import ProgressBar
from locus_async.errors import LocusError, UsageError
from locus_async.locus._core.freshness import parse_duration
from locus_async.locus.backfill import (
    Backfill,
    BackfillPlan,
    BackfillResult,
    BackfillSpec,
)

__all__ = ["add_commands"]

_SECRETS = ("LOCUS_CLIENT_SECRET", "LOCUS_PASSWORD", "LOCUS_ACCESS_TOKEN")

#: Exit code of a run stopped by SIGTERM (128 + 15), as shells report it.
EXIT_TERMINATED = 143


def _duration(text: str) -> int:
    try:
        return parse_duration(text, "duration")
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("duration ")) from None


def _positive_duration(text: str) -> int:
    seconds = _duration(text)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
    return seconds


def _freshness(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-lag",
        type=_duration,
        default=7 * 86_400,
        metavar="DURATION",
        help="refetch a window whose data is not all in until it is this old (default 7d)",
    )
    parser.add_argument(
        "--lookback",
        type=_duration,
        default=0,
        metavar="DURATION",
        help="also refetch final windows ending within DURATION and replace changed ones",
    )
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="ask again for windows the server refused (400/403/404) and re-check dataavailable",
    )
    parser.add_argument(
        "--no-compact",
        action="store_true",
        help="do not merge final windows into one file per partition at the end of the run",
    )
    parser.add_argument(
        "--plan",
        action="store_true",
        help="print the entities, windows and requests the run would make; fetch no data",
    )
    parser.add_argument(
        "--now",
        type=_moment,
        metavar="ISO",
        help="the moment to run up to, with its UTC offset (default: the wall clock); "
        "for reproducible runs and replays",
    )


def _dataset_out(parser: Any, *, required: bool = True) -> None:
    parser.add_argument(
        "--out",
        required=required,
        metavar="OUT",
        help="the dataset's directory or URL (s3://bucket/prefix, gs://, az://)",
    )


def _moment(text: str) -> float:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 time such as 2024-06-01T12:00:00+00:00"
        ) from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a UTC offset, such as +00:00")
    return value.timestamp()


def add_commands(commands: Any, common: Parser, data_range: Parser) -> dict[str, Runner]:
    """Register ``backfill`` and ``sync`` on ``commands``; returns their runners."""
    backfill = commands.add_parser(
        "backfill",
        parents=[common, data_range],
        help="start or grow a resumable dataset of Parquet (or CSV) files",
        description="Fetch every window of every entity into --out (Parquet partitioned by "
        "month, or by year from daily up; final windows merged into one file per partition). "
        "Running it again resumes: finished windows are skipped, failed ones retried. "
        "--end now keeps the dataset open for sync; --start takes -30d too. Into an "
        "existing --out it grows the dataset (more entities, an earlier start, a later end).",
    )
    add_repeatable(backfill, "--component", help="component id (repeatable)", type=positive_int)
    add_repeatable(
        backfill, "--site", help="site-level data of a site (repeatable)", type=positive_int
    )
    add_repeatable(
        backfill,
        "--site-components",
        help="every component of a site, now and later (repeatable)",
        type=positive_int,
        metavar="SITE",
    )
    add_repeatable(
        backfill,
        "--partner",
        help="every component of a partner, now and later (repeatable)",
        type=positive_int,
    )
    add_repeatable(
        backfill, "--node-type", help="only components of this node type (repeatable), e.g. METER"
    )
    backfill.add_argument(
        "--out",
        required=True,
        help="output directory or URL (s3://bucket/prefix, gs://, az://; its state is kept "
        "beside it, in OUT.locus)",
    )
    backfill.add_argument(
        "--format", choices=("parquet", "csv"), default="parquet", help="file format of the dataset"
    )
    backfill.add_argument(
        "--repair",
        action="store_true",
        help="rebuild a lost or damaged checkpoint from the finished files (none is refetched)",
    )
    _freshness(backfill)
    cluster.add_options(backfill)

    sync = commands.add_parser(
        "sync",
        parents=[common],
        help="bring the dataset in --out up to now (for cron, or --every as a service)",
        description="Run the dataset stored in --out up to now: new windows, windows whose "
        "data was not all in yet, components that appeared in its partners and sites. "
        "--every keeps syncing on that period until SIGTERM or Ctrl-C. --config FLEET.toml "
        "keeps every dataset of several credentials current in one command.",
    )
    where = sync.add_mutually_exclusive_group(required=True)
    _dataset_out(where, required=False)
    where.add_argument(
        "--config",
        metavar="FLEET.toml",
        help="a fleet file: [credentials.NAME] (env_prefix, allowance, base_url) and "
        "[[datasets]] (credential, out, and the backfill's fields to create it)",
    )
    add_repeatable(sync, "--add-component", help="add a component (repeatable)", type=positive_int)
    add_repeatable(
        sync, "--add-site", help="add a site's site-level data (repeatable)", type=positive_int
    )
    sync.add_argument(
        "--every",
        type=_positive_duration,
        metavar="DURATION",
        help="keep running, one sync per DURATION (5m, 1h); stops on SIGTERM or Ctrl-C",
    )
    _freshness(sync)
    cluster.add_options(sync)

    compact = commands.add_parser(
        "compact",
        parents=[common],
        help="merge the final windows of the dataset in --out into one file per partition",
        description="Merge every partition's final windows (and earlier merged files) into "
        "one Parquet file sorted by (id, ts); provisional windows stay as they are. Safe to "
        "kill at any moment and to run again; backfill and sync do it when worthwhile.",
    )
    _dataset_out(compact)
    return {"backfill": _run_backfill, "sync": _run_sync, "compact": _run_compact}


# --------------------------------------------------------------------------- output


def _report(io: CliIO, result: BackfillResult, label: str, *, quiet: bool = False) -> None:
    """The run's summary line on stderr (not with ``--quiet``), then what went wrong (always)."""
    if result.complete:
        status = "complete"
    else:
        status = f"{len(result.failures)} window(s) failed; run again to retry"
        if result.new_permanent:
            status = (
                f"{len(result.failures)} window(s) failed (retried next run), "
                f"{result.new_permanent} refused by the server (not asked again)"
            )
    fresh = ""
    if result.windows_provisional or result.windows_refreshed:
        fresh = f", {result.windows_refreshed} refreshed, {result.windows_provisional} provisional"
    if not quiet:
        io.err(
            f"{label}: {count(result.windows_done, 'window')} written, "
            f"{result.windows_skipped} already done{fresh}, {count(result.rows, 'row')}, "
            f"{count(result.requests, 'request')}, {result.rate_limited} x 429, "
            f"{count(result.retries, 'retry', 'retries')} in "
            f"{result.elapsed:.1f} s; {status} -> {result.out}"
        )
    for failure in result.failures[:10]:
        io.err(
            f"  failed: {failure.kind[:-1]} {failure.entity_id} "
            f"{failure.start}..{failure.end}: {failure.error}"
        )
    if result.permanent_failures:
        io.err(
            f"  {len(result.permanent_failures)} window(s) refused by the server are not asked "
            "again (fix the dataset, or --retry-failed); first: "
            f"{result.permanent_failures[0].error}"
        )
    for kind, ident, reason in result.skipped_entities[:10]:
        io.err(f"  skipped: {kind[:-1]} {ident}: {reason}")
    if len(result.new_entities) < result.entities:  # not a new dataset: say what joined
        for kind, ident in result.new_entities[:10]:
            io.err(f"  new: {kind[:-1]} {ident}")
    for kind, ident, start, end, missing in result.gaps[:10]:
        io.err(f"  final with gaps: {kind[:-1]} {ident} {start}..{end}: {missing} empty rows")


def _show_plan(io: CliIO, plan: BackfillPlan, as_json: bool) -> None:
    if as_json:
        io.out(json.dumps(plan.summary(), indent=2))
        return
    io.out(f"plan for {plan.out}: {len(plan.entities)} entities")
    for kind, ident, fields in plan.entities:
        io.out(f"  {kind[:-1]} {ident}: {','.join(fields)}")
    for kind, ident, reason in plan.skipped_entities:
        io.out(f"  skipped: {kind[:-1]} {ident}: {reason}")
    io.out(
        f"windows: {plan.windows_total} in the dataset: {plan.windows_new} new, "
        f"{plan.windows_provisional} provisional, {plan.windows_lookback} in the lookback, "
        f"{plan.windows_refused} refused (not asked again), {plan.windows_done} done"
    )
    io.out(
        f"requests: {plan.requests} data requests, about {plan.estimated_seconds:.1f} s at "
        f"allowance {plan.allowance} ({plan.seconds_per_request:.2f} s per request)"
    )


# --------------------------------------------------------------------------- running


def _spec(args: argparse.Namespace) -> BackfillSpec:
    if args.start is None or args.end is None:
        raise CliUsage("backfill needs --start and --end (--end now keeps the dataset open)")
    return BackfillSpec(
        fields=tuple(f.strip() for f in args.fields.split(",")),
        start=args.start,
        end=args.end,
        tz=args.tz,
        gran=args.gran,
        components=tuple(args.component),
        sites=tuple(args.site),
        site_components=tuple(args.site_components),
        partner_components=tuple(args.partner),
        node_types=tuple(args.node_type),
        format=args.format,
    )


def _options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {
        "max_lag": args.max_lag,
        "lookback": args.lookback,
        "retry_failed": args.retry_failed,
        "compact": not args.no_compact,
    }
    if args.now is not None:
        moment = float(args.now)
        options["clock"] = lambda: moment
    if args.command == "backfill":
        options["repair"] = args.repair
    else:
        options["add_components"] = tuple(args.add_component)
        options["add_sites"] = tuple(args.add_site)
    return options


async def _once(
    io: CliIO,
    args: argparse.Namespace,
    make: Callable[..., Backfill],
    run: cluster.Run = Backfill.run,
    *,
    lines: bool = False,
) -> int:
    """One run (or its plan) by ``run``; ``lines``: the JSON summary on one line
    (``--every``)."""
    if args.plan:
        _show_plan(io, await make().plan(), args.json)
        return EXIT_OK
    bar = ProgressBar(io, args.command, enabled=not (args.quiet or args.no_progress))
    try:
        result = await run(make(progress=bar))
    finally:
        bar.close()
    _report(io, result, args.command, quiet=args.quiet)
    if args.json:
        io.out(json.dumps(result.summary(), indent=None if lines else 2))
    return EXIT_OK if result.complete else EXIT_INCOMPLETE


async def _stoppable(io: CliIO, body: Callable[[], Awaitable[int]]) -> int:
    """Run ``body``; SIGTERM (and in the main thread Ctrl-C, as always) stops it cleanly:
    the run in progress records where it stopped."""
    if threading.current_thread() is not threading.main_thread():
        return await body()
    code: list[int] = []
    failure: list[Exception] = []
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM) as signals:
                async for _ in signals:
                    io.err(f"locus-async: {signal.Signals.SIGTERM.name}: stopping")
                    code.append(EXIT_TERMINATED)
                    group.cancel_scope.cancel()
                    return

        async def run() -> None:
            try:
                code.append(await body())
            except Exception as exc:  # raised as itself below, not in an exception group
                failure.append(exc)
            group.cancel_scope.cancel()

        group.start_soon(watch)
        group.start_soon(run)
    if failure:
        raise failure[0]
    return code[0]


async def _run_backfill(io: CliIO, args: argparse.Namespace) -> int:
    from locus_async.cli.locus import locus_client

    spec = _spec(args)
    spec.check(args.now)
    async with cluster.coordinator(io, args, lambda: locus_client(io, args)) as (client, run):

        def make(**extra: Any) -> Backfill:
            return Backfill(client, spec, args.out, **_options(args), **extra)

        return await _stoppable(io, lambda: _once(io, args, make, run))


async def _run_sync(io: CliIO, args: argparse.Namespace) -> int:
    from locus_async.cli.locus import locus_client

    if args.config is not None:
        if args.every is not None or args.plan:
            raise CliUsage("--config runs each dataset once; leave out --every and --plan")
        if args.add_component or args.add_site:
            raise CliUsage("--config: add entities in the fleet file, not with --add-*")
        enabled = not (args.quiet or args.no_progress)

        def lines(label: str) -> ProgressBar:
            return ProgressBar(io, label, enabled=enabled, bar=False)

        return await _stoppable(io, lambda: cluster.run_fleet(io, args, _options(args), lines))
    async with cluster.coordinator(io, args, lambda: locus_client(io, args)) as (client, run):

        def make(**extra: Any) -> Backfill:
            return Backfill.sync(client, args.out, **_options(args), **extra)

        if args.every is None:
            return await _stoppable(io, lambda: _once(io, args, make, run))
        if args.plan:
            raise CliUsage("--plan shows one run; leave out --every")
        return await _stoppable(io, lambda: _every(io, args, make, run))


async def _run_compact(io: CliIO, args: argparse.Namespace) -> int:
    from locus_async.locus.compaction import compact_dataset

    result = await run_in_thread(compact_dataset, args.out)
    io.err(
        f"compact: {result.partitions} partition(s) rewritten, {result.files_before} files "
        f"into {result.files_after}, {result.rows:,} rows -> {args.out}"
    )
    if args.json:
        io.out(json.dumps({"out": args.out, **result.summary()}, indent=2))
    return EXIT_OK


async def _every(
    io: CliIO, args: argparse.Namespace, make: Callable[..., Backfill], run: cluster.Run
) -> int:
    """One sync per period, on a fixed rate (a long one is followed at once by the next).
    A failed sync is reported and the next one tries again; only a usage error stops."""
    period = float(args.every)
    next_start = anyio.current_time()
    while True:
        try:
            await _once(io, args, make, run, lines=True)
        except (UsageError, CliUsage):
            raise
        except OutputLocked as exc:
            io.err(f"sync: skipped: {exc}")
        except LocusError as exc:
            secrets = [io.env.get(name, "") for name in _SECRETS]
            io.err(
                f"sync: {type(exc).__name__}: {redact(str(exc), secrets)}; "
                f"trying again in {args.every} s"
            )
        next_start += period
        await anyio.sleep(max(0.0, next_start - anyio.current_time()))
