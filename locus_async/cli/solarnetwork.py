"""``locus-async solarnetwork ...`` (alias ``sn``): SolarNetwork from the command line.

Owns: the SolarNetwork sub-commands (whoami, nodes, metadata get/set/delete, instructions
exec/add/list/cancel), reading ``SN_TOKEN``/``SN_SECRET``/``SN_BASE_URL``, and their output.
The exit codes and error handling are the CLI's (``cli.main``). Must never: echo the token
secret.

Instruction commands exit 0 when the instruction Completed (or a cancel took effect), 1 when
it was Declined or could not be cancelled, 4 when it had not finished when we stopped waiting.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from locus_async.cli.common import (
    EXIT_ERROR,
    EXIT_INCOMPLETE,
    EXIT_OK,
    CliIO,
    CliUsage,
    add_format,
    add_repeatable,
    client_options,
    jsonable,
    objects,
    output_format,
    positive_int,
    records,
)
from locus_async.solarnetwork import Instruction, Metadata, SolarNetClient
from locus_async.solarnetwork.client import DEFAULT_BASE_URL

__all__ = ["SN_SECRET_VARIABLES", "add_solarnetwork_parser", "run_solarnetwork"]

SN_SECRET_VARIABLES = ("SN_SECRET",)

_INSTRUCTION_COLUMNS = ["id", "node_id", "topic", "state", "created", "status_date"]


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name, value


def _group(
    actions: Any, name: str, what: str, choices: str, parser_class: type[argparse.ArgumentParser]
) -> Any:
    """A sub-command with its own required actions (``meta get``, ``instr exec``...)."""
    group = actions.add_parser(name, help=what).add_subparsers(
        dest=f"{name}_command", metavar=choices, parser_class=parser_class
    )
    group.required = True
    return group


def add_solarnetwork_parser(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Register ``solarnetwork`` (alias ``sn``) and its sub-commands on ``commands``."""
    common = parser_class(add_help=False)
    common.add_argument("--base-url", help=f"host (default: $SN_BASE_URL or {DEFAULT_BASE_URL})")
    common.add_argument(
        "--location-metadata-prefix",
        default=None,
        metavar="PATH",
        help="where the server maps location metadata (default /location/datum/meta)",
    )

    sn = commands.add_parser(
        "solarnetwork",
        aliases=["sn"],
        help="SolarNetwork SolarUser: nodes, metadata, instructions",
        description="SolarNetwork SolarUser API. Credentials: SN_TOKEN and SN_SECRET.",
    )
    actions = sn.add_subparsers(dest="sn_command", metavar="ACTION", parser_class=parser_class)
    actions.required = True

    actions.add_parser("whoami", parents=[common], help="check the token")

    nodes = actions.add_parser("nodes", parents=[common], help="list the account's nodes")
    nodes.add_argument("--archived", action="store_true", help="archived nodes instead")
    add_format(nodes)

    meta_actions = _group(actions, "meta", "node or user metadata", "get|set|delete", parser_class)
    for name, what in (
        ("get", "show"),
        ("set", "add to (merge) or --replace"),
        ("delete", "delete"),
    ):
        sub = meta_actions.add_parser(name, parents=[common], help=f"{what} metadata")
        owner = sub.add_mutually_exclusive_group(required=True)
        owner.add_argument("--node", type=positive_int, help="a node's metadata")
        owner.add_argument("--user", action="store_true", help="the token user's metadata")
        if name == "set":
            sub.add_argument("--doc", help='a whole document as JSON: {"m": {...}, "t": [...]}')
            add_repeatable(
                sub, "--m", type=_pair, metavar="KEY=VALUE", help="an info value (JSON parsed)"
            )
            add_repeatable(sub, "--tag", help="a tag (repeatable)")
            sub.add_argument("--replace", action="store_true", help="replace instead of merge")

    instr_actions = _group(
        actions, "instr", "node instructions", "exec|add|list|cancel", parser_class
    )
    for name, what in (
        ("exec", "queue and wait for the result"),
        ("add", "queue without waiting"),
    ):
        sub = instr_actions.add_parser(name, parents=[common], help=what)
        sub.add_argument("node", type=positive_int, help="node id")
        sub.add_argument("topic", help="e.g. SetControlParameter")
        add_repeatable(
            sub, "--param", type=_pair, metavar="NAME=VALUE", help="a parameter (repeatable)"
        )
        sub.add_argument(
            "--at", help="defer to this UTC instant (ISO 8601, e.g. 2030-01-01T00:00:00Z)"
        )
        add_format(sub)
        if name == "exec":
            sub.add_argument(
                "--wait",
                type=int,
                default=60,
                metavar="SECONDS",
                help="how long the server waits for the result (0-60, default 60)",
            )
    listing = instr_actions.add_parser("list", parents=[common], help="instructions of nodes")
    listing.add_argument("nodes", type=positive_int, nargs="+", help="node ids")
    listing.add_argument("--state", action="append", help="only this state (repeatable)")
    add_format(listing)
    cancel = instr_actions.add_parser("cancel", parents=[common], help="cancel an instruction")
    cancel.add_argument("instruction", type=positive_int, help="instruction id")
    add_format(cancel)


def _client(io: CliIO, args: argparse.Namespace) -> SolarNetClient:
    kwargs = client_options(io, args, "SN_BASE_URL")
    if args.location_metadata_prefix:
        kwargs["location_metadata_prefix"] = args.location_metadata_prefix
    return SolarNetClient.from_env(io.env, **kwargs)


def _document(args: argparse.Namespace) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if args.doc is not None:
        try:
            doc = json.loads(args.doc)
        except json.JSONDecodeError as exc:
            raise CliUsage(f"--doc is not JSON: {exc.msg}") from None
        if not isinstance(doc, dict):
            raise CliUsage('--doc must be a JSON object such as {"m": {"a": 1}}')
    for key, text in args.m:
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        doc.setdefault("m", {})[key] = value
    if args.tag:
        doc["t"] = [*doc.get("t", []), *args.tag]
    if not doc:
        raise CliUsage("nothing to set: give --doc, --m KEY=VALUE or --tag")
    return doc


def _show_metadata(io: CliIO, meta: Metadata | None) -> None:
    if meta is None:
        io.out("{}")
        return
    io.out(json.dumps(jsonable(meta), indent=2))


async def _meta(io: CliIO, args: argparse.Namespace, client: SolarNetClient) -> int:
    command = args.meta_command
    if command == "get":
        meta = await (
            client.user_metadata.get() if args.user else client.node_metadata.get(args.node)
        )
        _show_metadata(io, meta)
        return EXIT_OK
    if command == "delete":
        await (
            client.user_metadata.delete() if args.user else client.node_metadata.delete(args.node)
        )
        io.out("deleted")
        return EXIT_OK
    doc = _document(args)
    if args.user:
        await (client.user_metadata.store(doc) if args.replace else client.user_metadata.add(doc))
        meta = await client.user_metadata.get()
    else:
        api = client.node_metadata
        await (api.store(args.node, doc) if args.replace else api.add(args.node, doc))
        meta = await api.get(args.node)
    _show_metadata(io, meta)
    return EXIT_OK


def _finished(instructions: list[Instruction]) -> int:
    if not all(i.is_final for i in instructions):
        return EXIT_INCOMPLETE
    return EXIT_OK if all(i.state == "Completed" for i in instructions) else EXIT_ERROR


def _show_instructions(io: CliIO, items: list[Instruction], args: argparse.Namespace) -> None:
    fmt = output_format(io, args)
    objects(io, items, _INSTRUCTION_COLUMNS, fmt)
    if fmt == "table":
        for item in items:
            if item.result_parameters:
                io.out(f"  {item.id} result: {json.dumps(item.result_parameters)}")


async def _instr(io: CliIO, args: argparse.Namespace, client: SolarNetClient) -> int:
    api = client.instructions
    command = args.instr_command
    if command in ("exec", "add"):
        options: dict[str, Any] = {"execution_date": args.at}
        if command == "exec":
            items = await api.exec(
                args.node, args.topic, args.param, result_max_wait=args.wait, **options
            )
        else:
            items = await api.add(args.node, args.topic, args.param, **options)
        _show_instructions(io, items, args)
        return _finished(items) if command == "exec" else EXIT_OK
    if command == "list":
        items = await api.list(args.nodes, states=args.state)
        _show_instructions(io, items, args)
        return EXIT_OK
    before = await api.get(args.instruction)
    after = await api.cancel(args.instruction)
    _show_instructions(io, [after], args)
    if after.state == "Declined":
        io.err(f"instruction {after.id} cancelled (was {before.state})")
        return EXIT_OK
    if after.state == "Received" and before.state == "Received":
        io.err(f"instruction {after.id} is held by its node: a CancelInstruction was queued")
        return EXIT_OK
    io.err(f"instruction {after.id} is {after.state}; it can no longer be cancelled")
    return EXIT_ERROR


async def run_solarnetwork(io: CliIO, args: argparse.Namespace) -> int:
    async with _client(io, args) as client:
        if args.sn_command == "whoami":
            who = await client.whoami()
            io.out(f"token {who.token} ({who.token_type}) accepted by {client.base_url}")
            return EXIT_OK
        if args.sn_command == "nodes":
            nodes = await (client.nodes.archived() if args.archived else client.nodes.list())
            rows = [
                {
                    "id": n.id,
                    "name": n.name,
                    "time_zone": n.node.time_zone if n.node else None,
                    "country": n.node_location.country if n.node_location else None,
                    "created": n.created,
                }
                for n in nodes
            ]
            fmt = output_format(io, args)
            if fmt in ("json", "jsonl"):
                objects(io, nodes, [], fmt)
            else:
                records(io, rows, ["id", "name", "time_zone", "country", "created"], fmt)
            return EXIT_OK
        if args.sn_command == "meta":
            return await _meta(io, args, client)
        return await _instr(io, args, client)
