"""What every ``locus-async`` command shares: I/O, parsing helpers, output, exit codes.

Owns: the ``CliIO`` bundle (streams, environment, an optional in-process transport), the
argparse parser that exits 2 with one line, and table/JSON output of attrs objects. Both
providers' commands (``cli`` for Locus, ``_cli_solarnet`` for SolarNetwork) use these.
Must never: print a credential.
"""

from __future__ import annotations

import argparse
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
    "EXIT_ERROR",
    "EXIT_INCOMPLETE",
    "EXIT_LOCKED",
    "EXIT_OK",
    "EXIT_USAGE",
    "CliIO",
    "CliUsage",
    "Parser",
    "Runner",
    "add_repeatable",
    "client_options",
    "jsonable",
    "listen_host",
    "non_negative_float",
    "objects",
    "port_number",
    "positive_float",
    "positive_int",
    "table",
]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_AUTH, EXIT_INCOMPLETE, EXIT_LOCKED = 0, 1, 2, 3, 4, 5


#: What runs one command: (io, parsed arguments) -> exit code.
Runner = Callable[["CliIO", argparse.Namespace], Coroutine[Any, Any, int]]


class CliUsage(Exception):
    """A usage problem found by the CLI itself (exit code 2)."""


class Parser(argparse.ArgumentParser):
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
    cells = [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    io.out("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        io.out("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def objects(io: CliIO, items: Sequence[Any], columns: Sequence[str], as_json: bool) -> None:
    if as_json:
        io.out(json.dumps(jsonable(list(items)), indent=2))
    else:
        table(io, [[getattr(item, c) for c in columns] for item in items], columns)
