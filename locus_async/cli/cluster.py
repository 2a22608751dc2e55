"""Running ``backfill`` and ``sync`` past one process: ``--redis`` (one allowance and one
token per credential across processes), ``--dask`` (the windows fetched on a Dask
cluster), and ``sync --config FLEET.toml`` (many credentials and their datasets in one
command, progress per credential).

Owns: those options, the coordinator's client and the Dask connection of a run, and the
fleet run with its per-credential summary. Must never: send a secret to a worker (workers
read their own environment) or let one credential's failure stop the others.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio

from locus_async._shell.fanout import run_in_thread
from locus_async.cli.common import (
    EXIT_AUTH,
    EXIT_INCOMPLETE,
    EXIT_OK,
    CliIO,
    CliUsage,
    client_options,
    count,
    positive_int,
    require,
)
from locus_async.distributed import DEFAULT_PARTITION_WINDOWS, Credential, load_fleet
from locus_async.errors import AuthenticationError, LocusError
from locus_async.locus.backfill import Backfill, BackfillResult
from locus_async.locus.client import LocusClient

__all__ = ["Run", "add_options", "coordinator", "run_fleet"]

#: How one backfill is run: ``Backfill.run`` here, or on the cluster.
Run = Callable[[Backfill], Awaitable[BackfillResult]]


def add_options(parser: argparse.ArgumentParser) -> None:
    """``--redis``, ``--dask``, ``--partition-windows`` and ``--credential`` on ``parser``."""
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="share the credential's allowance and token through this Redis (redis://...) "
        "with every process and worker using it",
    )
    parser.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="fetch the windows on the Dask scheduler at ADDRESS (tcp://HOST:PORT); each "
        "worker reads the credential from its own environment; needs --redis",
    )
    parser.add_argument(
        "--partition-windows",
        type=positive_int,
        default=DEFAULT_PARTITION_WINDOWS,
        metavar="N",
        help="windows of one entity per Dask task",
    )
    parser.add_argument(
        "--credential",
        default="default",
        metavar="NAME",
        help="the credential's name in Redis keys and progress (LOCUS_* variables)",
    )


def _connect(address: str) -> Any:
    """A (blocking) Dask client of the scheduler at ``address``."""
    from distributed import Client

    make: Any = Client  # distributed's constructor has no annotations
    try:
        return make(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise CliUsage(f"cannot reach the Dask scheduler at {address}: {exc}") from None


@contextlib.asynccontextmanager
async def _dask(address: str | None) -> AsyncIterator[Any]:
    if address is None:
        yield None
        return
    require("--dask", "dask", "distributed")
    client = await run_in_thread(_connect, address)
    try:
        yield client
    finally:
        with anyio.CancelScope(shield=True):
            await run_in_thread(client.close)


def _runner(dask: Any, credential: Credential, windows: int) -> Run:
    if dask is None:
        return Backfill.run
    return lambda backfill: backfill.run_on(dask, credential, partition_windows=windows)


@contextlib.asynccontextmanager
async def coordinator(
    io: CliIO, args: argparse.Namespace, plain: Callable[[], LocusClient]
) -> AsyncIterator[tuple[LocusClient, Run]]:
    """The client a backfill or sync plans with, and how it runs: ``plain()`` here, or
    the credential of the ``LOCUS_*`` variables through ``--redis`` (and on ``--dask``)."""
    if args.dask is None and args.redis is None:
        async with plain() as client:
            yield client, Backfill.run
        return
    if args.dask is not None and args.redis is None:
        raise CliUsage("--dask needs --redis URL: it keeps every worker inside the allowance")
    options = client_options(io, args, "LOCUS_BASE_URL")
    credential = Credential(
        name=args.credential,
        allowance=args.max_concurrency or 1,
        base_url=options.pop("base_url", None),
        redis=args.redis,
    )
    async with _dask(args.dask) as dask, credential.client(io.env, **options) as client:
        yield client, _runner(dask, credential, args.partition_windows)


async def run_fleet(
    io: CliIO,
    args: argparse.Namespace,
    options: dict[str, Any],
    progress: Callable[[str], Callable[..., None]],
) -> int:
    """``sync --config``: every dataset of the fleet file at once, each credential with
    its own client and allowance; a line per dataset, then one per credential."""
    if args.dask is not None:
        require("--dask", "dask", "distributed")
    datasets = load_fleet(args.config, redis=args.redis)
    if args.dask is not None and any(d.credential.redis is None for d in datasets):
        raise CliUsage("--dask needs --redis URL (or redis = ... in the fleet file)")
    extra = {"transport": io.transport} if io.transport is not None else {}
    outcomes: list[tuple[str, BackfillResult | LocusError]] = []
    async with contextlib.AsyncExitStack() as stack:
        dask = await stack.enter_async_context(_dask(args.dask))
        clients: dict[Credential, LocusClient] = {}
        for dataset in datasets:
            if dataset.credential not in clients:
                client = dataset.credential.client(io.env, **extra)
                clients[dataset.credential] = await stack.enter_async_context(client)

        async def one(index: int) -> None:
            dataset = datasets[index]
            name = dataset.credential.name
            backfill = Backfill(
                clients[dataset.credential],
                dataset.spec,
                dataset.out,
                progress=progress(f"sync {name} {dataset.out}"),
                **options,
            )
            run = _runner(dask, dataset.credential, args.partition_windows)
            try:
                result = await run(backfill)
            except LocusError as exc:  # this credential's trouble: the others go on
                io.err(f"sync {name}: {type(exc).__name__}: {exc} -> {dataset.out}")
                outcomes.append((name, exc))
                return
            _line(io, name, result, quiet=args.quiet)
            outcomes.append((name, result))

        async with anyio.create_task_group() as group:
            for index in range(len(datasets)):
                group.start_soon(one, index)
    return _summarise(io, args, outcomes)


def _line(io: CliIO, name: str, result: BackfillResult, *, quiet: bool) -> None:
    if quiet:
        return
    status = "complete" if result.complete else f"{len(result.failures)} window(s) failed"
    io.err(
        f"sync {name}: {count(result.windows_done, 'window')} written, "
        f"{result.windows_skipped} already done, {count(result.rows, 'row')}, "
        f"{result.rate_limited} x 429 in {result.elapsed:.1f} s; {status} -> {result.out}"
    )


def _summarise(
    io: CliIO, args: argparse.Namespace, outcomes: list[tuple[str, BackfillResult | LocusError]]
) -> int:
    """One line per credential (and ``--json``); the exit code: 3 if a credential was
    refused, 4 if anything else did not complete, 0 otherwise."""
    names = sorted({name for name, _ in outcomes})
    summary: dict[str, Any] = {}
    for name in names:
        mine = [outcome for who, outcome in outcomes if who == name]
        results = [r for r in mine if isinstance(r, BackfillResult)]
        errors = [str(e) for e in mine if isinstance(e, LocusError)]
        complete = not errors and all(r.complete for r in results)
        summary[name] = {
            "datasets": len(mine),
            "complete": complete,
            "windows_written": sum(r.windows_done for r in results),
            "rows": sum(r.rows for r in results),
            "rate_limited": sum(r.rate_limited for r in results),
            "errors": errors,
        }
        if not args.quiet:
            state = "complete" if complete else "incomplete"
            io.err(
                f"credential {name}: {count(len(mine), 'dataset')}, "
                f"{count(summary[name]['windows_written'], 'window')} written, "
                f"{count(summary[name]['rows'], 'row')}, {summary[name]['rate_limited']} x 429; "
                f"{state}"
            )
    if args.json:
        io.out(json.dumps({"credentials": summary}, indent=2))
    if any(isinstance(o, AuthenticationError) for _, o in outcomes):
        return EXIT_AUTH
    return EXIT_OK if all(s["complete"] for s in summary.values()) else EXIT_INCOMPLETE
