"""``locus_async.dlt.locus_source`` loaded by dlt into its DuckDB destination against a
simulator whose clock, upload lag and revisions move between scheduled runs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlt
import duckdb
import httpx
import pytest

from locus_async import UsageError, sync
from locus_async.dlt import locus_source
from locus_async.simulator import SimClock, Simulator, Timeline

START = datetime(2024, 6, 8, tzinfo=UTC)
T0 = datetime(2024, 6, 10, 12, 7, tzinfo=UTC).timestamp()
FIELDS = ("W_avg", "Wh_sum")
METER, INVERTER, LATE, STATION = 54369, 54370, 54371, 54373


@pytest.fixture(autouse=True)
def _dlt_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """dlt's files in the test's directory, and no telemetry (no network but loopback)."""
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt-home"))
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    monkeypatch.setenv("DLT_PROJECT_DIR", str(tmp_path))


@pytest.fixture
def world() -> Iterator[tuple[Simulator, SimClock, sync.LocusClient]]:
    clock = SimClock(T0)
    timeline = Timeline(
        lags={INVERTER: 5 * 3600}, default_lag=300, upload_every=900,
        revision_share=0.1, revision_delay=4 * 3600, seed=3,
    )  # fmt: skip
    sim = Simulator(clock=clock, timeline=timeline)
    with sim.sync_client(wall=clock) as client:
        yield sim, clock, client


def _pipeline(tmp_path: Path) -> Any:
    return dlt.pipeline(
        pipeline_name="locus_test",
        destination=dlt.destinations.duckdb(str(tmp_path / "warehouse.duckdb")),
        dataset_name="fleet",
        pipelines_dir=str(tmp_path / "pipelines"),
    )


def _source(client: sync.LocusClient, clock: SimClock, **overrides: Any) -> Any:
    options: dict[str, Any] = {
        "fields": ",".join(FIELDS), "gran": "hourly", "tz": "UTC", "start": START,
        "components": [METER, INVERTER, LATE, STATION], "lookback": "1d", "client": client,
    }  # fmt: skip
    options.update(overrides)
    return locus_source(111, **options)


def _loaded(tmp_path: Path) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as db:
        rows = db.sql("select id, ts, w_avg, wh_sum from fleet.timeseries").fetchall()
    return sorted((r[0], int(r[1].timestamp()), r[2], r[3]) for r in rows)


def _truth(
    sim: Simulator, moment: float, end: datetime = datetime(2024, 6, 13, tzinfo=UTC)
) -> list[tuple[Any, ...]]:
    """The server's valued rows of the loaded components as of ``moment``."""
    out = []
    for ident in (METER, INVERTER, LATE):
        for row in sim.ground_truth(
            "components", ident, fields=list(FIELDS), start=START,
            end=end, tz="UTC", gran="hourly", as_of=moment,
        ):  # fmt: skip
            if row["W_avg"] is None and row["Wh_sum"] is None:
                continue
            out.append((ident, int(row["ts"].timestamp()), row["W_avg"], row["Wh_sum"]))
    return sorted(out)


def _loaded_rows(pipeline: Any, table: str) -> int:
    counts = pipeline.last_trace.last_normalize_info.row_counts
    return int(counts.get(table, 0))


def test_scheduled_runs_load_exactly_the_new_and_revised_rows(
    world: tuple[Simulator, SimClock, sync.LocusClient], tmp_path: Path
) -> None:
    """Three runs, the clock moved between them: after each the DuckDB table equals the
    server's valued rows as of then (late uploads and revisions included), without a
    duplicate key, and each later run loads exactly the rows that are new or changed."""
    sim, clock, client = world
    pipeline = _pipeline(tmp_path)
    pipeline.run(_source(client, clock))
    before = _truth(sim, clock())
    assert _loaded(tmp_path) == before
    assert _loaded_rows(pipeline, "timeseries") == len(before)
    lagging = max(r[1] for r in before if r[0] == INVERTER)
    assert lagging < max(r[1] for r in before if r[0] == METER)  # the inverter is late
    revised = 0
    for step in (9 * 3600, 3 * 3600 + 600):
        clock.advance(step)
        pipeline = _pipeline(tmp_path)  # as a scheduled job: a new process, dlt's state
        pipeline.run(_source(client, clock))
        after = _truth(sim, clock())
        loaded = _loaded(tmp_path)
        assert loaded == after
        assert len({(r[0], r[1]) for r in loaded}) == len(loaded)
        changed = set(after) - set(before)
        keys = {(r[0], r[1]) for r in before}
        revised += sum((r[0], r[1]) in keys for r in changed)  # same key, new values
        assert any(r[0] == INVERTER and r[1] > lagging for r in changed)  # late uploads
        assert _loaded_rows(pipeline, "timeseries") == len(changed)
        before = after
    assert revised > 0
    state = pipeline.state["sources"]["locus"]["resources"]["timeseries"]["components"]
    assert state[str(STATION)]["fields"] == []  # a weather station has neither field
    assert state[str(METER)]["frontier"] == max(r[1] for r in before if r[0] == METER)


def test_a_pipeline_left_unrun_past_max_lag_misses_nothing(
    world: tuple[Simulator, SimClock, sync.LocusClient], tmp_path: Path
) -> None:
    """Ten days without a run (longer than max_lag, and than updated_since may reach
    back): the next run fills the whole gap and the table equals the server again."""
    sim, clock, client = world
    pipeline = _pipeline(tmp_path)
    pipeline.run(_source(client, clock, lookback=0, max_lag="2d"))
    clock.advance(10 * 86_400)
    pipeline = _pipeline(tmp_path)
    pipeline.run(_source(client, clock, lookback=0, max_lag="2d"))
    end = datetime.fromtimestamp(clock(), UTC)
    truth = _truth(sim, clock(), end=end)
    assert _loaded(tmp_path) == truth
    assert max(r[1] for r in truth) > T0 + 9 * 86_400


def test_entities_and_alerts_merge_on_their_ids(
    world: tuple[Simulator, SimClock, sync.LocusClient], tmp_path: Path
) -> None:
    """Sites, components and alerts land once each however often the source runs; the
    alerts resource asks only for what was updated since its last run."""
    sim, clock, _ = world
    asked: list[httpx.URL] = []

    async def record(request: httpx.Request) -> None:
        if request.url.path.endswith("/alerts"):
            asked.append(request.url)

    pipeline = _pipeline(tmp_path)
    with sim.sync_client(wall=clock, event_hooks={"request": [record]}) as client:
        for _ in range(2):
            pipeline.run(_source(client, clock, components=[METER]))
            clock.advance(3600)
        expected_sites = sorted((s.id, s.name) for s in client.partners.sites(111))
        expected = len(client.partners.components(111))
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as db:
        sites = db.sql("select id, name from fleet.sites order by id").fetchall()
        components = db.sql("select count(*), count(distinct id) from fleet.components").fetchall()[
            0
        ]
        alerts = db.sql("select count(*), count(distinct id) from fleet.alerts").fetchall()[0]
        newest = db.sql("select max(updated) from fleet.alerts").fetchall()[0][0]
    assert sites == expected_sites
    assert components == (expected, expected)
    assert alerts[0] == alerts[1] > 0
    first, second = (url.params["updatedSince"] for url in asked)
    assert first == "2024-06-08T00:00:00"  # the start
    assert second == newest.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")  # then dlt's cursor


def test_refusals_are_one_line_and_light_installs_stay_light(
    world: tuple[Simulator, SimClock, sync.LocusClient],
) -> None:
    """A granularity the source cannot keep incremental, or a bad duration, is refused
    at once; ``import locus_async`` never imports dlt, and without dlt the module says
    which extra to install."""
    _, clock, client = world
    with pytest.raises(UsageError, match="gran must be one of"):
        _source(client, clock, gran="monthly")
    with pytest.raises(UsageError, match="lookback"):
        _source(client, clock, lookback="a while")
    code = "import sys, locus_async; print('dlt' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
    code = "import sys; sys.modules['dlt'] = None; import locus_async.dlt"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert "pip install 'locus-async[dlt]'" in done.stderr.splitlines()[-1]
