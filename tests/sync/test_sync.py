"""Keeping a dataset current against a simulator whose clock, upload lag, revisions and
fleet move between runs: the dataset always equals the server's data as of the last sync."""

from __future__ import annotations

import contextlib
import math
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from locus_async import Backfill, BackfillSpec, UsageError
from locus_async.simulator import SimClock, Simulator, Timeline
from tests.datasets import (
    checkpoint,
    copy_dataset,
    data_names,
    remove_dataset,
    snapshot,
    state_dir,
    temporaries,
    to_legacy,
)

pytestmark = pytest.mark.anyio

START = datetime(2024, 6, 1, tzinfo=UTC)
T0 = datetime(2024, 6, 10, 12, tzinfo=UTC).timestamp()
FIELDS = ("W_avg", "Wh_sum", "POA_avg")
SITE = 3393714  # meter 54369, inverters 54370-54372, weather station 54373
HAS = {54373: ("POA_avg",)}


def _spec(**overrides: Any) -> BackfillSpec:
    options: dict[str, Any] = {
        "fields": FIELDS, "start": START, "end": "now", "tz": "UTC", "gran": "hourly",
        "site_components": (SITE,),
    }  # fmt: skip
    options.update(overrides)
    return BackfillSpec(**options)


def _rows(out: Path) -> list[tuple[Any, ...]]:
    table = pq.read_table(out)
    names = ("id", "ts", *FIELDS)
    return sorted(zip(*(table.column(c).to_pylist() for c in names), strict=True))


def _truth(sim: Simulator, ids: list[int], moment: float, end: datetime) -> list[tuple[Any, ...]]:
    """The server's valued rows as of ``moment``, in the dataset's columns."""
    rows = []
    for ident in ids:
        fields = list(HAS.get(ident, ("W_avg", "Wh_sum")))
        truth = sim.ground_truth(
            "components", ident, fields=fields, start=START, end=end, tz="UTC", gran="hourly",
            as_of=moment,
        )  # fmt: skip
        for row in truth:
            if all(row[f] is None for f in fields):
                continue
            rows.append((row["id"], row["ts"].astimezone(UTC), *(row.get(f) for f in FIELDS)))
    return sorted(rows)


async def _run(sim: Simulator, out: Path, clock: SimClock, spec: BackfillSpec | None, **kw: Any):  # type: ignore[no-untyped-def]
    async with sim.client() as client:
        if spec is None:
            return await Backfill.sync(client, out, clock=clock, **kw).run()
        return await Backfill(client, spec, out, clock=clock, **kw).run()


async def test_any_sequence_of_syncs_equals_the_server_as_of_the_last(tmp_path: Path) -> None:
    """Twelve syncs at seeded random steps (minutes to a day) with lagging, silent, revising
    and newly commissioned components: after each one the Parquet dataset equals the
    server's data as of that moment, without a duplicate or a row past now."""
    rng = random.Random(20261202)
    clock = SimClock(T0)
    timeline = Timeline(
        lags={54370: 5 * 3600, 54371: math.inf}, default_lag=300, upload_every=900,
        appears={54372: T0 + 20 * 3600}, revision_share=0.08, revision_delay=4 * 3600,
    )  # fmt: skip
    sim = Simulator(clock=clock, timeline=timeline)
    out = tmp_path / "ds"
    result = await _run(sim, out, clock, _spec(), lookback="2d")
    assert result.complete
    assert result.windows_provisional > 0
    revised = 0
    for _ in range(12):
        clock.advance(rng.choice([300, 1800, 3 * 3600, 9 * 3600, 86_400]))
        result = await _run(sim, out, clock, None, lookback="2d")
        assert result.complete
        revised += result.windows_revised
        rows = _rows(out)
        listed = [54369, 54370, 54371, 54373] + ([54372] if sim.core.listed(54372) else [])
        assert rows == _truth(sim, listed, clock(), datetime(2024, 8, 1, tzinfo=UTC))
        assert len({(r[0], r[1]) for r in rows}) == len(rows)
        assert max(r[1] for r in rows).timestamp() < clock()
        ends = [datetime.fromisoformat(w[2]).replace(tzinfo=UTC) for w in sim.stats.data_windows]
        assert max(ends).timestamp() <= clock() + 3600  # never past the hour holding now
    assert {e["entity_id"] for e in result.summary()["lagging"]} >= {54371}


async def test_a_silent_component_stays_provisional_then_is_final_with_its_gaps(
    tmp_path: Path,
) -> None:
    """A component that never reports holds only its own windows: each is refetched until
    older than max_lag, then final with its gaps reported and never asked again; the
    reporting component's ended windows are final at once."""
    clock = SimClock(T0)
    sim = Simulator(clock=clock, timeline=Timeline(lags={54371: math.inf}))
    out = tmp_path / "ds"
    spec = _spec(
        start=datetime(2024, 5, 1, tzinfo=UTC), site_components=(), components=(54369, 54371)
    )
    first = await _run(sim, out, clock, spec, max_lag="3d")
    assert first.windows_total == 4  # two 31-day windows each; the first ended > 3 days ago
    provisional = checkpoint(out)["provisional"]
    assert len(provisional) == 2  # each component's window holding now
    clock.set(datetime(2024, 7, 6, tzinfo=UTC).timestamp())
    sim.reset_stats()
    result = await _run(sim, out, clock, None, max_lag="3d")
    paths = [w[0] for w in sim.stats.data_windows]
    assert paths.count("/v3/components/54371/data") == 2  # the aged window, the new one
    gaps = result.summary()["gaps"]
    assert [(g["entity_id"], g["missing_rows"] > 0) for g in gaps] == [(54371, True)]
    sim.reset_stats()
    clock.advance(3600)
    await _run(sim, out, clock, None, max_lag="3d")
    assert sorted(w[0] for w in sim.stats.data_windows) == [
        "/v3/components/54369/data", "/v3/components/54371/data",
    ]  # fmt: skip


async def test_lookback_applies_revisions_that_land_after_a_window_is_final(
    tmp_path: Path,
) -> None:
    """A revision landing after its window turned final is missed without --lookback and
    applied (that window rewritten, the others untouched) with it."""
    clock = SimClock(datetime(2024, 6, 1, 6, tzinfo=UTC).timestamp())
    timeline = Timeline(revision_share=0.3, revision_delay=2 * 86_400, seed=5)
    sim = Simulator(clock=clock, timeline=timeline)
    spec = _spec(start=datetime(2024, 5, 1, tzinfo=UTC), site_components=(), components=(54369,))
    plain, looked = tmp_path / "plain", tmp_path / "lookback"
    for out in (plain, looked):
        await _run(sim, out, clock, spec)
    clock.advance(3 * 86_400)
    await _run(sim, plain, clock, None)
    result = await _run(sim, looked, clock, None, lookback="7d")
    assert result.windows_revised == 1  # the first window, final since the first run
    truth = sim.ground_truth(
        "components", 54369, fields=list(FIELDS[:2]), start=datetime(2024, 5, 1), end=datetime(2024, 7, 6),
        tz="UTC", gran="hourly",
    )  # fmt: skip
    wanted = sorted(
        (r["id"], r["ts"].astimezone(UTC), r["W_avg"], r["Wh_sum"], None)
        for r in truth
        if r["W_avg"] is not None
    )
    assert _rows(looked) == wanted
    assert _rows(plain) != wanted


async def test_new_components_are_backfilled_from_the_start_and_additions_fetch_only_theirs(
    tmp_path: Path,
) -> None:
    """A site's component commissioned later is picked up by the next sync (its windows
    only); add_components adds one more, fetching that component's windows only."""
    clock = SimClock(T0)
    sim = Simulator(clock=clock, timeline=Timeline(appears={54372: T0 + 3600}))
    out = tmp_path / "ds"
    spec = _spec(start=datetime(2024, 4, 1, tzinfo=UTC))
    first = await _run(sim, out, clock, spec)
    assert first.entities == 4
    clock.advance(2 * 3600)
    sim.reset_stats()
    result = await _run(sim, out, clock, None)
    assert result.new_entities == (("components", 54372),)
    fetched = [w[0] for w in sim.stats.data_windows]
    assert fetched.count("/v3/components/54372/data") == result.windows_total // 5
    sim.reset_stats()
    result = await _run(sim, out, clock, None, add_components=(54380,))
    fetched = [w[0] for w in sim.stats.data_windows]
    assert fetched.count("/v3/components/54380/data") == result.windows_total // 6
    assert {p for p in fetched if "54380" not in p} <= {
        f"/v3/components/{i}/data" for i in range(54369, 54374)
    }


@pytest.mark.parametrize(
    ("change", "named"),
    [({"gran": "daily"}, "granularity"), ({"tz": "Europe/Berlin"}, "time zone"),
     ({"fields": ("W_avg",)}, "fields"), ({"format": "csv"}, "format")],
)  # fmt: skip
async def test_a_change_that_would_mix_rows_is_refused_saying_what_to_do(
    change: dict[str, Any], named: str, tmp_path: Path
) -> None:
    """Another granularity, zone, field set or format into a dataset: a UsageError naming
    it and pointing at another --out; nothing is written."""
    clock = SimClock(T0)
    sim = Simulator(clock=clock)
    out = tmp_path / "ds"
    await _run(sim, out, clock, _spec(components=(54369,), site_components=()))
    before = snapshot(out)
    with pytest.raises(UsageError, match=rf"its {named} is .*use another --out"):
        await _run(sim, out, clock, _spec(components=(54369,), site_components=(), **change))
    assert snapshot(out) == before


async def test_entities_are_asked_only_for_their_fields_and_unknown_ones_once(
    tmp_path: Path,
) -> None:
    """The weather station is asked for POA_avg only (the meter for W_avg, Wh_sum); an
    unknown component is named in the summary, its dataavailable asked once in all runs."""
    clock = SimClock(T0)
    sim = Simulator(clock=clock)
    out = tmp_path / "ds"
    spec = _spec(site_components=(), components=(54369, 54373, 99999))
    result = await _run(sim, out, clock, spec)
    assert not result.complete  # a new refusal
    asked = {w[0]: w[5] for w in sim.stats.data_windows}
    assert asked == {
        "/v3/components/54369/data": "W_avg,Wh_sum",
        "/v3/components/54373/data": "POA_avg",
    }
    ((kind, ident, reason),) = result.skipped_entities
    assert (kind, ident) == ("components", 99999)
    assert "404" in reason
    clock.advance(3600)
    second = await _run(sim, out, clock, None)
    assert second.complete
    assert second.skipped_entities == result.skipped_entities
    paths = [path for _, path, _ in sim.stats.log]
    assert paths.count("/v3/components/99999/dataavailable") == 1


async def test_plan_fetches_no_data_and_counts_what_a_run_would(tmp_path: Path) -> None:
    """plan() sends no data request, writes nothing, and its request count is what the
    run then sends."""
    clock = SimClock(T0)
    sim = Simulator(clock=clock, timeline=Timeline(lags={54370: 3600}))
    out = tmp_path / "ds"
    await _run(sim, out, clock, _spec())
    clock.advance(86_400)
    before = snapshot(out)
    sim.reset_stats()
    async with sim.client() as client:
        plan = await Backfill.sync(client, out, clock=clock).plan()
    assert sim.stats.data_windows == []
    assert snapshot(out) == before
    result = await _run(sim, out, clock, None)
    assert len(sim.stats.data_windows) == plan.requests
    assert plan.windows_provisional + plan.windows_new == plan.requests
    assert plan.windows_total == result.windows_total
    assert plan.estimated_seconds > 0


async def test_a_version_1_dataset_is_upgraded_and_its_recent_windows_refetched(
    tmp_path: Path,
) -> None:
    """A dataset of the first release (flat files in out, its checkpoint among them, its
    recent windows possibly frozen with future rows) is moved into partitions with its
    state beside it, its windows younger than max_lag fetched again, the rest kept; its
    temporaries go, a user's own file stays."""
    clock = SimClock(T0)
    sim = Simulator(clock=clock)
    out = tmp_path / "ds"
    spec = _spec(
        components=(54369,),
        site_components=(),
        start=datetime(2024, 4, 1, tzinfo=UTC),
        end=datetime(2024, 6, 11, tzinfo=UTC),
    )
    await _run(sim, out, clock, spec, compact=False)
    rows = _rows(out)
    body = checkpoint(out)
    v1 = {
        "version": 1, "state": "complete", "failed": [], "updated": body["updated"],
        "spec": {
            **body["dataset"], "start": body["range"]["starts"][0], "end": body["range"]["end"],
            **dict(body["entities"].items()),
        },
    }  # fmt: skip
    windows = to_legacy(out, v1)
    assert len(windows) == 3
    (out / ".tmp-notes.txt").write_text("a user's own file")  # not ours: kept
    (out / (".locus-tmp-" + "a" * 32 + "-" + windows[0])).write_bytes(b"half")  # ours: goes
    sim.reset_stats()
    result = await _run(sim, out, clock, spec)
    assert result.windows_refreshed == 1
    assert len(sim.stats.data_windows) == 1
    assert checkpoint(out)["version"] == 3
    assert (out / ".tmp-notes.txt").read_text() == "a user's own file"
    (out / ".tmp-notes.txt").unlink()
    assert sorted(p.name for p in out.iterdir()) == [
        "month=2024-04",
        "month=2024-05",
        "month=2024-06",
    ]
    assert _rows(out) == rows


async def test_a_sync_and_a_plan_cancelled_at_each_await_point_leave_it_resumable(
    tmp_path: Path,
) -> None:
    """A plan cancelled after 0, 1, 2, ... turns and a sync (dataavailable, lock,
    checkpoint, refetches, writes in threads, which take many turns) after 0, 29, 58, ...,
    until each finishes first: the lock is free, no temporary file is left, and the next
    sync brings the dataset to the server's data exactly."""
    from locus_async._shell.store import open_store
    from tests.reliability.test_cancel_paths import _stepping, _turns
    from tests.reliability.test_cancel_points import _cancel_after

    clock = SimClock(T0)
    sim = Simulator(clock=clock, timeline=Timeline(lags={54370: 3600}, upload_every=900))
    spec = _spec(site_components=(), components=(54369, 54370))
    base = tmp_path / "base"
    await _run(sim, base, clock, spec)
    clock.advance(3 * 3600)
    for name in ("plan", "run"):
        in_a_row = 0
        for ticks in _turns(1 if name == "plan" else 29):  # writes in threads: many turns
            out = tmp_path / f"{name}-{ticks}"
            copy_dataset(base, out)
            async with _stepping(sim) as client:
                job = Backfill.sync(client, out, clock=clock)
                done = await _cancel_after(ticks, getattr(job, name))
            with open_store(out).lock():  # free: the next run can take it at once
                pass
            assert not temporaries(out)
            assert checkpoint(out)["state"] != "running"
            await _run(sim, out, clock, None)
            assert _rows(out) == _truth(
                sim, [54369, 54370], clock(), datetime(2024, 8, 1, tzinfo=UTC)
            )
            remove_dataset(out)
            in_a_row = in_a_row + 1 if done else 0
            if in_a_row == 3:
                break
        assert ticks > (1 if name == "plan" else 5), name  # a plan sends no request


async def test_a_closed_backfill_synced_later_replaces_its_cut_last_window(tmp_path: Path) -> None:
    """A backfill with a fixed end, then sync: the last window (cut at that end) is replaced
    by the whole grid window holding it, its old piece removed, no row twice; a crash
    between writing the new piece and removing the old is repaired by the next run."""
    clock = SimClock(T0)
    sim = Simulator(clock=clock)
    out = tmp_path / "ds"
    spec = _spec(components=(54369,), site_components=(), end=datetime(2024, 6, 5, tzinfo=UTC))
    await _run(sim, out, clock, spec)
    (cut,) = data_names(out)
    assert cut == "month=2024-06/component-54369_20240601T000000Z_20240605T000000Z.parquet"
    await _run(sim, out, clock, None)
    names = data_names(out)
    whole = "component-54369_20240601T000000Z_20240701T230000Z.parquet"  # 31 days minus a bucket
    assert names == [f"month=2024-06/{whole}", f"month=2024-07/{whole}"]
    rows = _rows(out)
    assert len({(r[0], r[1]) for r in rows}) == len(rows)
    assert rows == _truth(sim, [54369], clock(), datetime(2024, 8, 1, tzinfo=UTC))
    (out / cut).write_bytes((out / names[0]).read_bytes())  # as if the removal never ran
    clock.advance(60)
    await _run(sim, out, clock, None)
    assert data_names(out) == names


async def test_a_compacted_cut_window_extended_later_is_replaced_inside_its_file(
    tmp_path: Path,
) -> None:
    """A closed backfill whose windows were compacted, then synced: the cut window's rows
    are replaced inside the compacted file (staged, then merged), never written beside it."""
    clock = SimClock(T0)
    sim = Simulator(clock=clock)
    out = tmp_path / "ds"
    spec = _spec(
        components=(54369, 54370), site_components=(), end=datetime(2024, 6, 5, tzinfo=UTC)
    )
    await _run(sim, out, clock, spec, max_lag="1h")  # final at once: compacted
    (part,) = data_names(out)
    assert part.startswith("month=2024-06/part-")
    result = await _run(sim, out, clock, None)
    assert result.partitions_compacted == 1
    again, *july = data_names(out)  # the grid window runs into July: empty pieces there
    assert again.startswith("month=2024-06/part-")
    assert again != part
    assert [name.split("_")[0] for name in july] == [
        "month=2024-07/component-54369",
        "month=2024-07/component-54370",
    ]
    rows = _rows(out)
    assert len({(r[0], r[1]) for r in rows}) == len(rows)
    assert rows == _truth(sim, [54369, 54370], clock(), datetime(2024, 8, 1, tzinfo=UTC))
    assert not (state_dir(out) / "staged").exists()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_asyncio_cancellations_of_a_sync_leave_it_resumable(tmp_path: Path) -> None:
    """``asyncio.timeout(0)``, a failing TaskGroup sibling, and ``task.cancel()`` after
    0..80 ticks of a sync: nothing is held, the lock is free, no temporary is left, and
    the next sync goes through at once to the server's data."""
    import asyncio

    from locus_async._shell.store import open_store
    from tests.reliability.test_cancel_paths import _idle, _stepping

    clock = SimClock(T0)
    sim = Simulator(clock=clock, timeline=Timeline(lags={54370: 3600}, upload_every=900))
    base = tmp_path / "base"
    await _run(sim, base, clock, _spec(site_components=(), components=(54369, 54370)))
    clock.advance(3 * 3600)

    async def fail() -> None:
        await asyncio.sleep(0)
        raise RuntimeError("sibling failed")

    def left_clean(out: Path) -> None:
        with open_store(out).lock():
            pass
        assert not temporaries(out)
        assert checkpoint(out)["state"] != "running"

    async def check(out: Path) -> None:
        left_clean(out)
        async with asyncio.timeout(60):  # a hang guard only
            assert (await _run(sim, out, clock, None)).complete
        truth = _truth(sim, [54369, 54370], clock(), datetime(2024, 8, 1, tzinfo=UTC))
        assert _rows(out) == truth

    cases = ["timeout", "sibling", *(f"tick-{t}" for t in range(0, 80, 4))]
    for case in cases:
        out = tmp_path / case
        copy_dataset(base, out)
        async with _stepping(sim) as client:
            job = Backfill.sync(client, out, clock=clock)
            if case == "timeout":
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0):
                        await job.run()
            elif case == "sibling":
                with pytest.raises(ExceptionGroup):  # noqa: PT012 - the group is the statement
                    async with asyncio.TaskGroup() as group:
                        group.create_task(job.run())
                        group.create_task(fail())
            else:
                task = asyncio.create_task(job.run())
                for _ in range(int(case.split("-")[1])):
                    await asyncio.sleep(0)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            _idle(client)
        await check(out)
