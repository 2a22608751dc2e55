"""``--help`` as ``gh`` writes it: every option with its default, every command with
examples.

Owns: the help formatter of every parser (defaults shown, examples kept as written) and
the EXAMPLES section of each command. Must never: show a credential in an example (the
examples read them from the environment).
"""

from __future__ import annotations

import argparse
import textwrap
from typing import Final

__all__ = ["EXAMPLES", "HelpFormatter", "add_examples"]


class HelpFormatter(argparse.HelpFormatter):
    """Wraps a one-paragraph description to the terminal, keeps a text laid out in lines
    (the examples, the environment, the exit codes) as written, and adds ``(default:
    X)`` to every option that has a default worth saying (not None, False or an empty
    list) and whose help does not already name it."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            default in (None, False, [], ())
            or default is argparse.SUPPRESS
            or "default" in text
            or not (action.option_strings or action.nargs in ("?", "*"))
        ):
            return text
        return f"{text} (default: %(default)s)"


_FLEET: Final = "--start 2024-10-01T00:00:00 --end 2024-11-01T00:00:00 --tz America/Los_Angeles"

#: Command path (as typed) -> example command lines (credentials from the environment).
EXAMPLES: Final[dict[str, tuple[str, ...]]] = {
    "": ("locus-async check", "locus-async sites --partner 111", "locus-async sn whoami"),
    "check": (
        "locus-async check --partner 111",
        "locus-async check --partner 111 --json",
        "LOCUS_AUTH=cognito locus-async check",
    ),
    "sites": ("locus-async sites --partner 111", "locus-async sites --partner 111 --format csv"),
    "clients": ("locus-async clients --partner 111 --json",),
    "components": (
        "locus-async components --partner 111",
        "locus-async components --partner 111 --node-id 'OB.%' --format jsonl",
    ),
    "site": ("locus-async site 3393714", "locus-async site 3393714 --json"),
    "available": (
        "locus-async available --component 54369",
        "locus-async available --partner 111 --json",
    ),
    "data": (
        "locus-async data --component 54369 --fields W_avg,Wh_sum --gran hourly "
        "--start 2024-06-01T00:00:00 --end 2024-06-02T00:00:00 --tz UTC",
        "locus-async data --site 3393714 --fields Wh_sum --gran daily "
        "--start 2024-01-01T00:00:00 --end 2025-01-01T00:00:00 --tz UTC --format csv > site.csv",
    ),
    "alerts": (
        "locus-async alerts --partner 111 --updated-since 2024-06-01T00:00:00",
        "locus-async alerts --site 3393714 --status open --format json",
    ),
    "backfill": (
        f"locus-async backfill --component 54369 --fields W_avg,Wh_sum {_FLEET} "
        "--gran 5min --out ./out",
        "locus-async backfill --partner 111 --node-type INVERTER --fields Wh_sum "
        "--start -30d --end now --tz UTC --gran hourly --out s3://bucket/fleet",
        "locus-async backfill ... --out ./out --plan",
        "locus-async backfill ... --out s3://bucket/fleet --dask tcp://scheduler:8786 "
        "--redis redis://redis:6379/0",
    ),
    "sync": (
        "locus-async sync --out ./out --json",
        "locus-async sync --out ./out --every 5m --lookback 2d",
        "locus-async sync --out ./out --add-component 54370",
        "locus-async sync --config fleet.toml --dask tcp://scheduler:8786",
    ),
    "compact": ("locus-async compact --out ./out",),
    "simulate": (
        "locus-async simulate --port 8080",
        "locus-async simulate --solarnetwork --port 9090 --latency 0",
    ),
    "demo": ("locus-async demo", "locus-async demo --out /tmp/demo --json"),
    "solarnetwork": ("locus-async sn whoami", "locus-async sn nodes --format csv"),
    "solarnetwork whoami": ("locus-async sn whoami",),
    "solarnetwork nodes": ("locus-async sn nodes", "locus-async sn nodes --archived --json"),
    "solarnetwork meta": ("locus-async sn meta get --node 177",),
    "solarnetwork meta get": (
        "locus-async sn meta get --node 177",
        "locus-async sn meta get --user",
    ),
    "solarnetwork meta set": (
        "locus-async sn meta set --node 177 --m floors=2 --tag barn",
        'locus-async sn meta set --user --doc \'{"m": {"owner": "ops"}}\' --replace',
    ),
    "solarnetwork meta delete": ("locus-async sn meta delete --node 177",),
    "solarnetwork instr": ("locus-async sn instr list 177",),
    "solarnetwork instr exec": (
        "locus-async sn instr exec 177 SetControlParameter --param /switch/1=1 --wait 30",
    ),
    "solarnetwork instr add": (
        "locus-async sn instr add 177 SetControlParameter --param /switch/1=0 "
        "--at 2030-01-01T00:00:00Z",
    ),
    "solarnetwork instr list": ("locus-async sn instr list 177 178 --state Queued",),
    "solarnetwork instr cancel": ("locus-async sn instr cancel 4316502",),
}


def _example(line: str) -> str:
    """One example as a shell line, continued with a backslash to fit 80 columns."""
    parts = textwrap.wrap(line, width=72, break_long_words=False, break_on_hyphens=False)
    return "  $ " + " \\\n      ".join(parts)


def add_examples(parser: argparse.ArgumentParser, path: str = "") -> None:
    """Put each command's EXAMPLES at the end of its help, below what is already there,
    recursively (a command without examples is a KeyError: every command has some)."""
    lines = "\n".join(_example(line) for line in EXAMPLES[path])
    parser.epilog = (
        f"{parser.epilog}\n\nEXAMPLES\n{lines}" if parser.epilog else f"EXAMPLES\n{lines}"
    )
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        seen: set[int] = set()
        for name, sub in action.choices.items():
            if id(sub) not in seen:  # an alias is the same parser
                seen.add(id(sub))
                add_examples(sub, f"{path} {name}".strip())
