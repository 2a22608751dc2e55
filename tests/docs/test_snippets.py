"""Every Python block of the README and of the docs site, run as a reader would paste
it, against the simulators served on loopback (the environment a reader sets)."""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.docs.conftest import copy_dataset

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^(?P<indent> *)```python\n(?P<code>.*?)^(?P=indent)```$", re.M | re.S)


class Block(NamedTuple):
    path: Path
    line: int
    heading: str
    code: str

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> Iterator[Block]:
    """The ```python blocks of one Markdown file (indented ones dedented), with the
    heading each sits under."""
    text = path.read_text("utf-8")
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        headings = re.findall(r"^#+ .*$", text[: match.start()], re.M)
        code = textwrap.dedent(match.group("code"))
        yield Block(path, line, headings[-1] if headings else "", code)


ALL = [block for path in DOCUMENTS for block in blocks(path)]

#: What particular blocks must leave behind, beyond running cleanly: (file, heading) ->
#: a check of the block's namespace and printed output.
Check = Callable[[dict[str, Any], str], None]


def _service(ns: dict[str, Any], out: str) -> None:
    # Every 5 minutes of 2024 in US/Pacific (March's lost hour comes back in November).
    assert len(ns["series"]) == 366 * 288
    assert list(ns["frame"].columns) == ["id", "W_avg", "Wh_sum"]


def _sync(ns: dict[str, Any], out: str) -> None:
    assert "Test Site" in out
    assert len(ns["series"]) == 31


def _readers(ns: dict[str, Any], out: str) -> None:
    # Two components, hourly, October and November in Los Angeles (a 25-hour day).
    rows = 2 * (61 * 24 + 1)
    assert ns["table"].num_rows == ns["frame"].height == len(ns["query"].fetchall()) == rows
    assert set(ns["frame"]["id"].unique()) == {54369, 54370}


def _threads(ns: dict[str, Any], out: str) -> None:
    assert ns["names"] == ["Test Site", *ns["names"][1:4]] * 2
    assert ns["client"].stats.max_in_flight == 1


def _backfill(ns: dict[str, Any], out: str) -> None:
    assert ns["result"].complete
    assert ns["result"].rows > 0
    assert ns["again"].rows == 0


def _dlt(ns: dict[str, Any], out: str) -> None:
    import duckdb

    assert not ns["info"].has_failed_jobs
    with duckdb.connect("locus.duckdb", read_only=True) as db:
        count, keys = db.sql(
            "select count(*), count(distinct (id, ts)) from fleet.timeseries"
        ).fetchall()[0]
    assert count == keys == ns["pipeline"].last_trace.last_normalize_info.row_counts["timeseries"]
    assert count > 0


def _dlt_again(ns: dict[str, Any], out: str) -> None:
    # The second run asks again only after the frontier (and 6 h back): at most the
    # hour in progress has changed meanwhile, nothing else is loaded twice.
    assert not ns["first"].has_failed_jobs
    assert ns["counts"].get("timeseries", 0) <= 2
    assert "54369" in out


def _cognito(ns: dict[str, Any], out: str) -> None:
    assert ns["partner"] == 111
    assert {site.id for site in ns["sites"]} >= {3393714, 3393715}
    assert ns["client"].stats.token_grants == {"USER_PASSWORD_AUTH": 1}


def _cluster(ns: dict[str, Any], out: str) -> None:
    assert ns["result"].complete
    assert ns["result"].windows_done == ns["result"].windows_total > 2
    assert ns["result"].rows > 0


CHECKS: dict[tuple[str, str], Check] = {
    ("README.md", "### Past one machine: many credentials on a Dask cluster"): _cluster,
    ("README.md", "### Signing in with Cognito (SolarNOC and AlsoEnergy accounts)"): _cognito,
    ("README.md", "## Using it in a service"): _service,
    ("README.md", "## In a script or a notebook: the blocking client"): _sync,
    ("README.md", "### The dataset: one table for every engine"): _readers,
    ("sync-client.md", "## Threads"): _threads,
    ("service.md", "## Cognito sign-in (SolarNOC and AlsoEnergy accounts)"): lambda ns, out: (
        None if out.strip().endswith("cognito sign-in for partner 111") else pytest.fail(out)
    ),
    ("backfill.md", "## From Python"): _backfill,
    ("testing.md", "# Testing your code with the simulator"): lambda ns, out: (
        None if out.splitlines()[-1] == "True" else pytest.fail(out)
    ),
    ("README.md", "## Into any warehouse with dlt"): _dlt,
    ("warehouse.md", "# Into a warehouse with dlt"): _dlt_again,
    ("README.md", "## SolarNetwork (SolarUser API)"): lambda ns, out: (
        None if "Completed" in out else pytest.fail(out)
    ),
}


_WORKDIRS: dict[Path, Path] = {}


def _workdir(document: Path, dataset: Path, factory: pytest.TempPathFactory) -> Path:
    """One directory per document, holding the README's sample dataset: a reader runs a
    page's blocks one after another in one place, so a later block reads what an
    earlier one wrote."""
    if document not in _WORKDIRS:
        _WORKDIRS[document] = factory.mktemp(document.stem)
        copy_dataset(dataset, _WORKDIRS[document])
    return _WORKDIRS[document]


def run(block: Block) -> dict[str, Any]:
    """Run a block as a module would (top-level ``await`` as in a notebook or
    ``python -m asyncio``), keeping the file's line numbers in tracebacks."""
    source = "\n" * (block.line) + block.code
    code = compile(source, str(block.path), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    namespace: dict[str, Any] = {"__name__": "__snippet__"}
    if code.co_flags & inspect.CO_COROUTINE:

        async def main() -> None:
            await eval(code, namespace)  # noqa: S307 - the documentation's own code

        asyncio.run(main())
    else:
        exec(code, namespace)  # noqa: S102 - the documentation's own code
    return namespace


def test_the_documents_have_blocks_to_run() -> None:
    """The collection finds the README's blocks and the docs site's (a broken pattern
    would otherwise pass by running nothing)."""
    by_file = {b.path.name for b in ALL}
    assert {"README.md", "index.md", "sync-client.md", "solarnetwork.md"} <= by_file
    assert sum(b.path.name == "README.md" for b in ALL) >= 7
    assert all(b.code.strip() for b in ALL)


@pytest.mark.parametrize("block", ALL, ids=[b.name for b in ALL])
def test_block_runs(
    block: Block,
    doc_servers: dict[str, str],
    doc_dataset: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The block runs to its end against the served simulators (in its document's
    directory, after the blocks above it), leaves no client thread behind, and does
    what its text says where a check is listed."""
    for name, value in doc_servers.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(_workdir(block.path, doc_dataset, tmp_path_factory))
    before = set(threading.enumerate())
    namespace = run(block)
    out = capsys.readouterr().out
    if "print(" in block.code:
        assert out.strip(), "the block prints nothing"
    check = CHECKS.get((block.path.name, block.heading))
    if check is not None:
        check(namespace, out)
    left = [t for t in set(threading.enumerate()) - before if t.name.endswith("event loop")]
    assert left == []
