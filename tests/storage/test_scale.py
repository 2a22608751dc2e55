"""A fleet-sized dataset from its index alone: --plan for explicit component ids sends no
request (new or finished dataset), and a resume with every window finished sends only its
token request and reads no data file. (Times are in benchmarks/bench_scale.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.bench_scale import START, build
from locus_async import Backfill, BackfillSpec
from locus_async.simulator import Simulator

pytestmark = pytest.mark.anyio

COMPONENTS = 300


def _spec() -> BackfillSpec:
    return BackfillSpec(
        fields="W_avg", start=START, end=START.replace(year=START.year + 2), tz="UTC",
        gran="5min", components=tuple(range(1, COMPONENTS + 1)),
    )  # fmt: skip


async def test_a_plan_of_explicit_ids_sends_no_request_new_or_finished(tmp_path: Path) -> None:
    """A new dataset: every window new, one dataavailable per component counted, nothing
    sent. A finished one (from its index): every window done, nothing to send."""
    sim = Simulator()
    out = tmp_path / "fleet"
    async with sim.client() as client:
        fresh = await Backfill(client, _spec(), out).plan()
    assert sim.stats.log == []
    assert fresh.windows_total == COMPONENTS * 24
    assert fresh.windows_new == fresh.windows_total
    assert fresh.requests == fresh.windows_total + COMPONENTS  # and each one's dataavailable
    assert not out.exists()
    assert build(out, COMPONENTS, 2) == COMPONENTS * 24
    async with sim.client() as client:
        done = await Backfill(client, _spec(), out).plan()
    assert sim.stats.log == []
    assert (done.windows_done, done.requests) == (COMPONENTS * 24, 0)


async def test_a_resume_with_everything_finished_sends_only_its_token_request(
    tmp_path: Path,
) -> None:
    """Every window finished: the run skips them all from the index, asks for nothing but
    a token, and neither lists nor writes a data file."""
    sim = Simulator()
    out = tmp_path / "fleet"
    build(out, COMPONENTS, 2)
    async with sim.client() as client:
        result = await Backfill(client, _spec(), out).run()
    assert result.windows_skipped == result.windows_total == COMPONENTS * 24
    assert result.windows_done == 0
    assert [path for _, path, _ in sim.stats.log] == ["/oauth/token"]
    assert list(out.iterdir()) == []
