"""The simulator's time model: upload lag, revisions, commissioning, a movable clock."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from locus_async.simulator import SimClock, Simulator, Timeline

T0 = datetime(2024, 6, 10, 20, tzinfo=UTC).timestamp()  # midday in California
DAY = {"start": datetime(2024, 6, 10, 0, tzinfo=UTC), "end": datetime(2024, 6, 11, tzinfo=UTC)}


def _valued(sim: Simulator, component: int, as_of: float | None = None) -> list[datetime]:
    rows = sim.ground_truth(
        "components", component, fields=["W_avg"], tz="UTC", gran="hourly", as_of=as_of, **DAY
    )
    return [r["ts"] for r in rows if r["W_avg"] is not None]


def test_the_clock_moves_only_forward_by_hand() -> None:
    """SimClock is a callable clock; advance and set move it, never back."""
    clock = SimClock(100.0)
    assert clock() == 100.0
    assert clock.advance(50) == 150.0
    clock.set(200)
    assert clock() == 200.0
    with pytest.raises(ValueError, match="forward"):
        clock.set(10)


def test_each_component_has_its_own_frontier() -> None:
    """A lagging component's data stops hours earlier; one that never reports has none;
    the rest reach the last whole upload batch."""
    timeline = Timeline(lags={54370: 3 * 3600, 54371: math.inf}, upload_every=900)
    sim = Simulator(clock=SimClock(T0), timeline=timeline)
    assert _valued(sim, 54369)[-1] == datetime(2024, 6, 10, 19, tzinfo=UTC)
    assert _valued(sim, 54370)[-1] == datetime(2024, 6, 10, 16, tzinfo=UTC)
    assert _valued(sim, 54371) == []


def test_ground_truth_as_of_any_moment() -> None:
    """as_of answers with the data the server had then (and the clock stays put)."""
    clock = SimClock(T0)
    sim = Simulator(clock=clock, timeline=Timeline(lags={54370: 3 * 3600}))
    earlier = _valued(sim, 54370, as_of=T0 - 2 * 3600)
    assert earlier[-1] == datetime(2024, 6, 10, 14, tzinfo=UTC)
    assert clock() == T0
    assert _valued(sim, 54370, as_of=datetime.fromtimestamp(T0, UTC))[-1].hour == 16


def test_revised_hours_first_arrive_short_then_final() -> None:
    """A revised hour reads revision_scale of its final value until revision_delay after
    its upload; then the value is the same as without revisions."""
    plain = Simulator(clock=SimClock(T0 + 86_400))
    timeline = Timeline(revision_share=0.5, revision_delay=6 * 3600, seed=3)
    revised = Simulator(clock=SimClock(T0 + 86_400), timeline=timeline)
    kwargs = {"fields": ["W_avg"], "tz": "UTC", "gran": "hourly", **DAY}
    final = plain.ground_truth("components", 54369, **kwargs)
    early = revised.ground_truth("components", 54369, as_of=T0, **kwargs)
    late = revised.ground_truth("components", 54369, **kwargs)
    assert late == final
    changed = [
        (a["W_avg"], b["W_avg"])
        for a, b in zip(early, final, strict=True)
        if a["W_avg"] is not None and a["W_avg"] != b["W_avg"]
    ]
    assert changed
    assert all(a == pytest.approx(b * 0.9) for a, b in changed)


def test_a_component_commissioned_later_is_unlisted_and_empty_before() -> None:
    """Before its moment the component is not listed and answers 404; after, it is listed
    and has data from that moment only."""
    clock = SimClock(T0)
    sim = Simulator(clock=clock, timeline=Timeline(appears={54372: T0 + 3600}))
    ids = [c["id"] for c in sim.core._partners_components(111, {}, None)["components"]]  # type: ignore[arg-type]
    assert 54372 not in ids
    assert not sim.core.listed(54372)
    clock.advance(4 * 3600)
    ids = [c["id"] for c in sim.core._partners_components(111, {}, None)["components"]]  # type: ignore[arg-type]
    assert 54372 in ids
    valued = _valued(sim, 54372)
    assert valued[0] == datetime(2024, 6, 10, 21, tzinfo=UTC)


def test_the_documented_example_mix() -> None:
    """Timeline.example: every fifth 3 h behind, every seventh 2 days, the last silent,
    the second to last commissioned 3 days in, 5 % of hours revised."""
    ids = list(range(1, 15))
    timeline = Timeline.example(ids, start=T0)
    assert timeline.lag(5) == 3 * 3600
    assert timeline.lag(7) == 2 * 86_400
    assert timeline.lag(14) == math.inf
    assert timeline.lag(1) == 600
    assert timeline.appears == {13: T0 + 3 * 86_400}
    assert timeline.revision_share == 0.05
