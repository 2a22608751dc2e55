"""The ``locus-async`` command line: the root parser, dispatch, logging and exit codes.

Owns: building the parser from each part's commands (``locus``, ``solarnetwork``,
``simulate``), mapping errors to exit codes with one line each, and redacting every known
secret from what is printed or logged. Must never: echo a credential, print a traceback
for an expected error, or do anything the library cannot do on its own.

Exit codes: 0 done; 1 the API or the network failed (or the simulator's port is taken);
2 usage (bad arguments, a missing extra); 3 authentication; 4 a backfill or sync had
windows fail in this run (run it again to retry them); 5 the output directory is in use
by another run; 130 interrupted (Ctrl-C); 141 the reader of stdout went away (``| head``),
quietly; 143 stopped by SIGTERM.

Credentials: ``LOCUS_ACCESS_TOKEN``, or ``LOCUS_CLIENT_ID`` + ``LOCUS_CLIENT_SECRET`` (+
``LOCUS_USERNAME`` + ``LOCUS_PASSWORD`` for the password grant); ``--base-url`` or
``LOCUS_BASE_URL`` for the host. ``solarnetwork`` (``sn``) commands: ``SN_TOKEN`` and
``SN_SECRET``, ``SN_BASE_URL`` (see ``cli.solarnetwork``).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

import anyio

from locus_async._core.http import redact
from locus_async._shell.store import OutputLocked
from locus_async._version import __version__
from locus_async.cli import locus, simulate
from locus_async.cli.common import (
    EXIT_AUTH,
    EXIT_BROKEN_PIPE,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_USAGE,
    CliIO,
    CliUsage,
    Parser,
    Runner,
    add_global_options,
)
from locus_async.cli.help import add_examples
from locus_async.cli.solarnetwork import (
    SN_SECRET_VARIABLES,
    add_solarnetwork_parser,
    run_solarnetwork,
)
from locus_async.errors import AuthenticationError, LocusError, UsageError

__all__ = ["build_parser", "main"]

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


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Runner]]:
    """The whole parser and the async runner of every command but ``simulate``."""
    parser = Parser(
        prog="locus-async",
        description="Locus Energy v3 from the command line: list, fetch, backfill, sync, "
        "simulate; and SolarNetwork (solarnetwork, sn): nodes, metadata, instructions.",
        epilog="ENVIRONMENT\n"
        "  LOCUS_CLIENT_ID, LOCUS_CLIENT_SECRET, LOCUS_USERNAME, LOCUS_PASSWORD (or\n"
        "  LOCUS_ACCESS_TOKEN), LOCUS_BASE_URL;\n"
        "  SolarNetwork: SN_TOKEN, SN_SECRET, SN_BASE_URL\n"
        "\n"
        "EXIT CODES\n"
        "  0 done; 1 API or network error (or a declined instruction, or simulate's\n"
        "  port is taken); 2 usage (or a missing extra); 3 authentication; 4 a backfill\n"
        "  or sync with failed windows, or an unfinished instruction; 5 --out in use by\n"
        "  another run; 130 interrupted; 141 stdout closed (| head); 143 SIGTERM",
    )
    parser.add_argument("--version", action="version", version=f"locus-async {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True

    runners = {**locus.add_commands(commands), **simulate.add_commands(commands)}
    add_solarnetwork_parser(commands, Parser)
    runners["solarnetwork"] = runners["sn"] = run_solarnetwork
    add_global_options(parser)
    add_examples(parser)
    return parser, runners


def _relative_values(argv: Sequence[str]) -> list[str]:
    """``--start -30d`` as ``--start=-30d``: argparse would take ``-30d`` for an option."""
    out: list[str] = []
    values = iter(argv)
    for item in values:
        if item in ("--start", "--end"):
            following = next(values, None)
            if following is not None and following[:1] == "-" and following[1:2].isdigit():
                out.append(f"{item}={following}")
                continue
            out.append(item)
            if following is not None:
                out.append(following)
            continue
        out.append(item)
    return out


def _configure_logging(io: CliIO, verbose: int) -> None:
    if verbose <= 0:
        return
    handler = logging.StreamHandler(io.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_RedactingFilter([io.env.get(name, "") for name in _SECRET_VARIABLES]))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)


#: Library parameters whose flag has another name.
_ALIASES = {
    "result_max_wait": "--wait",
    "execution_date": "--at",
    "alert_types": "--type",
    "field_params": "--param",
    "partner_id": "--partner",
}


def _options(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Python parameter name -> the command line's flag, over every (sub)command."""
    found: dict[str, str] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found.update(_options(sub))
        elif action.option_strings and "_" in action.dest:
            found.setdefault(action.dest, max(action.option_strings, key=len))
    return found


def as_flags(message: str, parser: argparse.ArgumentParser) -> str:
    """A library error in the command line's words: ``open_during=(start, end)`` is
    ``--open-during START END``, ``updated_since`` is ``--updated-since``."""
    message = re.sub(r"\bopen_during=\(start, end\)", "--open-during START END", message)
    message = re.sub(r"^(start|end|tz|fields|gran|state)\b", r"--\1", message)
    message = re.sub(r"\bbefore end\b", "before --end", message)
    options = {**_options(parser), **_ALIASES}
    return re.sub(
        r"\b[a-z]+(?:_[a-z0-9]+)+\b",
        lambda match: options.get(match.group(0), match.group(0)),
        message,
    )


def _flushed(io: CliIO, code: int) -> int:
    """``code``, once stdout is flushed: a closed pipe is found here, where it is
    handled, not when the interpreter flushes at exit."""
    io.stdout.flush()
    return code


def _silence_stdout(io: CliIO) -> None:
    """After the reader of stdout went away (``| head``): end quietly, as ``cat`` does.
    What is still buffered would fail again when Python flushes at exit, so stdout's file
    descriptor is pointed at /dev/null first."""
    try:
        descriptor = io.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (tests)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, descriptor)
    finally:
        os.close(devnull)


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
    parser, runners = build_parser()
    try:
        args = parser.parse_args(_relative_values(sys.argv[1:] if argv is None else argv))
    except SystemExit as exit_:
        return int(exit_.code or 0)
    _configure_logging(io, getattr(args, "verbose", 0))
    secrets = [io.env.get(name, "") for name in _SECRET_VARIABLES]
    try:
        if args.command == "simulate":
            return simulate.run_simulate(io, args)
        return _flushed(io, anyio.run(runners[args.command], io, args))
    except BrokenPipeError:
        _silence_stdout(io)
        return EXIT_BROKEN_PIPE
    except BaseExceptionGroup as group:  # a write from inside a task group
        if group.split(BrokenPipeError)[1] is not None:
            raise
        _silence_stdout(io)
        return EXIT_BROKEN_PIPE
    except (CliUsage, UsageError) as exc:
        io.err(f"locus-async: error: {as_flags(redact(str(exc), secrets), parser)}")
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
        return EXIT_INTERRUPTED
    except OSError as exc:
        io.err(f"locus-async: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
