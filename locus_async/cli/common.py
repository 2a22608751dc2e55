"""What every ``locus-async`` command shares: I/O, parsing helpers, output, exit codes.

Owns: the ``CliIO`` bundle (streams, environment, an optional in-process transport), the
argparse parser that exits 2 with one line, and table/JSON output of attrs objects. Both
providers' commands (``cli`` for Locus, ``_cli_solarnet`` for SolarNetwork) use these.
Must never: print a credential.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import date, datetime
from typing import Any, TextIO

import attrs

from locus_async._core.checks import check_number
from locus_async._core.http import check_port
from locus_async.errors import UsageError

__all__ = [
    "EXIT_AUTH",
    "EXIT_BROKEN_PIPE",
    "EXIT_ERROR",
    "EXIT_INCOMPLETE",
    "EXIT_INTERRUPTED",
    "EXIT_LOCKED",
    "EXIT_OK",
    "EXIT_USAGE",
    "FORMATS",
    "GLOBAL_OPTIONS",
    "CliIO",
    "CliUsage",
    "Parser",
    "Runner",
    "add_format",
    "add_global_options",
    "add_repeatable",
    "client_options",
    "count",
    "jsonable",
    "listen_host",
    "non_negative_float",
    "objects",
    "output_format",
    "port_number",
    "positive_float",
    "positive_int",
    "records",
    "require",
    "table",
]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_AUTH, EXIT_INCOMPLETE, EXIT_LOCKED = 0, 1, 2, 3, 4, 5
#: Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130
#: The reader of stdout went away (``| head``): 128 + SIGPIPE, as a shell reports a
#: program its closed pipe stopped.
EXIT_BROKEN_PIPE = 141


#: What runs one command: (io, parsed arguments) -> exit code.
Runner = Callable[["CliIO", argparse.Namespace], Coroutine[Any, Any, int]]


class CliUsage(Exception):
    """A usage problem found by the CLI itself (exit code 2)."""


#: The options every command takes, before or after its name: (flags, argparse keywords).
GLOBAL_OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("-v", "--verbose"), {"action": "count", "help": "log to stderr (-v info, -vv debug)"}),
    (("-q", "--quiet"), {"action": "store_true", "help": "errors only on stderr: no progress"}),
    (("--no-progress",), {"action": "store_true", "help": "no progress bar or progress log"}),
    (("--json",), {"action": "store_true", "help": "JSON on stdout (results or a summary)"}),
)


def add_global_options(parser: argparse.ArgumentParser) -> None:
    """``-v``, ``-q``, ``--no-progress`` and ``--json`` on the root parser (with their
    defaults) and on every command below it, recursively, where they default to nothing:
    so ``locus-async -v sites`` and ``locus-async sites -v`` are the same, and a value
    given before the command is not reset by the command's parser."""
    for flags, options in GLOBAL_OPTIONS:
        default = 0 if options["action"] == "count" else False
        parser.add_argument(*flags, default=default, **options)
    _add_below(parser)


def _add_below(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for sub in {id(p): p for p in action.choices.values()}.values():  # aliases: once
            for flags, options in GLOBAL_OPTIONS:
                sub.add_argument(*flags, default=argparse.SUPPRESS, **options)
            _add_below(sub)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) and ``gh``-style help (defaults shown,
    examples kept as written)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from locus_async.cli.help import HelpFormatter

        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> Any:  # one line and exit code 2, like argparse
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


@attrs.define
class CliIO:
    stdout: TextIO
    stderr: TextIO
    env: Mapping[str, str]
    transport: Any = None  # an httpx transport for tests (in-process simulator)

    def out(self, text: str = "") -> None:
        print(text, file=self.stdout)

    def err(self, text: str) -> None:
        print(text, file=self.stderr)


def count(number: int, noun: str, plural: str | None = None) -> str:
    """``1 window``, ``2 windows``, ``1,234 rows``, ``1 retry``, ``3 retries``."""
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"


def port_number(text: str) -> int:
    """A TCP port, 1 to 65535 (the library's own check)."""
    try:
        return check_port(int(text))
    except (ValueError, UsageError):
        raise argparse.ArgumentTypeError(f"{text!r} must be a port from 1 to 65535") from None


def listen_host(text: str) -> str:
    """An address to listen on: an IP literal or ``localhost``."""
    import ipaddress

    if text == "localhost":
        return text
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an IP address (for example 127.0.0.1 or ::1) or localhost"
        ) from None


def _seconds(text: str, *, above: bool) -> float:
    try:
        return check_number(float(text), "seconds", above=above)
    except ValueError:
        wanted = "more than 0" if above else "a number of seconds, 0 or more"
        raise argparse.ArgumentTypeError(f"{text!r} must be {wanted}") from None


def non_negative_float(text: str) -> float:
    """Seconds, 0 or more (the library's own check)."""
    return _seconds(text, above=False)


def positive_float(text: str) -> float:
    """Seconds, more than 0."""
    return _seconds(text, above=True)


def client_options(io: CliIO, args: argparse.Namespace, variable: str) -> dict[str, Any]:
    """What every command's client takes from the command line: ``base_url`` (``--base-url``
    if given, even empty: checked as given; else ``variable`` unless it is empty, which means
    unset) and the in-process transport of tests."""
    options: dict[str, Any] = {}
    if args.base_url is not None:
        options["base_url"] = args.base_url
    elif io.env.get(variable):
        options["base_url"] = io.env[variable]
    if io.transport is not None:
        options["transport"] = io.transport
    return options


def name_value(text: str) -> tuple[str, str]:
    """``NAME=VALUE`` (a field parameter such as ``modelType=simple``)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value.strip()


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive integer")
    return value


def add_repeatable(
    parser: argparse.ArgumentParser,
    flag: str,
    *,
    help: str,
    type: Callable[[str], Any] = str,
    metavar: str | None = None,
    dest: str | None = None,
) -> None:
    """An option that may be given several times, collected into a list (empty if never)."""
    extra: dict[str, Any] = {"dest": dest} if dest else {}
    parser.add_argument(
        flag, type=type, action="append", default=[], metavar=metavar, help=help, **extra
    )


def jsonable(value: Any) -> Any:
    """Plain JSON values; an attribute hidden from its object's repr (secrets) is left out."""
    if attrs.has(type(value)):
        return {
            a.name: jsonable(getattr(value, a.name))
            for a in attrs.fields(type(value))
            if a.repr is True
        }
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value


def table(io: CliIO, rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    cells = [[_cell(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    io.out("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        io.out("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


#: What listing and data commands print: ``--format``'s choices.
FORMATS = ("table", "csv", "json", "jsonl")


def add_format(parser: argparse.ArgumentParser) -> None:
    """``--format`` on a listing or data command (the same choices and rule everywhere)."""
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="table, csv, json or jsonl (one object per line); default: a table on a "
        "terminal, CSV when piped (--json is --format json)",
    )


def output_format(io: CliIO, args: argparse.Namespace) -> str:
    """The format asked for; else ``json`` with ``--json``; else a table for a person at a
    terminal and CSV for a program reading a pipe or a file."""
    chosen: str | None = getattr(args, "format", None)
    if chosen:
        return chosen
    if getattr(args, "json", False):
        return "json"
    isatty = getattr(io.stdout, "isatty", None)
    return "table" if isatty is not None and isatty() else "csv"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()  # ISO 8601, with the offset for times
    return str(value)


def records(io: CliIO, rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str) -> None:
    """Rows as ``fmt``: ``json`` (one array) and ``jsonl`` (one object per line) keep every
    key of each row; ``csv`` and ``table`` show ``columns``. Times are ISO 8601 with their
    offset in every format."""
    if fmt == "json":
        io.out(json.dumps(jsonable(list(rows)), indent=2))
    elif fmt == "jsonl":
        for row in rows:
            io.out(json.dumps(jsonable(row)))
    elif fmt == "csv":
        writer = csv.writer(io.stdout, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
    else:
        table(io, [[_cell(row.get(c)) for c in columns] for row in rows], columns)


def objects(io: CliIO, items: Sequence[Any], columns: Sequence[str], fmt: str) -> None:
    """attrs objects as ``fmt`` (see ``records``): JSON has every public attribute."""
    records(io, [jsonable(item) for item in items], columns, fmt)


def require(command: str, extra: str, *modules: str) -> None:
    """Refuse, in one line naming the ``pip install`` to run, a command whose extra is
    not installed (exit 2), before it prints or starts anything."""
    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise CliUsage(
            f"{command} needs {' and '.join(missing)}: pip install 'locus-async[{extra}]'"
        )
