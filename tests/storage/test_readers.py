"""The dataset as every engine reads it: pyarrow, pandas, polars and DuckDB read ``out`` as
one table equal to the server's data, before and after compaction, with the documented
schema and sort order, and nothing of our state among the data."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from locus_async import Backfill, BackfillSpec
from locus_async.locus.compaction import compact_dataset
from locus_async.simulator import Simulator
from tests.datasets import data_names, state_dir

pytestmark = pytest.mark.anyio

START = datetime(2024, 1, 20, tzinfo=UTC)
END = datetime(2024, 4, 10, tzinfo=UTC)
TZ = "America/Los_Angeles"
FIELDS = ("W_avg", "Wh_sum", "POA_avg")
COMPONENTS = {54369: ("W_avg", "Wh_sum"), 54373: ("POA_avg",)}
SITE = 3393714  # site-level W_avg and Wh_sum


def spec(**overrides: Any) -> BackfillSpec:
    """Two components (a meter and a weather station) and a site, 5min, 3 months."""
    options: dict[str, Any] = {
        "fields": FIELDS, "start": START, "end": END, "tz": TZ, "gran": "5min",
        "components": tuple(COMPONENTS), "sites": (SITE,),
    }  # fmt: skip
    options.update(overrides)
    return BackfillSpec(**options)


def truth(sim: Simulator, gran: str = "5min") -> list[tuple[Any, ...]]:
    """The server's valued rows as (id, kind, ts UTC, *FIELDS), sorted."""
    rows = []
    entities = [("components", i, f) for i, f in COMPONENTS.items()]
    entities.append(("sites", SITE, ("W_avg", "Wh_sum")))
    for kind, ident, fields in entities:
        for row in sim.ground_truth(
            kind, ident, fields=list(fields), start=START, end=END, tz=TZ, gran=gran
        ):
            if all(row.get(f) is None for f in fields):
                continue
            values = tuple(row.get(f) if f in fields else None for f in FIELDS)
            rows.append((row["id"], kind[:-1], row["ts"].astimezone(UTC), *values))
    return sorted(rows, key=_key)


def _key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return (row[0], row[1], row[2])


def _rows(columns: dict[str, list[Any]]) -> list[tuple[Any, ...]]:
    names = ("id", "kind", "ts", *FIELDS)
    out = []
    for row in zip(*(columns[n] for n in names), strict=True):
        stamp = row[2]
        if not isinstance(stamp, datetime):  # numpy / pandas timestamps
            stamp = stamp.to_pydatetime()
        out.append((int(row[0]), row[1], stamp.astimezone(UTC), *_floats(row[3:])))
    return sorted(out, key=_key)


def _floats(values: tuple[Any, ...]) -> tuple[float | None, ...]:
    return tuple(None if v is None or math.isnan(v) else float(v) for v in values)


def read_every_engine(out: Path) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of ``out`` as each engine reads it, given only the directory (or its
    glob)."""
    import duckdb
    import pandas as pd
    import polars as pl

    found = {}
    table = pq.read_table(out)
    found["pyarrow"] = _rows({n: table.column(n).to_pylist() for n in table.column_names})
    frame = pd.read_parquet(out)
    found["pandas"] = _rows({n: frame[n].tolist() for n in frame.columns})
    for name, polars_frame in (
        ("polars read_parquet(dir)", pl.read_parquet(out)),
        ("polars scan_parquet(dir)", pl.scan_parquet(out).collect()),
        ("polars scan_parquet(glob)", pl.scan_parquet(f"{out}/**/*.parquet").collect()),
    ):
        found[name] = _rows({n: polars_frame[n].to_list() for n in polars_frame.columns})
    query = f"select * from read_parquet('{out}/**/*.parquet', hive_partitioning = true)"  # noqa: S608
    relation = duckdb.sql(query)
    columns = relation.columns
    rows = relation.fetchall()
    found["duckdb"] = _rows({n: [r[i] for r in rows] for i, n in enumerate(columns)})
    return found


async def backfill(sim: Simulator, out: Path, gran: str = "5min", **options: Any) -> None:
    async with sim.client() as client:
        result = await Backfill(client, spec(gran=gran), out, **options).run()
    assert result.complete


async def test_every_engine_reads_the_dataset_as_one_table_before_and_after_compaction(
    tmp_path: Path,
) -> None:
    """pyarrow, pandas, polars (directory and glob) and DuckDB (hive glob) read the same
    rows as the server's, before compaction (one piece per window and month) and after
    (one file per month)."""
    sim = Simulator()
    out = tmp_path / "fleet"
    await backfill(sim, out, compact=False)
    expected = truth(sim)
    assert len(expected) > 40_000
    assert len(data_names(out)) > 4
    for engine, rows in read_every_engine(out).items():
        assert rows == expected, engine
    result = compact_dataset(out)
    assert result.partitions == 4  # January to April (local months)
    names = data_names(out)
    assert [n.split("/")[0] for n in names] == [
        "month=2024-01", "month=2024-02", "month=2024-03", "month=2024-04",
    ]  # fmt: skip
    assert all(n.split("/")[1].startswith("part-") for n in names)
    for engine, rows in read_every_engine(out).items():
        assert rows == expected, engine


async def test_the_schema_is_documented_and_files_are_sorted_by_id_and_ts(
    tmp_path: Path,
) -> None:
    """Every file: id int64, kind string, ts timestamp[us, UTC], one float64 per field, in
    (id, ts) order; the partition column is the month; no state file under out."""
    sim = Simulator()
    out = tmp_path / "fleet"
    await backfill(sim, out)
    schema = pa.schema([
        ("id", pa.int64()), ("kind", pa.string()), ("ts", pa.timestamp("us", tz="UTC")),
        *((f, pa.float64()) for f in FIELDS),
    ])  # fmt: skip
    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert files
    assert all(p.suffix == ".parquet" for p in files)
    for path in files:
        table = pq.read_table(path)
        assert table.schema.remove_metadata() == schema, path
        keys = list(zip(table["id"].to_pylist(), table["ts"].to_pylist(), strict=True))
        assert keys == sorted(keys), path
    assert pq.read_table(out).schema.field("month").name == "month"
    assert (state_dir(out) / "checkpoint.json").is_file()


async def test_compaction_is_idempotent_and_a_resume_after_it_fetches_nothing(
    tmp_path: Path,
) -> None:
    """A second compaction changes no file; the next run skips every window (the index
    knows them, whatever file holds their rows) and sends no data request."""
    sim = Simulator()
    out = tmp_path / "fleet"
    await backfill(sim, out)
    before = sorted((p, p.stat().st_mtime_ns) for p in out.rglob("*.parquet"))
    assert compact_dataset(out).partitions == 0
    assert sorted((p, p.stat().st_mtime_ns) for p in out.rglob("*.parquet")) == before
    sim.reset_stats()
    async with sim.client() as client:
        again = await Backfill(client, spec(), out).run()
    assert again.windows_done == 0
    assert again.windows_skipped == again.windows_total
    assert sim.stats.data_windows == []
    assert sorted((p, p.stat().st_mtime_ns) for p in out.rglob("*.parquet")) == before


async def test_a_window_decoded_straight_into_arrow_equals_the_column_parser() -> None:
    """fetch_window(arrow=True) on a 4-day 1min body: held as Arrow (the fast path was
    taken), the same table as the column parser's, in the requested zone."""
    from zoneinfo import ZoneInfo

    from locus_async.locus._core.query import DataQuery
    from locus_async.locus._core.windows import Window, parse_granularity

    sim = Simulator()
    zone = ZoneInfo(TZ)
    start, end = int(START.timestamp()), int(START.timestamp()) + 4 * 86_400
    query = DataQuery(("W_avg", "Wh_sum"), zone, parse_granularity("1min"), start, end)
    window = Window(start, end, zone)
    async with sim.client() as client:
        fast = await client.fetch_window("components", 54369, query, window, arrow=True)
        slow = await client.fetch_window("components", 54369, query, window)
    assert fast.arrow is not None
    assert slow.arrow is None
    assert len(fast) == len(slow) == 4 * 1440
    assert fast.to_arrow().equals(slow.to_arrow())
    assert fast.to_arrow().schema.field("ts").type.tz == TZ
    assert list(fast)[:3] == list(slow)[:3]
