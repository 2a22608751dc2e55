"""Compaction is crash-safe and leaves provisional windows replaceable: stopped at every
write and removal it makes (and SIGKILLed in a real process), nothing is lost, and the next
run or compaction ends with every row exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import pyarrow.parquet as pq
import pytest

from locus_async import Backfill
from locus_async._shell.store import LocalStore
from locus_async.locus.compaction import JOURNAL, compact, compact_dataset, recover
from locus_async.locus.dataset import DatasetFiles
from locus_async.simulator import SimClock, Simulator, Timeline
from tests.datasets import copy_dataset, data_names, remove_dataset, state_dir, temporaries
from tests.storage.test_readers import backfill, spec, truth

pytestmark = pytest.mark.anyio


class _Crash(BaseException):
    """The process died here."""


class CrashingStore(LocalStore):
    """A local store that dies at its ``at``-th change (a write dies half-way through)."""

    def __init__(self, path: Path, at: int) -> None:
        super().__init__(path, label="out", url=str(path))
        self.at = at
        self.changes = 0

    def _tick(self) -> None:
        self.changes += 1
        if self.changes == self.at:
            raise _Crash

    def write(self, partition: str, name: str, write: Callable[[IO[bytes]], None]) -> None:
        def half(handle: IO[bytes]) -> None:
            write(handle)
            self._tick()  # dies after writing the bytes, before the rename

        super().write(partition, name, half)

    def delete(self, partition: str, names: Any) -> None:
        for name in names:
            self._tick()
            super().delete(partition, [name])

    def write_state(self, name: str, data: bytes) -> None:
        self._tick()
        super().write_state(name, data)

    def delete_state(self, name: str) -> None:
        self._tick()
        super().delete_state(name)


def _rows(out: Path) -> list[tuple[Any, ...]]:
    table = pq.read_table(out)
    names = ("id", "kind", "ts", "W_avg", "Wh_sum", "POA_avg")
    rows = zip(*(table.column(n).to_pylist() for n in names), strict=True)
    return sorted(rows, key=lambda r: (r[0], r[1], r[2]))


def _unique(rows: list[tuple[Any, ...]]) -> set[tuple[Any, ...]]:
    return set(rows)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # compaction itself is not async
async def test_compaction_stopped_at_every_change_loses_nothing_and_finishes_next_time(
    tmp_path: Path,
) -> None:
    """Stopped at its 1st, 2nd, ... write or removal until one runs through: rows are never
    missing (seen twice at most between the new file and the removal of its sources), no
    half file is visible, and the next compaction ends exact with one file per month."""
    sim = Simulator()
    base = tmp_path / "base"
    await backfill(sim, base, "hourly", compact=False)
    expected = truth(sim, "hourly")
    keys = {(r[0], r[1], r[2]) for r in expected}
    at = 0
    while True:
        at += 1
        out = tmp_path / f"at-{at}"
        copy_dataset(base, out)
        store = CrashingStore(out, at)
        dataset = DatasetFiles(store).load()
        assert dataset is not None
        try:
            compact(store, dataset[0])
        except _Crash:
            crashed = True
        else:
            crashed = False
        seen = _rows(out)
        assert {(r[0], r[1], r[2]) for r in seen} == keys, at  # nothing lost, nothing new
        assert _unique(seen) == set(expected), at
        result = compact_dataset(out)
        assert _rows(out) == expected, at
        assert all(n.split("/")[1].startswith("part-") for n in data_names(out))
        assert len(data_names(out)) == 4
        assert not (state_dir(out) / JOURNAL).exists()
        assert not temporaries(out)
        remove_dataset(out)
        if not crashed:
            assert result.partitions == 0  # it had finished: nothing left to do
            break
    assert at > 12  # a journal, four files and their sources: many points were tried


async def test_a_journal_whose_file_was_not_written_is_dropped_with_the_sources_kept(
    tmp_path: Path,
) -> None:
    """The journal names a file that never appeared: recovery removes nothing."""
    sim = Simulator()
    out = tmp_path / "fleet"
    await backfill(sim, out, compact=False)
    before = data_names(out)
    store = LocalStore(out, label="out", url=str(out))
    journal = b'{"partition": "month=2024-02", "target": "part-0000000000000000.parquet", '
    journal += b'"sources": ' + str(before).replace("'", '"').encode() + b', "staged": []}'
    store.write_state(JOURNAL, journal)
    assert recover(store)
    assert data_names(out) == before
    assert not (state_dir(out) / JOURNAL).exists()


@pytest.mark.sockets
def test_sigkill_during_compaction_then_any_run_finishes_it(tmp_path: Path) -> None:
    """``locus-async compact`` killed as soon as its journal exists, and once its first new
    file exists: the following compaction ends exact, one file per month."""
    sim = Simulator()
    import anyio

    base = tmp_path / "base"
    anyio.run(lambda: backfill(sim, base, compact=False))
    expected = truth(sim)
    for moment in ("journal", "first file"):
        out = tmp_path / moment.replace(" ", "-")
        copy_dataset(base, out)
        before = set(data_names(out))
        process = subprocess.Popen(
            [sys.executable, "-m", "locus_async", "compact", "--out", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 120  # a hang guard only

        def reached(moment: str = moment, out: Path = out, before: set[str] = before) -> bool:
            if moment == "journal":
                return (state_dir(out) / JOURNAL).exists()
            return any(n not in before for n in data_names(out))

        while not reached():
            assert process.poll() is None, "compact ended before the kill point"
            assert time.monotonic() < deadline
            time.sleep(0.0005)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(30)
        seen = _rows(out)
        assert set(seen) == set(expected)  # nothing lost; a row may be seen twice for now
        compact_dataset(out)
        assert _rows(out) == expected
        assert len(data_names(out)) == 4


async def test_provisional_windows_stay_pieces_and_are_replaced_until_final(
    tmp_path: Path,
) -> None:
    """An open dataset: compaction merges the final windows only; the provisional ones
    stay as pieces, are replaced by each sync, and are merged once final."""
    clock = SimClock(datetime(2024, 3, 20, 12, tzinfo=UTC).timestamp())
    sim = Simulator(clock=clock, timeline=Timeline(default_lag=3600, upload_every=900))
    out = tmp_path / "fleet"
    options = {"end": "now", "start": datetime(2024, 1, 1, tzinfo=UTC), "sites": ()}
    async with sim.client() as client:
        await Backfill(client, spec(**options), out, clock=clock).run()
        compact_dataset(out)
        names = data_names(out)
        parts = [n for n in names if "/part-" in n]
        pieces = [n for n in names if "/part-" not in n]
        assert pieces  # the window holding now is provisional: still a piece
        assert all(n.startswith(("month=2024-03", "month=2024-04")) for n in pieces)
        clock.advance(6 * 3600)
        await Backfill.sync(client, out, clock=clock).run()
        assert [n for n in data_names(out) if "/part-" in n] == parts
        clock.advance(40 * 86_400)  # every window of March is final now
        result = await Backfill.sync(client, out, clock=clock).run()
    assert result.complete
    march = [n for n in data_names(out) if n.startswith("month=2024-03")]
    assert len(march) == 1
    assert "/part-" in march[0]
    table = pq.read_table(out)
    keys = list(
        zip(
            table["id"].to_pylist(), table["kind"].to_pylist(), table["ts"].to_pylist(), strict=True
        )
    )
    assert len(set(keys)) == len(keys)
