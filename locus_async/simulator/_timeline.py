"""When the simulated fleet's data reaches the server: upload lag, late revisions and
components commissioned while the simulation runs. Pure: the moment is always an argument.

Owns: ``Timeline`` (the model, seeded and documented), ``SimClock`` (a clock tests move by
hand) and ``Timeline.example`` (the mix the docs describe). Must never: read the real clock.

The model, per component:

* **Upload lag.** A datalogger uploads its minute readings ``lag`` seconds late, in batches
  of ``upload_every`` seconds: at moment ``now`` the server has every minute that ended at
  least ``lag`` seconds before the last batch boundary. Rows past that frontier come back
  with a timestamp and no values, as the real server's do. ``math.inf``: it never reports.
* **Late revisions.** A seeded share of hours (``revision_share``) first arrives at
  ``revision_scale`` times its final values (a logger that lost part of its readings and
  backfills them); ``revision_delay`` seconds after the hour was uploaded the final values
  replace them. Older than that, nothing changes any more.
* **Commissioning.** A component in ``appears`` is not listed (and answers 404) before that
  moment, and has no data before it.

Site-level data reaches the earliest of its meters' frontiers (a site's total exists once
every meter uploaded) and has no revisions of its own.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

import attrs

from locus_async._core.checks import check_number

__all__ = ["SimClock", "Timeline"]

MINUTES_PER_HOUR: Final = 60


def _frozen_map(value: Mapping[int, float] | None) -> Mapping[int, float]:
    return MappingProxyType(dict(value or {}))


@attrs.define
class SimClock:
    """A wall clock for simulations: callable like ``time.time``, moved only by hand."""

    now: float

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (never backwards); returns the new time."""
        self.now += check_number(seconds, "seconds")
        return self.now

    def set(self, moment: float) -> None:
        """Jump to ``moment`` (unix seconds), forward only."""
        if moment < self.now:
            raise ValueError("a simulated clock only moves forward")
        self.now = float(moment)


@attrs.frozen
class Timeline:
    """How data reaches the simulated server over time (see the module docs)."""

    lags: Mapping[int, float] = attrs.field(factory=dict, converter=_frozen_map)
    default_lag: float = 0.0
    upload_every: float = 60.0
    appears: Mapping[int, float] = attrs.field(factory=dict, converter=_frozen_map)
    revision_share: float = 0.0
    revision_delay: float = 6 * 3600.0
    revision_scale: float = 0.9
    seed: int = 11

    def __attrs_post_init__(self) -> None:
        for name in ("default_lag", "revision_delay"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.upload_every < 60 or self.upload_every % 60:
            raise ValueError("upload_every must be a whole number of minutes")
        if not 0.0 <= self.revision_share <= 1.0:
            raise ValueError("revision_share must be between 0 and 1")
        if any(lag < 0 for lag in self.lags.values()):
            raise ValueError("a lag must not be negative")

    # -- the frontier ---------------------------------------------------------------

    def lag(self, component_id: int) -> float:
        return self.lags.get(component_id, self.default_lag)

    def frontier(self, component_id: int, now: float) -> int:
        """Epoch minute the component's data reaches at ``now`` (exclusive)."""
        lag = self.lag(component_id)
        if math.isinf(lag):
            return -(2**62)
        batch = int(self.upload_every)
        uploaded = math.floor((now - lag) / batch) * batch
        return min(uploaded // 60, int(now // 60))

    def uploaded_at(self, component_id: int, minute: int) -> float:
        """The moment the reading of epoch ``minute`` reaches the server (inf: never)."""
        lag = self.lag(component_id)
        batch = self.upload_every
        return lag + math.ceil((minute + 1) * 60 / batch) * batch

    def first_minute(self, component_id: int) -> int | None:
        """The epoch minute data starts when the component is commissioned in the run."""
        moment = self.appears.get(component_id)
        return None if moment is None else math.ceil(moment / 60)

    def listed(self, component_id: int, now: float) -> bool:
        return now >= self.appears.get(component_id, -math.inf)

    # -- revisions ------------------------------------------------------------------

    def revised(self, component_id: int, hour: int) -> bool:
        """Whether epoch ``hour`` of the component first arrives short (seeded)."""
        if self.revision_share <= 0:
            return False
        digest = hashlib.blake2b(
            f"{self.seed}:{component_id}:{hour}".encode(), digest_size=8
        ).digest()
        return int.from_bytes(digest, "big") / 2**64 < self.revision_share

    def pending_hours(self, component_id: int, day: int, now: float) -> tuple[int, ...]:
        """Hours (0-23) of UTC ``day`` whose uploaded values are not yet final at ``now``."""
        if self.revision_share <= 0:
            return ()
        pending = []
        for index in range(24):
            hour = day * 24 + index
            if not self.revised(component_id, hour):
                continue
            last_minute = (hour + 1) * MINUTES_PER_HOUR - 1
            if now < self.uploaded_at(component_id, last_minute) + self.revision_delay:
                pending.append(index)
        return tuple(pending)

    def settled_before(self, now: float) -> float:
        """A moment before which no answer changes after ``now`` (for response caches)."""
        finite = [lag for lag in (*self.lags.values(), self.default_lag) if not math.isinf(lag)]
        return now - max(finite) - self.upload_every - self.revision_delay - 3600

    # -- the documented example -----------------------------------------------------

    @classmethod
    def example(cls, component_ids: Iterable[int], *, start: float, seed: int = 11) -> Timeline:
        """The mix the docs describe, for ``component_ids`` in order: most upload within
        15 minutes; every fifth is 3 hours behind, every seventh 2 days; the last never
        reports; the second to last is commissioned 3 days after ``start``; 5 % of hours
        are revised 6 hours after upload."""
        ids = list(component_ids)
        lags: dict[int, float] = {}
        for index, ident in enumerate(ids):
            if index % 7 == 6:
                lags[ident] = 2 * 86_400.0
            elif index % 5 == 4:
                lags[ident] = 3 * 3600.0
        appears: dict[int, float] = {}
        if ids:
            lags[ids[-1]] = math.inf
        if len(ids) > 1:
            appears[ids[-2]] = start + 3 * 86_400
        return cls(
            lags=lags,
            default_lag=600.0,
            upload_every=900.0,
            appears=appears,
            revision_share=0.05,
            seed=seed,
        )
