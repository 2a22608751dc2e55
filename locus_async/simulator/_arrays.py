"""The two array backends the simulator's physics is written against, with the same results
bit for bit: numpy (a block of days at once, the fast one) and pure Python (one day at a
time, for an install without numpy).

Owns: elementwise arithmetic, rounding, selection, the counter-based random numbers, spans
of minutes and their reduction into buckets. Must never: do I/O or read a clock.

Why the results agree exactly: the physics uses only operations that IEEE 754 rounds
correctly everywhere (``+ - * /``, ``sqrt``), rounding to an integer (half to even in both),
comparisons, and integer arithmetic modulo 2**64 for the random numbers. Transcendental
functions (``sin``, ``cos``) are taken once per site or per day with :mod:`math` and shared by
both backends, because numpy's vectorised ``cos`` and ``power`` may differ from the C
library's in the last bit. Expressions are written once, so both backends evaluate the same
operations in the same order. Sums of minute values are exact in any order (the values are
multiples of 1/16 and their totals far below 2**49), so numpy's pairwise sums equal
Python's sequential ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Final

__all__ = [
    "Backend",
    "NumpyBackend",
    "PureBackend",
    "Vec",
    "best_backend",
    "splitmix",
    "uniforms_of",
]

MASK64: Final = (1 << 64) - 1
_GOLDEN: Final = 0x9E3779B97F4A7C15
_MIX1: Final = 0xBF58476D1CE4E5B9
_MIX2: Final = 0x94D049BB133111EB
_UNIT: Final = 2.0**-53

#: A value the physics computes with: a backend's block of days (numpy: an array with one
#: row per day; pure: a ``Vec`` of one day, or a float for a per-day scalar).
Values = Any


def splitmix(value: int) -> int:
    z = value & MASK64
    z = ((z ^ (z >> 30)) * _MIX1) & MASK64
    z = ((z ^ (z >> 27)) * _MIX2) & MASK64
    return z ^ (z >> 31)


def uniforms_of(key: int, count: int) -> list[float]:
    """``count`` uniform numbers in [0, 1) of the 64-bit ``key`` (SplitMix64 of the key plus
    a counter): any element of any day can be drawn without drawing the ones before it."""
    return [(splitmix(key + (i + 1) * _GOLDEN) >> 11) * _UNIT for i in range(count)]


class Vec:
    """One day's values for the pure backend: a list of floats with elementwise operators
    (a float on either side broadcasts)."""

    __slots__ = ("v",)

    def __init__(self, values: list[float]) -> None:
        self.v = values

    def __len__(self) -> int:
        return len(self.v)

    def __add__(self, other: Vec | float) -> Vec:
        if isinstance(other, Vec):
            return Vec([a + b for a, b in zip(self.v, other.v, strict=True)])
        return Vec([a + other for a in self.v])

    def __radd__(self, other: float) -> Vec:
        return Vec([other + a for a in self.v])

    def __sub__(self, other: Vec | float) -> Vec:
        if isinstance(other, Vec):
            return Vec([a - b for a, b in zip(self.v, other.v, strict=True)])
        return Vec([a - other for a in self.v])

    def __rsub__(self, other: float) -> Vec:
        return Vec([other - a for a in self.v])

    def __mul__(self, other: Vec | float) -> Vec:
        if isinstance(other, Vec):
            return Vec([a * b for a, b in zip(self.v, other.v, strict=True)])
        return Vec([a * other for a in self.v])

    def __rmul__(self, other: float) -> Vec:
        return Vec([other * a for a in self.v])

    def __truediv__(self, other: Vec | float) -> Vec:
        if isinstance(other, Vec):
            return Vec([a / b for a, b in zip(self.v, other.v, strict=True)])
        return Vec([a / other for a in self.v])

    def __rtruediv__(self, other: float) -> Vec:
        return Vec([other / a for a in self.v])

    def __gt__(self, other: float) -> Vec:
        return Vec([a > other for a in self.v])

    def __lt__(self, other: float) -> Vec:
        return Vec([a < other for a in self.v])

    def __ne__(self, other: object) -> Vec:  # type: ignore[override]
        return Vec([a != other for a in self.v])

    __hash__ = None  # type: ignore[assignment]


def _pair(a: Values, b: Values) -> tuple[list[Any], list[Any]] | None:
    """Both as lists of equal length, or None when both are scalars."""
    if isinstance(a, Vec):
        return a.v, (b.v if isinstance(b, Vec) else [b] * len(a.v))
    if isinstance(b, Vec):
        return [a] * len(b.v), b.v
    return None


class Backend:
    """What the physics needs of an array library; ``chunk`` days are computed at once."""

    name: str
    chunk: int
    #: Days of quantities a simulator keeps by default.
    cache_days: int

    def table(self, values: list[float]) -> Values:
        """A per-minute table shared by every day (``values``: one per minute of a day)."""
        raise NotImplementedError

    def column(self, values: list[float]) -> Values:
        """A per-day scalar (``values``: one per day of the block)."""
        raise NotImplementedError

    def uniforms(self, keys: list[int], count: int) -> Values:
        """``count`` uniform numbers per day, drawn from each day's 64-bit key."""
        raise NotImplementedError

    def take(self, values: Values, index: int) -> Values:
        """Element ``index`` of each day, as a per-day scalar."""
        raise NotImplementedError

    def window(self, values: Values, start: int, count: int) -> Values:
        """Elements ``[start, start + count)`` of each day."""
        raise NotImplementedError

    def times_knots(self, minutes: Values, knots: Values) -> Values:
        """Each minute times its 5-minute knot (``knots``: one per 5 minutes of a day)."""
        raise NotImplementedError

    def rint(self, values: Values) -> Values:
        """Rounded to the nearest integer, halves to even."""
        raise NotImplementedError

    def trunc(self, values: Values) -> Values:
        """Rounded toward zero."""
        raise NotImplementedError

    def quantized(self, values: Values, scale: float, quantum: float) -> Values:
        """``rint(values * scale) / quantum``: values on a grid of ``1 / quantum``."""
        raise NotImplementedError

    def positive(self, values: Values) -> Values:
        """Each value, or 0.0 where it is not above zero (never -0.0)."""
        raise NotImplementedError

    def sqrt(self, values: Values) -> Values:
        raise NotImplementedError

    def where(self, condition: Values, yes: Values, no: Values) -> Values:
        raise NotImplementedError

    def minimum(self, a: Values, b: Values) -> Values:
        """The smaller of each pair (``b`` where ``b < a``, else ``a``)."""
        raise NotImplementedError

    def maximum(self, a: Values, b: Values) -> Values:
        """The larger of each pair (``b`` where ``b > a``, else ``a``)."""
        raise NotImplementedError

    def clip(self, values: Values, low: float, high: float) -> Values:
        raise NotImplementedError

    def full_day(self, value: float, days: int) -> Values:
        """A block of ``days`` days whose every minute is ``value``."""
        raise NotImplementedError

    def flat(self, block: Values) -> Any:
        """The block's minutes in a row, day after day (a view where the backend can)."""
        raise NotImplementedError

    def scaled(self, block: Values, ranges: Sequence[tuple[int, int]], scale: float) -> Values:
        """A copy of ``block`` whose minutes ``[lo, hi)`` of each range (counted from the
        block's first) are ``scale`` times theirs."""
        raise NotImplementedError

    def reduce(self, span: Any, starts: list[int], how: str) -> list[float]:
        """One value per bucket of ``span``: bucket ``i`` is ``[starts[i], starts[i + 1])``,
        the last one runs to the end. ``how``: sum, max or min."""
        raise NotImplementedError

    def values(self, span: Any) -> list[float]:
        """The span as Python floats."""
        raise NotImplementedError


_PICK: Final[dict[str, Callable[[list[float]], float]]] = {"max": max, "min": min, "sum": sum}


class PureBackend(Backend):
    """Pure Python, one day at a time."""

    name = "pure"
    chunk = 1
    cache_days = 4096

    def table(self, values: list[float]) -> Values:
        return Vec(list(values))

    def column(self, values: list[float]) -> Values:
        (value,) = values
        return value

    def uniforms(self, keys: list[int], count: int) -> Values:
        (key,) = keys
        return Vec(uniforms_of(key, count))

    def take(self, values: Values, index: int) -> Values:
        return values.v[index]

    def window(self, values: Values, start: int, count: int) -> Values:
        return Vec(values.v[start : start + count])

    def times_knots(self, minutes: Values, knots: Values) -> Values:
        levels = knots.v
        return Vec([m * levels[i // 5] for i, m in enumerate(minutes.v)])

    def rint(self, values: Values) -> Values:
        if isinstance(values, Vec):
            return Vec([float(round(v)) for v in values.v])
        return float(round(values))

    def trunc(self, values: Values) -> Values:
        if isinstance(values, Vec):
            return Vec([float(math.trunc(v)) for v in values.v])
        return float(math.trunc(values))

    def quantized(self, values: Values, scale: float, quantum: float) -> Values:
        return Vec([float(round(v * scale)) / quantum for v in values.v])

    def positive(self, values: Values) -> Values:
        return Vec([v if v > 0.0 else 0.0 for v in values.v])

    def sqrt(self, values: Values) -> Values:
        if isinstance(values, Vec):
            return Vec([math.sqrt(v) for v in values.v])
        return math.sqrt(values)

    def where(self, condition: Values, yes: Values, no: Values) -> Values:
        if not isinstance(condition, Vec):
            return yes if condition else no
        size = len(condition.v)
        ys = yes.v if isinstance(yes, Vec) else [yes] * size
        ns = no.v if isinstance(no, Vec) else [no] * size
        return Vec([y if c else n for c, y, n in zip(condition.v, ys, ns, strict=True)])

    def minimum(self, a: Values, b: Values) -> Values:
        pair = _pair(a, b)
        if pair is None:
            return b if b < a else a
        return Vec([y if y < x else x for x, y in zip(*pair, strict=True)])

    def maximum(self, a: Values, b: Values) -> Values:
        pair = _pair(a, b)
        if pair is None:
            return b if b > a else a
        return Vec([y if y > x else x for x, y in zip(*pair, strict=True)])

    def clip(self, values: Values, low: float, high: float) -> Values:
        if not isinstance(values, Vec):
            return low if values < low else (high if values > high else values)
        return Vec([low if v < low else (high if v > high else v) for v in values.v])

    def full_day(self, value: float, days: int) -> Values:
        return Vec([value] * 1440)

    def flat(self, block: Values) -> Any:
        return block.v

    def scaled(self, block: Values, ranges: Sequence[tuple[int, int]], scale: float) -> Values:
        out = list(block.v)
        for lo, hi in ranges:
            out[lo:hi] = [v * scale for v in block.v[lo:hi]]
        return Vec(out)

    def reduce(self, span: Any, starts: list[int], how: str) -> list[float]:
        ends = [*starts[1:], len(span)]
        pick: Callable[[list[float]], float] = _PICK[how]
        return [pick(span[lo:hi]) for lo, hi in zip(starts, ends, strict=True)]

    def values(self, span: Any) -> list[float]:
        return list(span)


class NumpyBackend(Backend):
    """numpy, a block of ``chunk`` days at once (a block that fits a core's cache)."""

    name = "numpy"
    chunk = 32
    cache_days = 24 * 32

    def __init__(self) -> None:
        import numpy

        self.np = numpy
        self._counters: dict[int, Any] = {}

    def table(self, values: list[float]) -> Values:
        return self.np.asarray(values, dtype=self.np.float64)

    def column(self, values: list[float]) -> Values:
        return self.np.asarray(values, dtype=self.np.float64)[:, None]

    def uniforms(self, keys: list[int], count: int) -> Values:
        np = self.np
        steps = self._counters.get(count)
        if steps is None:
            steps = self._counters[count] = (
                np.arange(1, count + 1, dtype=np.uint64) * np.uint64(_GOLDEN)
            )[None, :]
        z = np.asarray(keys, dtype=np.uint64)[:, None] + steps
        z ^= z >> np.uint64(30)
        z *= np.uint64(_MIX1)
        z ^= z >> np.uint64(27)
        z *= np.uint64(_MIX2)
        z ^= z >> np.uint64(31)
        z >>= np.uint64(11)
        return z.astype(np.float64) * _UNIT

    def take(self, values: Values, index: int) -> Values:
        return values[:, index : index + 1]

    def window(self, values: Values, start: int, count: int) -> Values:
        return values[:, start : start + count]

    def times_knots(self, minutes: Values, knots: Values) -> Values:
        days = minutes.shape[0]
        out = minutes.reshape(days, -1, 5) * knots[:, :, None]
        return out.reshape(days, -1)

    def rint(self, values: Values) -> Values:
        return self.np.rint(values)

    def trunc(self, values: Values) -> Values:
        return self.np.trunc(values)

    def quantized(self, values: Values, scale: float, quantum: float) -> Values:
        out = values * scale  # a new array: the steps below may work in place
        self.np.rint(out, out=out)
        out /= quantum
        return out

    def positive(self, values: Values) -> Values:
        np = self.np
        return np.where(values > 0.0, values, 0.0)

    def sqrt(self, values: Values) -> Values:
        return self.np.sqrt(values)

    def where(self, condition: Values, yes: Values, no: Values) -> Values:
        return self.np.where(condition, yes, no)

    def minimum(self, a: Values, b: Values) -> Values:
        return self.np.where(b < a, b, a)

    def maximum(self, a: Values, b: Values) -> Values:
        return self.np.maximum(a, b)

    def clip(self, values: Values, low: float, high: float) -> Values:
        return self.np.clip(values, low, high)

    def full_day(self, value: float, days: int) -> Values:
        return self.np.full((days, 1440), value, dtype=self.np.float64)

    def flat(self, block: Values) -> Any:
        return block.reshape(-1)

    def scaled(self, block: Values, ranges: Sequence[tuple[int, int]], scale: float) -> Values:
        source = block.reshape(-1)
        out = source.copy()
        for lo, hi in ranges:
            out[lo:hi] = source[lo:hi] * scale
        return out.reshape(block.shape)

    def reduce(self, span: Any, starts: list[int], how: str) -> list[float]:
        np = self.np
        ufunc = {"max": np.maximum, "min": np.minimum, "sum": np.add}[how]
        return list(ufunc.reduceat(span, np.asarray(starts, dtype=np.intp)).tolist())

    def values(self, span: Any) -> list[float]:
        return list(span.tolist())


def best_backend(name: str = "auto") -> Backend:
    """``numpy`` when it is installed (``auto``), else pure Python; or the one named."""
    if name == "pure":
        return PureBackend()
    if name == "numpy":
        return NumpyBackend()
    if name != "auto":
        raise ValueError(f"unknown array backend {name!r}: auto, numpy or pure")
    try:
        return NumpyBackend()
    except ImportError:
        return PureBackend()
