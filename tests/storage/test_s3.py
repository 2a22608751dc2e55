"""Datasets on object storage, against a real S3 API on loopback (moto's server mode):
the same rows, resumable, compacted, one run at a time through a lease, read by pyarrow,
pandas, polars and DuckDB from the bucket."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import pyarrow.parquet as pq
import pytest

from locus_async import Backfill, OutputLocked, UsageError
from locus_async.locus.compaction import compact_dataset
from locus_async.simulator import SimClock, Simulator, Timeline
from tests.storage.conftest import CREDENTIALS
from tests.storage.test_readers import FIELDS, spec, truth

pytestmark = pytest.mark.anyio


def _rows(columns: dict[str, list[Any]]) -> list[tuple[Any, ...]]:
    from tests.storage.test_readers import _rows as rows

    return rows(columns)


def read_from_s3(fs: Any, prefix: str) -> dict[str, list[tuple[Any, ...]]]:
    """The rows under ``s3://<prefix>`` as each engine reads them from the bucket."""
    import duckdb
    import pandas as pd
    import polars as pl

    found = {}
    fs.invalidate_cache()
    table = pq.read_table(prefix, filesystem=fs)
    found["pyarrow"] = _rows({n: table.column(n).to_pylist() for n in table.column_names})
    options = {"client_kwargs": {"endpoint_url": fs.endpoint}, "skip_instance_cache": True}
    frame = pd.read_parquet(f"s3://{prefix}", storage_options=options)
    found["pandas"] = _rows({n: frame[n].tolist() for n in frame.columns})
    polars_options = {
        "aws_endpoint_url": fs.endpoint,
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "aws_region": CREDENTIALS["AWS_DEFAULT_REGION"],
        "aws_allow_http": "true",
    }
    polars_frame = pl.read_parquet(f"s3://{prefix}/**/*.parquet", storage_options=polars_options)
    found["polars"] = _rows({n: polars_frame[n].to_list() for n in polars_frame.columns})
    connection = duckdb.connect()
    connection.register_filesystem(fs)
    relation = connection.sql(
        f"select * from read_parquet('s3://{prefix}/**/*.parquet', hive_partitioning = true)"  # noqa: S608
    )
    rows = relation.fetchall()
    found["duckdb"] = _rows({n: [r[i] for r in rows] for i, n in enumerate(relation.columns)})
    return found


def _keys(fs: Any, prefix: str) -> list[str]:
    fs.invalidate_cache()
    return sorted(p[len(prefix) + 1 :] for p in fs.find(prefix))


async def test_a_backfill_into_s3_is_read_by_every_engine_and_resumes_with_nothing(
    s3: Any,
) -> None:
    """--out s3://bucket/fleet: only Parquet under the prefix, the state beside it; every
    engine reads the server's rows from the bucket before and after compaction; a second
    run sends no data request and writes nothing."""
    sim = Simulator()
    out = f"s3://{s3.bucket}/fleet"
    async with sim.client() as client:
        result = await Backfill(client, spec(), out, compact=False).run()
    assert result.complete
    assert result.out == out
    expected = truth(sim)
    keys = _keys(s3, f"{s3.bucket}/fleet")
    assert keys
    assert all(k.endswith(".parquet") and k.startswith("month=") for k in keys)
    assert _keys(s3, f"{s3.bucket}/fleet.locus") == ["checkpoint.json"]  # the lease is gone
    for engine, rows in read_from_s3(s3, f"{s3.bucket}/fleet").items():
        assert rows == expected, engine
    compacted = compact_dataset(out)
    assert compacted.partitions == 4
    keys = _keys(s3, f"{s3.bucket}/fleet")
    assert len(keys) == 4
    assert all("/part-" in k for k in keys)
    for engine, rows in read_from_s3(s3, f"{s3.bucket}/fleet").items():
        assert rows == expected, engine
    sim.reset_stats()
    async with sim.client() as client:
        again = await Backfill(client, spec(), out).run()
    assert again.windows_skipped == again.windows_total
    assert sim.stats.data_windows == []
    assert _keys(s3, f"{s3.bucket}/fleet") == keys


async def test_a_sync_on_s3_replaces_provisional_windows_and_stays_exact(s3: Any) -> None:
    """An open dataset on S3 synced as the simulator's clock moves: its provisional pieces
    are overwritten in place and the bucket always holds the server's data once."""
    clock = SimClock(datetime(2024, 3, 20, 12, tzinfo=UTC).timestamp())
    sim = Simulator(clock=clock, timeline=Timeline(default_lag=3600, upload_every=900))
    out = f"s3://{s3.bucket}/open"
    options = {"end": "now", "start": datetime(2024, 3, 1, tzinfo=UTC), "sites": ()}
    async with sim.client() as client:
        await Backfill(client, spec(**options), out, clock=clock).run()
        for _ in range(3):
            clock.advance(5 * 3600)
            assert (await Backfill.sync(client, out, clock=clock).run()).complete
    s3.invalidate_cache()
    table = pq.read_table(f"{s3.bucket}/open", filesystem=s3)
    got = _rows({n: table.column(n).to_pylist() for n in table.column_names})
    moment = clock()
    want = []
    for ident, fields in (
        (54369, ("W_avg", "Wh_sum")), (54373, ("POA_avg",))
    ):  # fmt: skip
        for row in sim.ground_truth(
            "components", ident, fields=list(fields), start=datetime(2024, 3, 1, tzinfo=UTC),
            end=datetime(2024, 5, 1, tzinfo=UTC), tz="America/Los_Angeles", gran="5min",
            as_of=moment,
        ):  # fmt: skip
            if all(row.get(f) is None for f in fields):
                continue
            values = tuple(row.get(f) if f in fields else None for f in FIELDS)
            want.append((row["id"], "component", row["ts"].astimezone(UTC), *values))
    assert got == sorted(want, key=lambda r: (r[0], r[1], r[2]))


async def test_one_run_at_a_time_on_s3_and_an_expired_lease_is_taken_over(s3: Any) -> None:
    """A lease another run holds: OutputLocked naming its host and pid, nothing written. A
    lease whose holder stopped renewing it (expired): taken over, the run completes."""
    sim = Simulator()
    out = f"s3://{s3.bucket}/leased"
    lease = f"{s3.bucket}/leased.locus/lock"
    holder = {"host": "elsewhere", "pid": 4242, "started": "2026-12-01T00:00:00+00:00",
              "token": "x" * 32, "expires": time.time() + 3600}  # fmt: skip
    s3.pipe_file(lease, json.dumps(holder).encode())
    async with sim.client() as client:
        with pytest.raises(OutputLocked, match="pid 4242 on elsewhere") as caught:
            await Backfill(client, spec(), out).run()
    assert caught.value.holder["pid"] == 4242
    assert _keys(s3, f"{s3.bucket}/leased") == []
    assert "token" not in caught.value.holder
    s3.pipe_file(lease, json.dumps({**holder, "expires": time.time() - 1}).encode())
    async with sim.client() as client:
        assert (await Backfill(client, spec(), out).run()).complete
    assert _keys(s3, f"{s3.bucket}/leased.locus") == ["checkpoint.json"]


def test_a_missing_bucket_is_one_line_exit_2(s3: Any) -> None:
    """--out into a bucket that does not exist: exit 2, one line naming it, no request
    to the Locus API's data."""
    sim = Simulator()
    with sim.serve() as server:
        env = {**os.environ, **Simulator.environment(server.url)}
        process = subprocess.run(
            [sys.executable, "-m", "locus_async", "backfill", "--component", "54369",
             "--fields", "W_avg", "--start", "2024-01-01", "--end", "2024-01-03",
             "--gran", "hourly", "--tz", "UTC", "--out", "s3://no-such-bucket/x"],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert process.returncode == 2, process.stderr
    lines = [line for line in process.stderr.splitlines() if line.startswith("locus-async")]
    assert lines == [
        "locus-async: error: out 's3://no-such-bucket/x': the bucket 'no-such-bucket' does "
        "not exist"
    ]
    assert sim.stats.data_windows == []


@pytest.mark.sockets
def test_sigkill_of_a_backfill_into_s3_then_resume_is_exact(s3: Any) -> None:
    """The CLI writing to S3 killed after a few windows, then run again: the bucket holds
    the server's rows once, and the resume skipped what the killed run had written."""
    sim = Simulator(faults=__import__("locus_async.simulator").simulator.Faults(latency=0.05))
    out = f"s3://{s3.bucket}/killed"
    args = [sys.executable, "-m", "locus_async", "backfill", "--component", "54369",
            "--component", "54373", "--site", "3393714", "--fields", ",".join(FIELDS),
            "--start", "2024-01-20T00:00:00+00:00", "--end", "2024-04-10T00:00:00+00:00",
            "--tz", "America/Los_Angeles", "--gran", "5min", "--out", out]  # fmt: skip
    with sim.serve() as server:
        env = {**os.environ, **Simulator.environment(server.url)}
        process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120  # a hang guard only
        # 6 pieces: at least two whole windows (at most 3 are being written, one piece each
        # missing; every window here crosses a month, so it has two pieces)
        while len(_keys(s3, f"{s3.bucket}/killed")) < 6:
            assert process.poll() is None, "the run ended before the kill point"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        lease = json.loads(s3.cat_file(f"{s3.bucket}/killed.locus/lock"))
        assert lease["pid"] == process.pid
        # the killed run's lease must expire before another run may write: here at once
        s3.pipe_file(f"{s3.bucket}/killed.locus/lock", json.dumps({**lease, "expires": 0}).encode())
        deadline = time.monotonic() + 60  # its last request ends on the server first
        while sum(sim.stats.in_flight.values()):
            assert time.monotonic() < deadline
            time.sleep(0.002)
        resumed = subprocess.run(
            [*args, "--json"], env=env, capture_output=True, text=True, timeout=180, check=False
        )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["windows_skipped"] >= 1
    s3.invalidate_cache()
    table = pq.read_table(f"{s3.bucket}/killed", filesystem=s3)
    got = _rows({n: table.column(n).to_pylist() for n in table.column_names})
    assert got == truth(sim)


async def test_a_lost_lease_stops_the_run_before_it_writes_more(s3: Any) -> None:
    """Another run took the lease over (this one was paused past its expiry): this run's
    next write raises OutputLocked instead of writing beside the other."""
    from locus_async._shell.store import open_store

    store = open_store(f"s3://{s3.bucket}/lost")
    with store.lock():
        s3.pipe_file(f"{s3.bucket}/lost.locus/lock", b'{"token": "someone else"}')
        store._lost = True  # what the renewer sets when its conditional renewal fails
        with pytest.raises(OutputLocked, match="lease was lost"):
            store.write_state("checkpoint.json", b"{}")
    assert _keys(s3, f"{s3.bucket}/lost.locus") == ["lock"]  # not ours: left alone
    with pytest.raises(UsageError, match="needs a prefix"):
        open_store(f"s3://{s3.bucket}")
