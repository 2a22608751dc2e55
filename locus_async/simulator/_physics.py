"""The per-minute model behind every simulated value, and exact aggregation over it.

Owns: minute values of every quantity of every component and site (deterministic in the
seed), spans of them and their reduction into buckets. Must never: do I/O or read a clock.

Physics: clear-sky irradiance from the sun's elevation (site latitude, longitude and day of
year), times a per-minute cloud factor drawn from a per-site-day weather type (clear,
broken, overcast) with drifting clouds (a moving sum of random steps, 5-minute knots).
Inverter power follows irradiance times its capacity; a meter reads the exact sum of its
inverters; a site reads the sum of its meters. Energy per minute is power / 60. Random
numbers are counter-based (SplitMix64 of seed, site, day and stream), so any day is drawn
without the days before it.

Speed: the model is written once against an array backend (:mod:`._arrays`): numpy, when
installed, computes 32 days of a quantity at once (a year of a meter's power and energy in a
few milliseconds); pure Python computes one day at a time. Both give the same values bit for
bit (see :mod:`._arrays` for why).

Exactness: every minute value is a multiple of 1/16 (power factor and frequency: 1/1024),
so float sums of any grouping of minutes are exact (the totals stay far below 2**49):
twelve 5-minute ``Wh_sum`` add up to the hourly one bit for bit, and ``W_max`` of a day is
the max of its hours.
"""

from __future__ import annotations

import calendar
import math
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from datetime import date, timedelta
from typing import Any, Final

from locus_async.simulator._arrays import Backend, Values, best_backend, splitmix
from locus_async.simulator._fleet import ComponentSpec, Fleet, SiteSpec

__all__ = ["Physics"]

MINUTES_PER_DAY: Final = 1440
_EPOCH: Final = date(1970, 1, 1)
_Q: Final = 16.0  # quantum: values are multiples of 1/16
_SQRT3: Final = math.sqrt(3.0)
#: A typical year's sky over clear sky (TMY3-like irradiance, expected insolation).
_TYPICAL_SKY: Final = 0.8
#: Plane-of-array over horizontal irradiance for a tilted array near noon.
_TILT_GAIN: Final = 1.15
_DERIVED_FROM_POWER: Final = frozenset({"PF", "VA", "VAR", "WphA", "WphB", "WphC"})
#: Clouds drift in 5-minute knots: each knot sums this many random steps.
_KNOTS: Final = MINUTES_PER_DAY // 5
_DRIFT: Final = 8
#: Blocks of model inputs kept (a few per site, so the meters and inverters of one site
#: computed one after the other share them).
_INPUT_BLOCKS: Final = 12
#: The random streams, one per kind of draw.
_STREAMS: Final = {"cloud": 1, "PhV": 2, "Hz": 3, "TmpAmb": 4}

#: The minute values of one quantity by block of days (``Physics.chunk`` days each).
Blocks = Callable[[int], Values]


#: Sine and cosine of the sun's declination, by day of the year (1-366).
_DECLINATION: Final = [
    (math.sin(decl), math.cos(decl))
    for decl in (
        math.radians(23.44) * math.sin(2 * math.pi * (284 + doy) / 365.0) for doy in range(367)
    )
]
#: How far into summer (1) or winter (-1) the northern hemisphere is, by day of the year.
_SEASON: Final = [math.cos(2 * math.pi * (doy - 200) / 365.0) for doy in range(367)]


def _days_of_year(days: range) -> list[int]:
    """The day of the year (1-366) of each of consecutive epoch days ``days``."""
    out: list[int] = []
    day = days.start
    while day < days.stop:
        when = day_of(day)
        length = 366 if calendar.isleap(when.year) else 365
        first = when.timetuple().tm_yday
        take = min(days.stop - day, length - first + 1)
        out.extend(range(first, first + take))
        day += take
    return out


def epoch_day(day: date) -> int:
    return (day - _EPOCH).days


def day_of(index: int) -> date:
    return _EPOCH + timedelta(days=index)


class _LRU(OrderedDict[tuple[object, ...], Values]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def fetch(self, key: tuple[object, ...], make: Callable[[], Values]) -> Values:
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
    """Minute values and their aggregates for a fleet. Caches the blocks of days it has
    computed (``cache_days`` days of quantities in all; default: the backend's);
    ``backend``: ``auto`` (numpy when installed), ``numpy`` or ``pure``."""

    def __init__(
        self,
        fleet: Fleet,
        *,
        seed: int = 7,
        cache_days: int | None = None,
        backend: str = "auto",
    ) -> None:
        self.fleet = fleet
        self.seed = seed
        self.xp: Backend = best_backend(backend)
        #: Days per block: a block is computed (and cached) at once.
        self.chunk = self.xp.chunk
        # numpy recomputes a block faster than fresh memory for it is mapped, so it keeps
        # few (and reuses their memory); pure Python keeps more.
        days = cache_days if cache_days is not None else self.xp.cache_days
        self._blocks = _LRU(max(1, days // self.chunk))
        #: Irradiance, clouds and grid waves: kept only while the quantities of the same
        #: blocks are computed (memory a cold request need not touch).
        self._inputs = _LRU(_INPUT_BLOCKS)
        self._tables: dict[tuple[object, ...], Values] = {}

    # -- blocks of days ---------------------------------------------------------------

    def _block(
        self,
        key: tuple[object, ...],
        block: int,
        make: Callable[[range], Values],
        *,
        input_only: bool = False,
    ) -> Values:
        """Block ``block`` (days ``[block * chunk, (block + 1) * chunk)``) of a quantity."""
        first = block * self.chunk
        cache = self._inputs if input_only else self._blocks
        return cache.fetch((*key, block), lambda: make(range(first, first + self.chunk)))

    def _table(self, key: tuple[object, ...], make: Callable[[], list[float]]) -> Values:
        table = self._tables.get(key)
        if table is None:
            table = self._tables[key] = self.xp.table(make())
        return table

    def _keys(self, stream: str, site: SiteSpec, days: range) -> list[int]:
        head = splitmix(splitmix(self.seed * 0x100000001B3 + _STREAMS[stream]) + site.id)
        return [splitmix(head + day) for day in days]

    # -- irradiance -------------------------------------------------------------------

    def _hour_angle_cosines(self, site: SiteSpec) -> Values:
        shift = site.longitude / 15.0
        return self._table(
            ("cos", site.id),
            lambda: [
                math.cos(math.radians(((m / 60.0 + shift) % 24.0 - 12.0) * 15.0))
                for m in range(MINUTES_PER_DAY)
            ],
        )

    def _clear_sky(self, site: SiteSpec, block: int) -> Values:
        """Clear-sky global horizontal irradiance (W/m2) per UTC minute."""
        xp = self.xp

        def make(days: range) -> Values:
            lat = math.radians(site.latitude)
            sin_lat, cos_lat = math.sin(lat), math.cos(lat)
            doys = _days_of_year(days)
            constant = [sin_lat * _DECLINATION[doy][0] for doy in doys]
            factor = [cos_lat * _DECLINATION[doy][1] for doy in doys]
            # The sine of the sun's elevation; irradiance grows a little faster than it.
            # (In-place steps: numpy reuses its arrays; the pure backend makes new ones,
            # with the same operations in the same order.)
            s = xp.column(factor) * self._hour_angle_cosines(site)
            s += xp.column(constant)
            irradiance = s * 0.15
            irradiance += 0.85
            irradiance *= s
            irradiance *= 1050.0
            return xp.positive(irradiance)  # night is 0.0

        return self._block(("clear", site.id), block, make, input_only=True)

    def _cloud(self, site: SiteSpec, block: int) -> Values:
        xp = self.xp

        def make(days: range) -> Values:
            draws = xp.uniforms(self._keys("cloud", site, days), 1 + _KNOTS + _DRIFT - 1)
            kind = xp.take(draws, 0)
            base = xp.where(kind < 0.45, 0.98, xp.where(kind < 0.8, 0.72, 0.32))
            spread = xp.where(kind < 0.45, 0.004, xp.where(kind < 0.8, 0.05, 0.03))
            drift = xp.window(draws, 1, _KNOTS) + xp.window(draws, 2, _KNOTS)
            for lag in range(2, _DRIFT):
                drift += xp.window(draws, 1 + lag, _KNOTS)
            drift -= 0.5 * _DRIFT  # centred: a sum of _DRIFT steps of [-0.5, 0.5)
            drift *= spread * 1.6
            drift += base
            return xp.clip(drift, 0.08, 1.05)  # per 5-minute knot

        return self._block(("cloud", site.id), block, make, input_only=True)

    def _ghi(self, site: SiteSpec, block: int) -> Values:
        xp = self.xp
        return self._block(
            ("ghi", site.id),
            block,
            lambda _: xp.times_knots(self._clear_sky(site, block), self._cloud(site, block)),
            input_only=True,
        )

    def _site_wave(self, site: SiteSpec, block: int, name: str) -> Values:
        """Grid voltage, frequency and ambient temperature of a site, per minute."""
        xp = self.xp

        def make(days: range) -> Values:
            noise = xp.uniforms(self._keys(name, site, days), MINUTES_PER_DAY)
            europe_asia = site.country_code not in ("US",)
            if name == "PhV":
                nominal = 230.0 if europe_asia else 240.0
                swing = self._table(
                    ("swing",), lambda: [math.sin(m / 229.0) for m in range(MINUTES_PER_DAY)]
                )
                return xp.quantized(nominal + 2.5 * swing + (noise * 1.2 - 0.6), _Q, _Q)
            if name == "Hz":
                nominal = 50.0 if europe_asia else 60.0
                return xp.quantized(nominal + (noise * 0.06 - 0.03), 1024.0, 1024.0)
            hemisphere = 1 if site.latitude >= 0 else -1
            means = [
                16.0 - abs(site.latitude) / 6.0 + 9.0 * (_SEASON[doy] * hemisphere)
                for doy in _days_of_year(days)
            ]
            shift = site.longitude / 15.0
            daily = self._table(
                ("daily", site.id),
                lambda: [
                    math.sin(2 * math.pi * ((m / 60.0 + shift) % 24.0 - 9.0) / 24.0)
                    for m in range(MINUTES_PER_DAY)
                ],
            )
            return xp.quantized(xp.column(means) + 6.0 * daily + (noise * 0.6 - 0.3), _Q, _Q)

        return self._block((name, site.id), block, make, input_only=True)

    # -- component and site quantities ------------------------------------------------

    def component_minutes(self, component_id: int, base: str, day: int) -> Any:
        """Minute values of one base field of a component over UTC day ``day``."""
        return self._day(self.component_block(component_id, base, day // self.chunk), day)

    def _day(self, block: Values, day: int) -> Any:
        offset = day % self.chunk * MINUTES_PER_DAY
        return self.xp.flat(block)[offset : offset + MINUTES_PER_DAY]

    def component_block(self, component_id: int, base: str, block: int) -> Values:
        """Minute values of one base field of a component over block ``block`` of days."""
        return self._component(component_id, base, block)

    def _component(self, component_id: int, base: str, block: int) -> Values:
        located = self.fleet.components[component_id]
        return self._block(
            ("c", component_id, base),
            block,
            lambda _: self._make_component(located.component, located.site, base, block),
        )

    def _make_component(
        self, component: ComponentSpec, site: SiteSpec, base: str, block: int
    ) -> Values:
        xp = self.xp
        kind = component.node_type
        if kind == "WEATHERSTATION":
            if base == "POA":
                return xp.quantized(self._ghi(site, block), 17.92, _Q)
            if base == "POAh":
                return xp.rint(self._ghi(site, block) * 17.92 / 60.0) / _Q
            return self._site_wave(site, block, "TmpAmb")
        if base in ("PhV", "Hz"):
            return self._site_wave(site, block, base)
        if base == "PPV":  # line to line: sqrt(3) times line to neutral
            return xp.quantized(self._site_wave(site, block, "PhV") * _SQRT3, _Q, _Q)
        if base in _DERIVED_FROM_POWER:
            return self._from_power(component, base, block)
        if base in ("W", "Wh") and component.parent_id is not None:
            parent = self.fleet.components[component.parent_id].component
            if parent.node_type == "METER":
                return self._share_of_meter(component, parent, base, block)
        if base == "W":
            scale = self._capacity(component) / 1000.0 * 0.96 * _Q
            return xp.quantized(self._ghi(site, block), scale, _Q)
        if base == "Wh":
            return xp.quantized(self._component(component.id, "W", block), _Q / 60.0, _Q)
        if base == "A":
            power = self._component(component.id, "W", block)
            volts = self._site_wave(site, block, "PhV")
            return xp.quantized(power / volts, _Q, _Q)
        raise KeyError(base)

    def _share_of_meter(
        self, component: ComponentSpec, meter: ComponentSpec, base: str, block: int
    ) -> Values:
        """An inverter's part of its meter's reading: the meter is exactly their sum.

        Every inverter but the last gets its capacity share rounded down to the quantum; the
        last gets what remains, so the parts add up to the meter bit for bit (and none is
        negative).
        """
        siblings = self.fleet.children(meter.id)
        total = self._component(meter.id, base, block)
        if component.id == siblings[-1].id:
            others = [self._component(s.id, base, block) for s in siblings[:-1]]
            return total - _added(others) if others else total
        share = component.capacity_w / sum(s.capacity_w for s in siblings) * _Q
        return self.xp.trunc(total * share) / _Q

    def _capacity(self, component: ComponentSpec) -> float:
        if component.node_type == "METER":
            return (
                sum(c.capacity_w for c in self.fleet.children(component.id)) or component.capacity_w
            )
        return component.capacity_w

    def _from_power(self, component: ComponentSpec, base: str, block: int) -> Values:
        """Power factor, apparent and reactive power, and the three phases, from ``W``.

        The power factor rises with load (multiples of 1/1024, so sums stay exact); the
        phases split the power in thirds of the quantum, the last phase taking what is
        left, so ``WphA + WphB + WphC == W`` bit for bit.
        """
        xp = self.xp
        power = self._component(component.id, "W", block)
        if base == "PF":
            capacity = self._capacity(component) or 1.0
            load = xp.minimum(1.0, power / capacity)
            return xp.where(power != 0.0, xp.quantized(0.95 + 0.045 * load, 1024.0, 1024.0), 1.0)
        if base in ("VA", "VAR"):
            if base == "VA":
                return xp.quantized(power / self._component(component.id, "PF", block), _Q, _Q)
            apparent = self._component(component.id, "VA", block)
            square = apparent * apparent - power * power
            return xp.quantized(xp.sqrt(xp.where(square > 0.0, square, 0.0)), _Q, _Q)
        quanta = xp.rint(power * _Q)
        # A third, rounded down: for n = 3k + r (r = 0, 1, 2), (n - 1) / 3 is within 1/3 of
        # k, so rounding gives k (and adding 0.0 turns the -0.0 of n = 0 into 0.0).
        third = xp.rint((quanta - 1.0) / 3.0) + 0.0
        if base in ("WphA", "WphB"):
            return third / _Q
        return (quanta - 2.0 * third) / _Q

    def modelled_key(self, site_id: int, base: str, params: dict[str, str]) -> str:
        """The minute source name of a modelled field with its parameters (``W_m`` and
        ``Wh_m`` take the PV model's; other fields none)."""
        if base not in ("W_m", "Wh_m"):
            return base
        source = params.get("irradianceSource", "weatherStation")
        return f"{base}:{source}:{params.get('inverterClipping', 'false')}"

    def _model(self, site: SiteSpec, key: str, block: int) -> Values:
        """The simple (PVWatts-like) model: irradiance on the tilted array (horizontal
        times a tilt gain) times the site's size (DC) and a derate, clipped at the
        inverters' rating when asked. Irradiance from the site's weather station (the
        measured GHI) or typical-year clear sky (TMY3)."""
        xp = self.xp
        base, source, clip = key.split(":")
        if base == "Wh_m":
            power = self._site(site.id, f"W_m:{source}:{clip}", block)
            return xp.quantized(power, _Q / 60.0, _Q)
        if source == "weatherStation":
            irradiance = self._ghi(site, block)
        else:
            irradiance = self._clear_sky(site, block) * _TYPICAL_SKY
        power = xp.quantized(irradiance, site.size_kw * _TILT_GAIN * 0.82 * _Q, _Q)
        if clip != "true":
            return power
        inverters = [c for c in site.components if c.node_type == "INVERTER"]
        return xp.minimum(power, sum(c.capacity_w for c in inverters) or site.size_kw * 1000.0)

    def site_minutes(self, site_id: int, base: str, day: int) -> Any:
        """Minute values of a site-level base field (its meters added up, or modelled)."""
        return self._day(self._site(site_id, base, day // self.chunk), day)

    def site_block(self, site_id: int, base: str, block: int) -> Values:
        """Minute values of a site-level base field over block ``block`` of days."""
        return self._site(site_id, base, block)

    def _site(self, site_id: int, base: str, block: int) -> Values:
        site = self.fleet.sites[site_id][0]
        xp = self.xp

        def make(days: range) -> Values:
            if base == "Wh_e":
                scale = site.size_kw * 0.82 * 0.96 * 0.95 / 60.0 * _Q
                return xp.quantized(self._clear_sky(site, block), scale, _Q)
            if base.startswith(("W_m:", "Wh_m:")):
                return self._model(site, base, block)
            if base == "GHI_m":
                return xp.quantized(self._ghi(site, block), _Q, _Q)
            if base == "GHIh_m":  # modelled global horizontal insolation (Wh/m2)
                return xp.quantized(self._ghi(site, block), _Q / 60.0, _Q)
            if base == "GHIh_t":  # the typical year's insolation: expected irradiance
                return xp.quantized(self._clear_sky(site, block) * _TYPICAL_SKY, _Q / 60.0, _Q)
            meters = self.fleet.meters(site_id)
            if not meters:
                return xp.full_day(0.0, len(days))
            return _added([self._component(m.id, base, block) for m in meters])

        return self._block(("s", site_id, base), block, make)

    # -- buckets ----------------------------------------------------------------------

    def _pieces(self, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
        """``(block, first minute, lo, hi)`` of each block's part ``[lo, hi)`` of epoch
        minutes ``[start, end)``, in order."""
        size = self.chunk * MINUTES_PER_DAY
        for block in range(start // size, (end - 1) // size + 1):
            base = block * size
            yield block, base, max(start, base), min(end, base + size)

    def columns(
        self, specs: Sequence[tuple[Blocks, str]], starts: list[int], end: int
    ) -> list[list[float]]:
        """For each ``(blocks, how)``, one value per bucket of adjoining buckets (bucket
        ``i``: epoch minutes ``[starts[i], starts[i + 1])``, the last to ``end``); ``how``:
        sum, max, min, avg, or ``each`` (every minute's value: buckets of one minute).

        Block by block, every quantity of a block before the next block, so a block's
        inputs are computed once and little memory is held; a bucket across a block edge
        combines its parts (exactly: sums of multiples of 1/16)."""
        xp = self.xp
        outs: list[list[float]] = [[] for _ in specs]
        first = 0  # the first bucket that reaches into the current block
        count = len(starts)
        for block, base, lo, hi in self._pieces(starts[0], end):
            last = bisect_left(starts, hi, lo=first) - 1  # the last bucket starting here
            offsets = [start - lo for start in starts[first : last + 1]]
            offsets[0] = max(offsets[0], 0)  # the first may have begun in the block before
            for (blocks, how), out in zip(specs, outs, strict=True):
                piece = xp.flat(blocks(block))[lo - base : hi - base]
                if how == "each":
                    out.extend(xp.values(piece))
                    continue
                kind = "sum" if how == "avg" else how
                parts = xp.reduce(piece, offsets, kind)
                if first < len(out):  # the bucket began in the block before
                    head, parts = parts[0], parts[1:]
                    before = out[first]
                    if kind == "sum":
                        out[first] = before + head
                    elif kind == "max":
                        out[first] = head if head > before else before
                    else:
                        out[first] = head if head < before else before
                out.extend(parts)
            # The last bucket goes on into the next block unless it ends at this edge.
            ends_at = starts[last + 1] if last + 1 < count else end
            first = last if ends_at > hi else last + 1
        ends = [*starts[1:], end]
        for index, (_, how) in enumerate(specs):
            if how == "avg":
                outs[index] = [
                    total / (b - a) for total, a, b in zip(outs[index], starts, ends, strict=True)
                ]
        return outs

    def total(self, blocks: Blocks, start: int, end: int) -> float | None:
        """The sum over epoch minutes ``[start, end)``; None when empty."""
        if start >= end:
            return None
        return self.columns([(blocks, "sum")], [start], end)[0][0]

    def minute(self, blocks: Blocks, minute: int) -> float:
        """The value at epoch minute ``minute``."""
        size = self.chunk * MINUTES_PER_DAY
        return float(self.xp.flat(blocks(minute // size))[minute % size])


def _added(blocks: Sequence[Values]) -> Values:
    """The minute by minute sum, added left to right."""
    total = blocks[0]
    for block in blocks[1:]:
        total = total + block
    return total
