"""The per-minute model behind every simulated value, and exact aggregation over it.

Owns: minute values of every quantity of every component and site (deterministic in the
seed), and sum/max/min/count over any span of minutes. Must never: do I/O or read a clock.

Physics: clear-sky irradiance from the sun's elevation (site latitude, longitude and day of
year), times a per-minute cloud factor drawn from a per-site-day weather type (clear,
broken, overcast) with a smooth random walk. Inverter power follows irradiance times its
capacity; a meter reads the exact sum of its inverters; a site reads the sum of its meters.
Energy per minute is power / 60.

Exactness: every minute value is a multiple of 1/16, so float sums of any grouping of
minutes are exact (the totals stay far below 2**49): twelve 5-minute ``Wh_sum`` add up to
the hourly one bit for bit, and ``W_max`` of a day is the max of its hours.
"""

from __future__ import annotations

import math
import random
from array import array
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Final

from locus_async.simulator._fleet import ComponentSpec, Fleet, SiteSpec

__all__ = ["Aggregate", "Physics"]

MINUTES_PER_DAY: Final = 1440
_EPOCH: Final = date(1970, 1, 1)
_Q: Final = 16.0  # quantum: values are multiples of 1/16
_SQRT3: Final = math.sqrt(3.0)
#: A typical year's sky over clear sky (TMY3-like irradiance, expected insolation).
_TYPICAL_SKY: Final = 0.8
#: Plane-of-array over horizontal irradiance for a tilted array near noon.
_TILT_GAIN: Final = 1.15
_DERIVED_FROM_POWER: Final = frozenset({"PF", "VA", "VAR", "WphA", "WphB", "WphC"})

Aggregate = tuple[float, float, float, int]  # sum, max, min, count


def _quantize(value: float) -> float:
    return round(value * _Q) / _Q


def epoch_day(day: date) -> int:
    return (day - _EPOCH).days


def day_of(index: int) -> date:
    return _EPOCH + timedelta(days=index)


class _LRU(OrderedDict[tuple[object, ...], "array[float]"]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def fetch(self, key: tuple[object, ...], make: Callable[[], array[float]]) -> array[float]:
        found = self.get(key)
        if found is not None:
            self.move_to_end(key)
            return found
        value = make()
        self[key] = value
        if len(self) > self.size:
            self.popitem(last=False)
        return value


class Physics:
    """Minute values and aggregates for a fleet. Caches days it has computed."""

    def __init__(self, fleet: Fleet, *, seed: int = 7, cache_days: int = 4096) -> None:
        self.fleet = fleet
        self.seed = seed
        self._arrays = _LRU(cache_days)
        self._day_aggregates: dict[tuple[object, ...], Aggregate] = {}
        self._cos_hour: dict[int, list[float]] = {}

    # -- irradiance -------------------------------------------------------------------

    def _hour_angle_cosines(self, site: SiteSpec) -> list[float]:
        table = self._cos_hour.get(site.id)
        if table is None:
            shift = site.longitude / 15.0
            table = [
                math.cos(math.radians(((m / 60.0 + shift) % 24.0 - 12.0) * 15.0))
                for m in range(MINUTES_PER_DAY)
            ]
            self._cos_hour[site.id] = table
        return table

    def _clear_sky(self, site: SiteSpec, day: int) -> array[float]:
        """Clear-sky global horizontal irradiance (W/m2) per UTC minute of ``day``."""

        def make() -> array[float]:
            doy = day_of(day).timetuple().tm_yday
            decl = math.radians(23.44) * math.sin(2 * math.pi * (284 + doy) / 365.0)
            lat = math.radians(site.latitude)
            a = math.sin(lat) * math.sin(decl)
            b = math.cos(lat) * math.cos(decl)
            return array(
                "d",
                [
                    1050.0 * s**1.15 if (s := a + b * c) > 0.0 else 0.0
                    for c in self._hour_angle_cosines(site)
                ],
            )

        return self._arrays.fetch(("clear", site.id, day), make)

    def _cloud(self, site: SiteSpec, day: int) -> array[float]:
        def make() -> array[float]:
            rng = random.Random((self.seed * 1_000_003 + site.id) * 1_000_003 + day)
            kind = rng.random()
            base = 0.98 if kind < 0.45 else (0.72 if kind < 0.8 else 0.32)
            spread = 0.004 if kind < 0.45 else (0.05 if kind < 0.8 else 0.03)
            # A random walk in 5-minute steps (clouds drift; minutes within a step share it).
            level = base
            knots: list[float] = []
            uniform = rng.random
            for _ in range(MINUTES_PER_DAY // 5):
                level += (base - level) * 0.3 + (uniform() - 0.5) * 3.4 * spread
                level = 0.08 if level < 0.08 else (1.05 if level > 1.05 else level)
                knots.append(level)
            return array("d", [k for k in knots for _ in range(5)])

        return self._arrays.fetch(("cloud", site.id, day), make)

    def _ghi(self, site: SiteSpec, day: int) -> array[float]:
        def make() -> array[float]:
            clear, cloud = self._clear_sky(site, day), self._cloud(site, day)
            return array("d", [c * k for c, k in zip(clear, cloud, strict=True)])

        return self._arrays.fetch(("ghi", site.id, day), make)

    def _site_wave(self, site: SiteSpec, day: int, name: str) -> array[float]:
        """Grid voltage, frequency and ambient temperature of a site, per minute."""

        def make() -> array[float]:
            rng = random.Random((self.seed * 7_919 + site.id) * 104_729 + day * 31 + len(name))
            europe_asia = site.country_code not in ("US",)
            if name == "PhV":
                nominal = 230.0 if europe_asia else 240.0
                return array(
                    "d",
                    [
                        _quantize(nominal + 2.5 * math.sin(m / 229.0) + rng.uniform(-0.6, 0.6))
                        for m in range(MINUTES_PER_DAY)
                    ],
                )
            if name == "Hz":
                nominal = 50.0 if europe_asia else 60.0
                return array(
                    "d",
                    [
                        round((nominal + rng.uniform(-0.03, 0.03)) * 1024) / 1024
                        for m in range(MINUTES_PER_DAY)
                    ],
                )
            doy = day_of(day).timetuple().tm_yday
            season = math.cos(2 * math.pi * (doy - 200) / 365.0) * (1 if site.latitude >= 0 else -1)
            mean = 16.0 - abs(site.latitude) / 6.0 + 9.0 * season
            shift = site.longitude / 15.0
            return array(
                "d",
                [
                    _quantize(
                        mean
                        + 6.0 * math.sin(2 * math.pi * ((m / 60.0 + shift) % 24.0 - 9.0) / 24.0)
                        + rng.uniform(-0.3, 0.3)
                    )
                    for m in range(MINUTES_PER_DAY)
                ],
            )

        return self._arrays.fetch((name, site.id, day), make)

    # -- component and site quantities ------------------------------------------------

    def component_minutes(self, component_id: int, base: str, day: int) -> array[float]:
        """Minute values of one base field of a component over UTC day ``day``."""
        located = self.fleet.components[component_id]
        return self._arrays.fetch(
            ("c", component_id, base, day),
            lambda: self._make_component(located.component, located.site, base, day),
        )

    def _make_component(
        self, component: ComponentSpec, site: SiteSpec, base: str, day: int
    ) -> array[float]:
        kind = component.node_type
        if kind == "WEATHERSTATION":
            if base == "POA":
                return array("d", [round(g * 17.92) / _Q for g in self._ghi(site, day)])
            if base == "POAh":
                return array("d", [round(g * 17.92 / 60.0) / _Q for g in self._ghi(site, day)])
            return self._site_wave(site, day, "TmpAmb")
        if base in ("PhV", "Hz"):
            return self._site_wave(site, day, base)
        if base == "PPV":  # line to line: sqrt(3) times line to neutral
            volts = self._site_wave(site, day, "PhV")
            return array("d", [round(v * _SQRT3 * _Q) / _Q for v in volts])
        if base in _DERIVED_FROM_POWER:
            return self._from_power(component, base, day)
        if base in ("W", "Wh") and component.parent_id is not None:
            parent = self.fleet.components[component.parent_id].component
            if parent.node_type == "METER":
                return self._share_of_meter(component, parent, base, day)
        if base == "W":
            capacity = component.capacity_w
            if kind == "METER":
                capacity = sum(c.capacity_w for c in self.fleet.children(component.id)) or capacity
            scale = capacity / 1000.0 * 0.96 * _Q
            return array("d", [round(g * scale) / _Q if g else 0.0 for g in self._ghi(site, day)])
        if base == "Wh":
            power = self.component_minutes(component.id, "W", day)
            return array("d", [round(w * (_Q / 60.0)) / _Q if w else 0.0 for w in power])
        if base == "A":
            power = self.component_minutes(component.id, "W", day)
            volts = self._site_wave(site, day, "PhV")
            return array("d", [round(w / v * _Q) / _Q for w, v in zip(power, volts, strict=True)])
        raise KeyError(base)

    def _share_of_meter(
        self, component: ComponentSpec, meter: ComponentSpec, base: str, day: int
    ) -> array[float]:
        """An inverter's part of its meter's reading: the meter is exactly their sum.

        Every inverter but the last gets its capacity share rounded down to the quantum; the
        last gets what remains, so the parts add up to the meter bit for bit (and none is
        negative).
        """
        siblings = self.fleet.children(meter.id)
        total = self.component_minutes(meter.id, base, day)
        if component.id == siblings[-1].id:
            others = [self.component_minutes(s.id, base, day) for s in siblings[:-1]]
            if not others:
                return total
            return array("d", [t - sum(parts) for t, *parts in zip(total, *others, strict=True)])
        share = component.capacity_w / sum(s.capacity_w for s in siblings) * _Q
        return array("d", [int(t * share) / _Q for t in total])

    def _capacity(self, component: ComponentSpec) -> float:
        if component.node_type == "METER":
            return (
                sum(c.capacity_w for c in self.fleet.children(component.id)) or component.capacity_w
            )
        return component.capacity_w

    def _from_power(self, component: ComponentSpec, base: str, day: int) -> array[float]:
        """Power factor, apparent and reactive power, and the three phases, from ``W``.

        The power factor rises with load (multiples of 1/1024, so sums stay exact); the
        phases split the power in thirds of the quantum, the last phase taking what is
        left, so ``WphA + WphB + WphC == W`` bit for bit.
        """
        power = self.component_minutes(component.id, "W", day)
        if base == "PF":
            capacity = self._capacity(component) or 1.0
            return array(
                "d",
                [
                    round((0.95 + 0.045 * min(1.0, w / capacity)) * 1024) / 1024 if w else 1.0
                    for w in power
                ],
            )
        if base in ("VA", "VAR"):
            factors = self.component_minutes(component.id, "PF", day)
            apparent = [round(w / f * _Q) / _Q for w, f in zip(power, factors, strict=True)]
            if base == "VA":
                return array("d", apparent)
            return array(
                "d",
                [
                    round(math.sqrt(max(0.0, va * va - w * w)) * _Q) / _Q
                    for va, w in zip(apparent, power, strict=True)
                ],
            )
        quanta = [round(w * _Q) for w in power]
        if base in ("WphA", "WphB"):
            return array("d", [(n // 3) / _Q for n in quanta])
        return array("d", [(n - 2 * (n // 3)) / _Q for n in quanta])

    def modelled_key(self, site_id: int, base: str, params: dict[str, str]) -> str:
        """The minute source name of a modelled field with its parameters (``W_m`` and
        ``Wh_m`` take the PV model's; other fields none)."""
        if base not in ("W_m", "Wh_m"):
            return base
        source = params.get("irradianceSource", "weatherStation")
        return f"{base}:{source}:{params.get('inverterClipping', 'false')}"

    def _model(self, site: SiteSpec, key: str, day: int) -> array[float]:
        """The simple (PVWatts-like) model: irradiance on the tilted array (horizontal
        times a tilt gain) times the site's size (DC) and a derate, clipped at the
        inverters' rating when asked. Irradiance from the site's weather station (the
        measured GHI) or typical-year clear sky (TMY3)."""
        base, source, clip = key.split(":")
        if base == "Wh_m":
            power = self.site_minutes(site.id, f"W_m:{source}:{clip}", day)
            return array("d", [round(w * (_Q / 60.0)) / _Q for w in power])
        if source == "weatherStation":
            irradiance: Sequence[float] = self._ghi(site, day)
        else:
            irradiance = [g * _TYPICAL_SKY for g in self._clear_sky(site, day)]
        scale = site.size_kw * _TILT_GAIN * 0.82 * _Q
        limit = math.inf
        if clip == "true":
            inverters = [c for c in site.components if c.node_type == "INVERTER"]
            limit = sum(c.capacity_w for c in inverters) or site.size_kw * 1000.0
        return array("d", [min(round(g * scale) / _Q, limit) for g in irradiance])

    def site_minutes(self, site_id: int, base: str, day: int) -> array[float]:
        """Minute values of a site-level base field (its meters added up, or modelled)."""
        site = self.fleet.sites[site_id][0]

        def make() -> array[float]:
            if base == "Wh_e":
                scale = site.size_kw * 0.82 * 0.96 * 0.95 / 60.0 * _Q
                return array("d", [round(g * scale) / _Q for g in self._clear_sky(site, day)])
            if base.startswith(("W_m:", "Wh_m:")):
                return self._model(site, base, day)
            if base == "GHI_m":
                return array("d", [round(g * _Q) / _Q for g in self._ghi(site, day)])
            if base == "GHIh_m":
                return self.insolation_minutes(site_id, day)
            if base == "GHIh_t":  # the typical year's insolation: expected irradiance
                clear = self._clear_sky(site, day)
                return array("d", [round(g * _TYPICAL_SKY * (_Q / 60.0)) / _Q for g in clear])
            meters = self.fleet.meters(site_id)
            return _add([self.component_minutes(m.id, base, day) for m in meters])

        return self._arrays.fetch(("s", site_id, base, day), make)

    def insolation_minutes(self, site_id: int, day: int) -> array[float]:
        """Modelled global horizontal insolation (Wh/m2) per minute, for bulk data."""
        site = self.fleet.sites[site_id][0]
        return self._arrays.fetch(
            ("ghih", site_id, day),
            lambda: array("d", [round(g * (_Q / 60.0)) / _Q for g in self._ghi(site, day)]),
        )

    def span(self, minutes: Callable[[int], array[float]], start: int, end: int) -> array[float]:
        """Minute values over epoch minutes ``[start, end)`` as one contiguous array."""
        out: array[float] = array("d")
        for day in range(start // MINUTES_PER_DAY, (end - 1) // MINUTES_PER_DAY + 1):
            base = day * MINUTES_PER_DAY
            values = minutes(day)
            lo, hi = max(start, base) - base, min(end, base + MINUTES_PER_DAY) - base
            out.extend(values if (lo, hi) == (0, MINUTES_PER_DAY) else values[lo:hi])
        return out

    # -- aggregation --------------------------------------------------------------------

    def aggregate(
        self,
        minutes: Callable[[int], array[float]],
        key: tuple[object, ...] | Callable[[int], tuple[object, ...]],
        start: int,
        end: int,
    ) -> Aggregate | None:
        """sum/max/min/count over epoch minutes ``[start, end)``; None when empty."""
        if start >= end:
            return None
        total = 0.0
        high = -math.inf
        low = math.inf
        count = 0
        first_day, last_day = start // MINUTES_PER_DAY, (end - 1) // MINUTES_PER_DAY
        for day in range(first_day, last_day + 1):
            base = day * MINUTES_PER_DAY
            lo = max(start, base) - base
            hi = min(end, base + MINUTES_PER_DAY) - base
            if lo == 0 and hi == MINUTES_PER_DAY:
                day_key = key(day) if callable(key) else (*key, day)
                cached = self._day_aggregates.get(day_key)
                if cached is None:
                    values = minutes(day)
                    cached = (sum(values), max(values), min(values), MINUTES_PER_DAY)
                    self._day_aggregates[day_key] = cached
                part_sum, part_max, part_min, part_count = cached
            else:
                values = minutes(day)
                if hi - lo == 1:
                    value = values[lo]
                    part_sum = part_max = part_min = value
                else:
                    segment = values[lo:hi]
                    part_sum, part_max, part_min = sum(segment), max(segment), min(segment)
                part_count = hi - lo
            total += part_sum
            high = part_max if part_max > high else high
            low = part_min if part_min < low else low
            count += part_count
        return total, high, low, count


def _add(arrays: Sequence[array[float]]) -> array[float]:
    if not arrays:
        return array("d", bytes(8 * MINUTES_PER_DAY))
    if len(arrays) == 1:
        return arrays[0]
    return array("d", [sum(values) for values in zip(*arrays, strict=True)])
