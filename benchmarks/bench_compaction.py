"""Compaction at fleet scale (issue 14): 1,000 components x 1 year of 5min.

The dataset is written by the backfill's own writer (``DatasetFiles.write_window``: one
piece per window and month, as a run writes them) from synthetic rows, its windows
recorded as finished; then read, compacted with ``compact_dataset``, and read again, in
one process. Goals: at most 1 file per partition after compaction, and reading one
component's year (pyarrow, filter on ``id``) at least 10x faster than from the pieces.

    python benchmarks/bench_compaction.py [--components 1000]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from _common import machine, table

from locus_async._shell.store import open_store
from locus_async.locus._core.freshness import dataset_windows
from locus_async.locus._core.layout import Ranges
from locus_async.locus._core.windows import DEFAULT_LIMITS, parse_granularity
from locus_async.locus.checkpoint import Checkpoint, entity_key
from locus_async.locus.compaction import compact_dataset
from locus_async.locus.dataset import DatasetFiles

START = datetime(2024, 1, 1, tzinfo=UTC)
END = datetime(2025, 1, 1, tzinfo=UTC)
FIELDS = ("W_avg",)


def build(out: Path, components: int) -> tuple[int, int]:
    """Write the pieces of every window; (windows, rows)."""
    start, end = int(START.timestamp()), int(END.timestamp())
    gran = parse_granularity("5min")
    windows = dataset_windows(
        [start], end, now=end, tz=ZoneInfo("UTC"), gran=gran, limit=DEFAULT_LIMITS[gran]
    )
    ids = list(range(1, components + 1))
    dataset = Checkpoint(
        fields=FIELDS, gran="5min", tz="UTC", format="parquet", starts=[start], end=end,
        entities={"components": ids, "sites": [], "site_components": [], "partner_components": []},
        node_types=[], state="complete",
        available={entity_key("components", i): list(FIELDS) for i in ids},
    )  # fmt: skip
    store = open_store(out)
    files = DatasetFiles(store)
    rows = 0
    with store.lock():
        for ident in ids:
            for window in windows:
                stamps = pa.array(range(window.start, window.end, 300), pa.int64())
                count = len(stamps)
                seconds = stamps.cast(pa.timestamp("s", tz="UTC"))
                part = pa.table(
                    {
                        "id": pa.array([ident] * count, pa.int64()),
                        "ts": seconds.cast(pa.timestamp("us", tz="UTC")),
                        "W_avg": pa.array([float(ident + i % 288) for i in range(count)]),
                    }
                )
                files.write_window(dataset, "components", ident, window.start, window.end, part)
                rows += count
            dataset.done[entity_key("components", ident)] = Ranges([(start, end)])
        files.save(files.encode(dataset))
    return len(windows) * components, rows


def read_one(out: Path, ident: int) -> tuple[float, int]:
    """Seconds to read one component's year (best of 3), and its rows."""
    best, rows = float("inf"), 0
    for _ in range(3):
        started = time.perf_counter()
        found = ds.dataset(out, format="parquet", partitioning="hive").to_table(
            filter=ds.field("id") == ident
        )
        best = min(best, time.perf_counter() - started)
        rows = found.num_rows
    return best, rows


def read_all(out: Path) -> tuple[float, int]:
    started = time.perf_counter()
    found = pq.read_table(out)
    return time.perf_counter() - started, found.num_rows


def files(out: Path) -> tuple[int, int, int]:
    paths = list(out.rglob("*.parquet"))
    partitions = {p.parent.name for p in paths}
    return len(paths), len(partitions), sum(p.stat().st_size for p in paths)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--components", type=int, default=1000)
    args = parser.parse_args()
    print(f"Machine: {machine()}\n")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "fleet"
        began = time.perf_counter()
        windows, rows = build(out, args.components)
        written = time.perf_counter() - began
        target = args.components // 2
        before = (files(out), read_one(out, target), read_all(out))
        began = time.perf_counter()
        result = compact_dataset(out)
        compacting = time.perf_counter() - began
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        after = (files(out), read_one(out, target), read_all(out))
    assert before[1][1] == after[1][1]
    assert before[2][1] == after[2][1] == rows
    print(
        f"{args.components} components x 1 year of 5min: {windows:,} windows, {rows:,} rows; "
        f"written as pieces in {written:.0f} s, compacted in {compacting:.1f} s "
        f"({result.partitions} partitions, {result.files_before:,} files into "
        f"{result.files_after}); peak RSS {peak:.0f} MB\n"
    )
    out_rows = []
    for label, (count, partitions, size), (one, one_rows), (full, _) in (
        ("one file per window piece", *before),
        ("compacted", *after),
    ):
        out_rows.append(
            (
                label,
                f"{count:,}",
                f"{count / partitions:.1f}",
                f"{size / 2**20:.0f}",
                f"{one * 1000:.0f} ({one_rows:,} rows)",
                f"{full:.2f}",
            )
        )
    print(
        table(
            [
                "layout",
                "files",
                "files per partition",
                "MiB",
                "one component's year ms",
                "full read s",
            ],
            out_rows,
        )
    )
    print(
        f"\none component's year: {before[1][0] / after[1][0]:.1f}x faster compacted; "
        f"full read {before[2][0] / after[2][0]:.1f}x"
    )


if __name__ == "__main__":
    main()
