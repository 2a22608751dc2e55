"""The simulator's physics gives the same values bit for bit with numpy and in pure Python,
draws its random numbers by counter, and falls back to pure Python without numpy."""

from __future__ import annotations

import sys
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from locus_async.simulator import Simulator
from locus_async.simulator._arrays import (
    MASK64,
    NumpyBackend,
    PureBackend,
    best_backend,
    uniforms_of,
)
from locus_async.simulator._fleet import Fleet
from locus_async.simulator._physics import Physics, epoch_day

# Days across a year end, a leap day, both DST changes and both sides of a 32-day block.
DAYS = sorted(
    {
        epoch_day(datetime(2023, 12, 31).date()),
        epoch_day(datetime(2024, 2, 29).date()),
        epoch_day(datetime(2024, 3, 10).date()),
        epoch_day(datetime(2024, 11, 3).date()),
        *(32 * 617 - 1, 32 * 617),
    }
)
MODEL = {"irradianceSource": "TMY3", "inverterClipping": "true"}


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return Simulator().core.fleet


@pytest.fixture(scope="module")
def physics(fleet: Fleet) -> tuple[Physics, Physics]:
    return Physics(fleet, backend="numpy"), Physics(fleet, backend="pure")


def test_every_component_quantity_is_the_same_with_numpy_and_pure_python(
    fleet: Fleet, physics: tuple[Physics, Physics]
) -> None:
    """Each node type's every base field with aggregations, on days that cross a year, a
    leap day, DST and a block edge, is equal value for value in both backends."""
    fast, pure = physics
    kinds: dict[str, int] = {}
    for cid, located in fleet.components.items():
        kinds.setdefault(located.component.node_type, cid)
    assert {"INVERTER", "METER", "WEATHERSTATION"} <= set(kinds)
    compared = 0
    for cid in kinds.values():
        for quantity in fleet.component_quantities(cid):
            if not quantity.aggregations:
                continue
            for day in DAYS:
                numpy_values = fast.component_minutes(cid, quantity.base_field, day).tolist()
                pure_values = list(pure.component_minutes(cid, quantity.base_field, day))
                assert numpy_values == pure_values, (cid, quantity.base_field, day)
                compared += 1
    assert compared >= 20 * len(DAYS)


def test_every_site_quantity_and_the_pv_model_are_the_same_in_both_backends(
    fleet: Fleet, physics: tuple[Physics, Physics]
) -> None:
    """Site sums, expected energy, modelled irradiance and the PV model (both irradiance
    sources, clipped and not) agree bit for bit."""
    fast, pure = physics
    site_id = next(sid for sid, (site, *_) in fleet.sites.items() if len(site.components) > 2)
    bases = ["W", "Wh", "Wh_e", "GHI_m", "GHIh_m", "GHIh_t"]
    for params in ({}, MODEL, {"irradianceSource": "weatherStation"}):
        bases += [
            fast.modelled_key(site_id, "W_m", params),
            fast.modelled_key(site_id, "Wh_m", params),
        ]
    for base in bases:
        for day in DAYS:
            numpy_values = fast.site_minutes(site_id, base, day).tolist()
            assert numpy_values == list(pure.site_minutes(site_id, base, day)), (base, day)
    assert max(fast.site_minutes(site_id, "W", DAYS[-1]).tolist()) > 0.0


def test_a_site_is_the_exact_sum_of_its_meters_and_a_meter_of_its_inverters(
    fleet: Fleet, physics: tuple[Physics, Physics]
) -> None:
    """The sums the fleet promises hold minute by minute, in the numpy backend."""
    fast, _ = physics
    day = DAYS[-1]
    for meter_id in [
        c for c, loc in fleet.components.items() if loc.component.node_type == "METER"
    ]:
        children = fleet.children(meter_id)
        if not children:
            continue
        meter = fast.component_minutes(meter_id, "W", day).tolist()
        parts = [fast.component_minutes(c.id, "W", day).tolist() for c in children]
        assert [sum(values) for values in zip(*parts, strict=True)] == meter
        assert all(v >= 0.0 for part in parts for v in part)


def test_a_whole_request_is_answered_the_same_by_both_backends() -> None:
    """The ground truth of daily, hourly and 1min windows (means, maxima, sums) is equal
    row for row whichever backend computed it."""
    answers = []
    for name in ("numpy", "pure"):
        sim = Simulator()
        sim.core.physics = Physics(sim.core.fleet, backend=name)
        answers.append(
            [
                sim.ground_truth(
                    "components",
                    54369,
                    fields=["W_avg", "W_max", "Wh_sum", "PF_min"],
                    start=datetime(2024, 3, 8),
                    end=datetime(2024, 3, 12),
                    tz="America/Los_Angeles",
                    gran=gran,
                )
                for gran in ("1min", "hourly", "daily")
            ]
        )
    assert answers[0] == answers[1]
    assert len(answers[0][0]) == 4 * 1440 - 60  # the spring-forward hour does not exist
    assert sum(row["Wh_sum"] for row in answers[0][2]) == sum(
        row["Wh_sum"] for row in answers[0][1]
    )


@settings(max_examples=200, deadline=None)
@given(key=st.integers(min_value=0, max_value=MASK64), count=st.integers(1, 40))
def test_the_random_numbers_are_the_same_in_both_backends(key: int, count: int) -> None:
    """SplitMix64 by counter: numpy's uint64 arithmetic draws what Python's integers draw,
    every number in [0, 1)."""
    fast = NumpyBackend().uniforms([key, key ^ 1], count)
    assert fast[0].tolist() == uniforms_of(key, count)
    assert fast[1].tolist() == uniforms_of(key ^ 1, count)
    assert PureBackend().uniforms([key], count).v == uniforms_of(key, count)
    assert all(0.0 <= u < 1.0 for u in uniforms_of(key, count))


def test_any_day_is_drawn_without_the_days_before_it(fleet: Fleet) -> None:
    """A day computed alone, in a fresh simulator, equals the same day computed after a
    year of others: nothing depends on what was asked before."""
    meter = next(c for c, loc in fleet.components.items() if loc.component.node_type == "METER")
    day = DAYS[-1]
    alone = Physics(fleet).component_minutes(meter, "Wh", day).tolist()
    busy = Physics(fleet)
    for other in range(day - 400, day, 7):
        busy.component_minutes(meter, "Wh", other)
    assert busy.component_minutes(meter, "Wh", day).tolist() == alone


def _two_days_of_a_site(sim: Simulator) -> list[dict[str, object]]:
    return sim.ground_truth(
        "sites",
        3393714,
        fields=["W_avg", "Wh_sum"],
        start=datetime(2024, 6, 1),
        end=datetime(2024, 6, 3),
        tz="America/Los_Angeles",
        gran="hourly",
    )


def test_without_numpy_the_simulator_falls_back_to_pure_python(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A light install (no numpy) gets the pure backend and the same answers."""
    with_numpy = _two_days_of_a_site(Simulator())
    monkeypatch.setitem(sys.modules, "numpy", None)
    assert best_backend().name == "pure"
    sim = Simulator()
    assert sim.core.physics.xp.name == "pure"
    without = _two_days_of_a_site(sim)
    assert without == with_numpy
    assert any(row["Wh_sum"] for row in without)


def test_an_unknown_backend_is_refused_in_one_line() -> None:
    """A misspelt backend name says which ones exist."""
    with pytest.raises(ValueError, match=r"^unknown array backend 'cupy': auto, numpy or pure$"):
        best_backend("cupy")
