"""The command line's manners: a closed pipe ends quietly, a missing extra and a busy port
are one line each with their documented exit codes, and the simulator's two entry points
are one command."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from locus_async import sync
from locus_async.cli import main
from locus_async.cli.app import build_parser
from locus_async.cli.common import EXIT_BROKEN_PIPE, EXIT_ERROR, EXIT_USAGE, CliIO
from locus_async.cli.progress import ProgressBar
from locus_async.locus.backfill import BackfillProgress
from locus_async.simulator import ServedSimulator, Simulator

DATA = ["data", "--component", "54369", "--fields", "W_avg,Wh_sum", "--gran", "1min"]
DATA += ["--start", "2024-06-01T00:00:00", "--end", "2024-06-05T00:00:00", "--tz", "UTC"]


@pytest.fixture
def served() -> Iterator[ServedSimulator]:
    with Simulator().serve() as server:
        yield server


class _ClosedPipe(io.StringIO):
    """stdout whose reader has gone: every write fails as a closed pipe does."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


@pytest.mark.sockets
def test_a_reader_that_stops_early_ends_the_command_quietly(served: ServedSimulator) -> None:
    """``data --format csv | head -1`` over a real pipe: the reader takes one line and
    closes it; the command ends with 141 (128 + SIGPIPE) and says nothing on stderr."""
    env = {**os.environ, **Simulator.environment(served.url)}
    process = subprocess.Popen(
        [sys.executable, "-m", "locus_async", *DATA, "--format", "csv"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    header = process.stdout.readline()
    process.stdout.close()  # as head does after its line
    stderr = process.stderr.read()
    assert process.wait(60) == EXIT_BROKEN_PIPE
    assert header.startswith(b"id,ts,")
    assert stderr == b""


def test_a_closed_stdout_in_process_is_the_same_exit(served: ServedSimulator) -> None:
    """The same through ``main`` with a stream that refuses writes: 141, nothing said."""
    err = io.StringIO()
    code = main(["components", "--partner", "111"], env=Simulator.environment(served.url),
                stdout=_ClosedPipe(), stderr=err)  # fmt: skip
    assert code == EXIT_BROKEN_PIPE
    assert err.getvalue() == ""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["simulate", "--port", "8765"], "locus-async simulate needs uvicorn: "
         "pip install 'locus-async[simulator]'"),
        (["demo"], "locus-async demo needs uvicorn: pip install 'locus-async[demo]'"),
    ],
)  # fmt: skip
def test_a_missing_extra_is_one_line_naming_the_install(argv: list[str], message: str) -> None:
    """Without uvicorn (hidden from the import system), ``simulate`` and ``demo`` print
    one line naming the pip install to run, and exit 2, before printing anything else."""
    code = (
        "import sys; sys.modules['uvicorn'] = None\n"
        "from locus_async.cli import main\n"
        f"sys.exit(main({argv!r}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == EXIT_USAGE
    assert done.stdout == ""
    assert done.stderr == f"locus-async: error: {message}\n"


def test_a_busy_port_is_one_line_and_not_the_authentication_code() -> None:
    """``simulate --port P`` with P taken: no banner, one line naming the port and what
    to do, exit 1; ``python -m locus_async.simulator`` is the same command."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out, err = io.StringIO(), io.StringIO()
        code = main(["simulate", "--port", str(port)], env={}, stdout=out, stderr=err)
        assert code == EXIT_ERROR
        assert out.getvalue() == ""
        assert err.getvalue() == (
            f"locus-async: error: cannot listen on 127.0.0.1:{port}: address already in use "
            "(another simulator? choose another --port)\n"
        )
        done = subprocess.run(
            [sys.executable, "-m", "locus_async.simulator", "--port", str(port)],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
    assert done.returncode == EXIT_ERROR
    assert done.stderr.splitlines() == [err.getvalue().strip()]


@pytest.mark.sockets
def test_simulate_serves_the_api_until_interrupted() -> None:
    """``locus-async simulate --port P`` prints its banner once it listens on the port (a
    client may connect at once), answers a client of ours, and ends cleanly on Ctrl-C."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "locus_async", "simulate", "--port", str(port), "--latency", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert f"127.0.0.1:{port}" in banner
        url = f"http://127.0.0.1:{port}"
        with sync.LocusClient.from_env(Simulator.environment(url)) as client:
            assert client.sites.get(3393714).name == "Test Site"
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(60)
    assert code == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["alerts", "--partner", "111"], "partner alerts need --updated-since (at most 7 days "
         "ago) or --open-during START END"),
        (["alerts", "--partner", "111", "--updated-since", "2020-01-01T00:00:00"],
         "--updated-since 2020-01-01T00:00:00 is"),
        (["components", "--partner", "111", "--node-id", ""], "--node-id must be a non-empty"),
    ],
)  # fmt: skip
def test_errors_name_the_flags_not_the_python_parameters(argv: list[str], message: str) -> None:
    """A refusal by the library reads in the command line's words: the flags a user
    types, never the Python parameter names behind them (exit 2, one line)."""
    sim = Simulator()
    err = io.StringIO()
    code = main(argv, env=Simulator.environment("http://localhost"), stdout=io.StringIO(),
                stderr=err, transport=sim.transport())  # fmt: skip
    assert code == EXIT_USAGE
    assert err.getvalue().startswith(f"locus-async: error: {message}")
    assert "_" not in err.getvalue().replace("locus-async", "")
    assert err.getvalue().count("\n") == 1


def test_the_exit_codes_table_is_complete() -> None:
    """The README's table, the root ``--help`` and the CLI's constants name the same exit
    codes (each is provoked by its own test: this one keeps the documentation whole)."""
    from locus_async.cli import common, datasets

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    table = readme[readme.index("| code | meaning |") :].split("\n\n", 1)[0]
    documented = {int(line.split("|")[1]) for line in table.splitlines()[2:]}
    constants = {v for k, v in vars(common).items() if k.startswith("EXIT_")}
    constants.add(datasets.EXIT_TERMINATED)
    help_text = " ".join(build_parser()[0].format_help().split())
    assert documented == constants == {0, 1, 2, 3, 4, 5, 130, 141, 143}
    for code in sorted(documented - {0}):
        assert f"{code} " in help_text, code


def _in_process(argv: list[str], sim: Simulator) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, env=Simulator.environment("http://localhost"), stdout=out, stderr=err,
                transport=sim.transport())  # fmt: skip
    return code, out.getvalue(), err.getvalue()


def test_global_options_work_before_or_after_the_command(tmp_path: Path) -> None:
    """``--json`` and ``-q`` mean the same before the command, after it, or in a
    SolarNetwork subcommand; ``-q`` leaves only errors on stderr; one window is "1
    window", not "1 windows"."""
    sim = Simulator()
    before = _in_process(["--json", "sites", "--partner", "111"], sim)
    after = _in_process(["sites", "--partner", "111", "--json"], sim)
    assert before == after
    assert before[0] == 0
    assert {site["id"] for site in json.loads(before[1])} >= {3393714}
    backfill = ["backfill", "--component", "54369", "--fields", "Wh_sum", "--tz", "UTC"]
    backfill += ["--start", "2024-06-01T00:00:00", "--end", "2024-06-02T00:00:00"]
    backfill += ["--gran", "hourly"]
    code, out, err = _in_process([*backfill, "--out", str(tmp_path / "a")], sim)
    assert code == 0
    assert out == ""
    assert err.startswith("backfill: 1 window written, 0 already done, 24 rows, ")
    for argv in (["-q", *backfill], [*backfill, "--quiet"]):
        code, out, err = _in_process([*argv, "--out", str(tmp_path / argv[0])], sim)
        assert (code, out, err) == (0, "", "")
    parser = build_parser()[0]
    parsed = parser.parse_args(["sn", "instr", "list", "177", "--json", "-q", "--no-progress"])
    assert (parsed.json, parsed.quiet, parsed.no_progress, parsed.verbose) == (True, True, True, 0)
    parsed = parser.parse_args(["-vv", "solarnetwork", "nodes"])
    assert parsed.verbose == 2


class _Terminal(io.StringIO):
    """stdout that is a terminal (a person reading)."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    "argv",
    [
        ["sites", "--partner", "111"],
        ["components", "--partner", "111"],
        ["alerts", "--component", "54370", "--type", "Device Fault"],
        ["available", "--component", "54373"],
        ["data", "--component", "54369", "--fields", "Wh_sum", "--gran", "hourly", "--tz",
         "Europe/Berlin", "--start", "2024-06-01T00:00:00", "--end", "2024-06-01T03:00:00"],
    ],
    ids=lambda argv: argv[0],
)  # fmt: skip
def test_every_listing_speaks_the_same_formats(argv: list[str]) -> None:
    """One rule on every listing and data command: a table on a terminal, CSV when piped,
    ``--format json|jsonl`` (and ``--json``) for programs, the same rows in each, times
    ISO 8601 with their offset."""
    sim = Simulator()
    env = Simulator.environment("http://localhost")
    terminal = _Terminal()
    assert (
        main(argv, env=env, stdout=terminal, stderr=io.StringIO(), transport=sim.transport()) == 0
    )
    piped = _in_process(argv, sim)[1]
    as_json = json.loads(_in_process([*argv, "--format", "json"], sim)[1])
    assert json.loads(_in_process([*argv, "--json"], sim)[1]) == as_json
    lines = _in_process([*argv, "--format", "jsonl"], sim)[1].splitlines()
    assert [json.loads(line) for line in lines] == as_json
    rows = list(csv.reader(piped.splitlines()))
    assert len(rows) == len(as_json) + 1 > 1
    header = rows[0]
    table = terminal.getvalue().splitlines()
    assert len(table) == len(rows)
    assert table[0].split("  ")[0] == header[0]
    assert "," not in table[0]
    for row, item in zip(rows[1:], as_json, strict=True):
        for name, cell in zip(header, row, strict=True):
            if name in item and isinstance(item[name], str | int):
                assert cell == str(item[name]), name
    stamps = [cell for row in rows[1:] for cell in row if re.fullmatch(r"\d{4}-\d\d-\d\dT.*", cell)]
    assert all(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d", s) for s in stamps
    )
    if argv[0] in ("data", "alerts"):
        assert stamps


def _commands(parser: argparse.ArgumentParser, path: str = "") -> Iterator[tuple[str, Any]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in {id(p): (n, p) for n, p in action.choices.items()}.values():
                yield from _commands(sub, f"{path} {name}".strip())


def test_help_reads_like_gh_at_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command's ``--help``: each option explained, its default shown, an EXAMPLES
    section whose lines are real invocations, and nothing wider than 80 columns."""
    monkeypatch.setenv("COLUMNS", "80")
    commands = list(_commands(build_parser()[0]))
    assert len(commands) == 26  # the root and its 25 commands
    for path, parser in commands:
        text = parser.format_help()
        assert "\nEXAMPLES\n  $ locus-async " in text, path
        assert max(len(line) for line in text.splitlines()) <= 80, path
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction) or action.dest == "help":
                continue
            assert action.help, f"{path}: {action.option_strings or action.dest}"
    data = dict(commands)["data"].format_help()
    assert "(default: table" not in data  # --format's default is a rule, said in words
    simulate = " ".join(dict(commands)["simulate"].format_help().split())
    assert "--port PORT TCP port (default: 8080)" in simulate
    assert "(default: 127.0.0.1)" in simulate


def test_progress_reads_at_80_columns_and_logs_without_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On an 80-column terminal the bar holds windows, rows, rate, ETA, 429s and retries
    in that order within 80 characters (wider: the same, a longer bar); with no terminal
    one labelled line per interval of the injected clock, none before the first."""
    progress = BackfillProgress(windows_total=456, started=time.monotonic() - 100)
    progress.windows_done, progress.rows, progress.rate_limited, progress.retries = (
        186, 374_976, 2, 5,
    )  # fmt: skip
    for width in (80, 132):
        monkeypatch.setenv("COLUMNS", str(width))
        terminal = _Terminal()
        bar = ProgressBar(CliIO(io.StringIO(), terminal, {}), "backfill")
        bar(progress)
        bar.close()
        line = terminal.getvalue().split("\r")[-1].strip()
        assert len(line) <= width
        labels = ["186/456 win", "375k rows", "/s", "ETA ", "429s 2", "retries 5"]
        assert [line.index(label) for label in labels] == sorted(line.index(x) for x in labels)
    now = [0.0]
    log = io.StringIO()
    bar = ProgressBar(CliIO(io.StringIO(), log, {}), "sync", interval=30, clock=lambda: now[0])
    bar(progress)
    assert log.getvalue() == ""  # a run shorter than the interval says nothing
    now[0] = 31.0
    bar(progress)
    bar(progress)  # within the next interval: no second line
    (line,) = log.getvalue().splitlines()
    assert re.fullmatch(  # the rate and ETA of 186 windows in about 100 s
        r"sync: 186/456 windows \(41%\), 374,976 rows, 1\.9 windows/s, ETA 2m2\ds, "
        r"2 x 429, 5 retries",
        line,
    ), line
    quiet = ProgressBar(CliIO(io.StringIO(), log, {}), "x", enabled=False, clock=lambda: 99.0)
    quiet(progress)
    assert len(log.getvalue().splitlines()) == 1


def test_a_long_data_call_shows_its_progress_and_the_same_rows() -> None:
    """``data`` over many windows on a terminal draws the bar on stderr while stdout gets
    exactly the rows one call returns; ``--no-progress`` draws nothing."""
    sim = Simulator()
    argv = ["data", "--component", "54369", "--fields", "W_avg", "--gran", "1min", "--tz",
            "UTC", "--start", "2024-06-01T00:00:00", "--end", "2024-06-12T00:00:00",
            "--format", "csv"]  # fmt: skip
    env = Simulator.environment("http://localhost")
    err = _Terminal()
    out = io.StringIO()
    assert main(argv, env=env, stdout=out, stderr=err, transport=sim.transport()) == 0
    assert "3/3 win" in err.getvalue()
    quiet = _Terminal()
    plain = io.StringIO()
    code = main([*argv, "--no-progress"], env=env, stdout=plain, stderr=quiet,
                transport=sim.transport())  # fmt: skip
    assert code == 0
    assert quiet.getvalue() == ""
    assert out.getvalue() == plain.getvalue()
    assert len(out.getvalue().splitlines()) == 11 * 1440 + 1
