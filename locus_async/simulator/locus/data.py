"""Handlers of the simulated Locus time series: dataavailable, component, site and bulk data,
the time-range rules, and the ground truth a correct client must return.

Owns: data bodies and the ground truth. Must never: read the real clock.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from locus_async.simulator._calendar import bucket_starts, format_many, format_ts, parse_local
from locus_async.simulator._fleet import BULK_FIELDS, Quantity
from locus_async.simulator._http import SimRequest
from locus_async.simulator._physics import MINUTES_PER_DAY, Blocks, epoch_day
from locus_async.simulator.locus.state import (
    GRANULARITIES,
    LIMITS,
    CoreState,
    _instant,
    _Reject,
    _zone,
)

_SUB_DAILY: Final = frozenset({"1min", "5min", "15min", "hourly"})


def _run(minutes: list[int], first_ok: int, until: int) -> tuple[int, int, list[int], int]:
    """The buckets with data among buckets ``[minutes[i], minutes[i + 1])``: the first
    and last index, their starts (the first clipped to ``first_ok``) and the end
    (clipped to ``until``); no buckets: first > last."""
    count = len(minutes) - 1
    first = max(0, bisect_right(minutes, first_ok) - 1)
    last = min(count - 1, bisect_right(minutes, until - 1) - 1)
    lo, hi = max(minutes[first], first_ok), min(minutes[last + 1], until)
    if first > last or lo >= hi:
        return 0, -1, [], 0
    return first, last, [lo, *minutes[first + 1 : last + 1]], hi


def _field_parameters(quantities: list[Quantity], params: dict[str, str]) -> dict[str, str]:
    """The field parameters the requested fields need, checked as the reference describes:
    each one present, with one of the values ``dataavailable`` lists (else 400)."""
    wanted: dict[str, tuple[str, ...]] = {}
    for quantity in quantities:
        for name, values in quantity.field_parameters:
            wanted.setdefault(name, values)
    out: dict[str, str] = {}
    for name, values in wanted.items():
        given = params.get(name)
        if given is None:
            raise _Reject(400, f"Missing field parameter {name!r}")
        if values and given not in values:
            raise _Reject(
                400, f"Invalid value {given!r} for field parameter {name!r}: one of {list(values)}"
            )
        out[name] = given
    return out


class _BulkMonth:
    """One site's month of bulk data; each value is computed when it is asked for, once
    (a request for ``Wh_sum`` alone models no irradiance)."""

    def __init__(
        self,
        handlers: DataHandlers,
        sid: int,
        located: bool,
        energised: bool,
        bounds: tuple[int, int, int, int, int],
    ) -> None:
        self._handlers, self._sid = handlers, sid
        self._located, self._energised = located, energised
        #: the month from ``month``, measured data [lo, hi), prorated from p_lo, and the
        #: past up to ``past`` (epoch minutes).
        self._month, self._lo, self._hi, self._p_lo, self._past = bounds
        self._known: dict[str, float | None] = {}

    def _sum(self, base: str, lo: int, hi: int) -> float | None:
        return self._handlers._site_sum(self._sid, base, lo, hi)

    def value(self, name: str) -> float | None:
        if name not in self._known:
            self._known[name] = self._compute(name)
        return self._known[name]

    def _compute(self, name: str) -> float | None:
        lo, hi, p_lo, past = self._lo, self._hi, self._p_lo, self._past
        if name == "Wh_sum":
            return self._sum("Wh", lo, hi)
        if name == "Whp_sum":
            return self._sum("Wh", max(lo, p_lo), hi)
        if name == "Wh_e_sum":
            return self._sum("Wh_e", p_lo, past)
        if name == "EER_avg":
            prorated, expected = self.value("Whp_sum"), self.value("Wh_e_sum")
            return prorated / expected if prorated is not None and expected else None
        if not self._located:  # modelled irradiance needs a geolocated site
            return None
        if name == "GHIh_m_sum":  # whole months, once the site has measured energy
            return self._sum("GHIh_m", self._month, past) if self._energised else None
        if name == "GHIhp_m_sum":
            return self._sum("GHIh_m", p_lo, past)
        if name == "GHIh_t_sum":
            return self._sum("GHIh_t", p_lo, past)
        # GEER_avg: EER over the weather's share of expectations.
        eer, measured, typical = (
            self.value("EER_avg"),
            self.value("GHIhp_m_sum"),
            self.value("GHIh_t_sum"),
        )
        weather = measured / typical if measured is not None and typical else None
        return eer / weather if eer is not None and weather else None


class DataHandlers(CoreState):
    """The data endpoints and the ground truth."""

    def _quantities(self, kind: str, ident: int) -> tuple[Quantity, ...]:
        if kind == "components":
            return self.fleet.component_quantities(ident)
        return self.fleet.site_quantities(ident)

    def _sites_dataavailable(
        self, sid: int, params: dict[str, str], _: SimRequest
    ) -> dict[str, Any]:
        return {"baseFields": [q.wire() for q in self._quantities("sites", sid)]}

    def _components_dataavailable(
        self, cid: int, params: dict[str, str], _: SimRequest
    ) -> dict[str, Any]:
        return {"baseFields": [q.wire() for q in self._quantities("components", cid)]}

    def _partners_sites_dataavailable(
        self, pid: int, params: dict[str, str], _: SimRequest
    ) -> dict[str, Any]:
        return {"baseFields": [q.wire() for q in BULK_FIELDS]}

    def _sites_data(self, sid: int, params: dict[str, str], request: SimRequest) -> dict[str, Any]:
        return {"data": self._data("sites", sid, params, request.path)}

    def _components_data(
        self, cid: int, params: dict[str, str], request: SimRequest
    ) -> dict[str, Any]:
        return {"data": self._data("components", cid, params, request.path)}

    def _common(self, params: dict[str, str]) -> tuple[list[str], ZoneInfo, str]:
        fields_text = params.get("fields")
        if not fields_text:
            raise _Reject(400, "fields is required")
        gran = params.get("gran")
        if gran is None:
            raise _Reject(400, "gran is required")
        if gran not in GRANULARITIES:
            raise _Reject(400, f"Invalid gran {gran!r}")
        tz = _zone(params.get("tz"))
        return fields_text.split(","), tz, gran

    def _range(self, params: dict[str, str], tz: ZoneInfo) -> tuple[int, int]:
        try:
            start = parse_local(params.get("start") or "", tz)
            end = parse_local(params.get("end") or "", tz)
        except ValueError:
            raise _Reject(400, "start and end must be YYYY-MM-DDThh:mm:ss local times") from None
        if start >= end:
            raise _Reject(400, "start must be before end")
        return start, end

    def _data(
        self, kind: str, ident: int, params: dict[str, str], path: str
    ) -> list[dict[str, Any]]:
        fields, tz, gran = self._common(params)
        offered = {
            f"{q.base_field}_{a}": q for q in self._quantities(kind, ident) for a in q.aggregations
        }
        for name in fields:
            quantity = offered.get(name)
            if quantity is None:
                raise _Reject(400, f"Invalid field {name!r} for this {kind[:-1]}")
            if gran not in quantity.granularities:
                raise _Reject(400, f"Granularity {gran!r} is not available for {name!r}")
        model = _field_parameters([offered[name] for name in fields], params)
        if gran == "latest":
            if kind != "components":
                raise _Reject(400, "latest is only available for components")
            self.stats.data_windows.append((path, None, None, tz.key, gran, ",".join(fields)))
            return self._latest(ident, fields, tz)
        start, end = self._range(params, tz)
        limit = LIMITS[gran]
        if limit is not None and end - start >= limit.total_seconds():
            raise _Reject(
                400, f"Time range too long for {gran}: must be less than {limit.days} days"
            )
        self.stats.data_windows.append(
            (path, params["start"], params["end"], tz.key, gran, ",".join(fields))
        )
        return self.rows(
            kind, ident, fields=fields, start=start, end=end, tz=tz, gran=gran, params=model
        )

    def _minutes_source(self, kind: str, ident: int, base: str, now: float) -> Blocks:
        """The minute values of one base field by block of days as the server has them
        at ``now`` (hours still to be revised at their first values)."""
        physics = self.physics
        if kind != "components":
            return lambda block: physics.site_block(ident, base, block)
        timeline = self.timeline

        def minutes(block: int) -> Any:
            values = physics.component_block(ident, base, block)
            if timeline is None:
                return values
            first = block * physics.chunk
            hours = [
                (start, start + 60)
                for day in range(first, first + physics.chunk)
                for hour in timeline.pending_hours(ident, day, now)
                for start in ((day - first) * MINUTES_PER_DAY + hour * 60,)
            ]
            return physics.xp.scaled(values, hours, timeline.revision_scale) if hours else values

        return minutes

    def _available(self, kind: str, ident: int, now: float) -> tuple[int, int]:
        """Epoch minutes ``[from, until)`` with data at ``now``: commissioning to the
        upload frontier (the timeline's; without one, now)."""
        timeline = self.timeline
        if kind == "components":
            commissioned = self.fleet.components[ident].component.commissioned
            members = [ident]
        else:
            meters = self.fleet.meters(ident)
            dates = [c.commissioned for c in meters if c.commissioned]
            commissioned = min(dates) if dates else None
            members = [c.id for c in meters]
        first = epoch_day(commissioned) * MINUTES_PER_DAY if commissioned else 0
        until = int(now // 60)
        if timeline is not None:
            starts = [timeline.first_minute(m) for m in members]
            known = [m for m in starts if m is not None]
            if known and len(known) == len(starts):
                first = max(first, min(known))
            if members:
                until = min(until, *(timeline.frontier(m, now) for m in members))
        return first, until

    def rows(
        self,
        kind: str,
        ident: int,
        *,
        fields: list[str],
        start: int,
        end: int,
        tz: ZoneInfo,
        gran: str,
        now: float | None = None,
        params: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Rows for buckets with ``start <= ts < end`` as the server has them at ``now``
        (default: its clock); ``params``: the field parameters (the PV model's); no limit
        check: the ground truth."""
        moment = self.clock() if now is None else now
        starts = bucket_starts(start, end, tz, gran)
        if not starts:
            return []
        if starts[-1] < end:  # no following bucket was found: should not happen
            raise AssertionError("bucket list has no end")
        first_ok, until = self._available(kind, ident, moment)
        model = params or {}
        plan = [
            (name, self.physics.modelled_key(ident, base, model), how)
            for name, (base, how) in ((n, n.rsplit("_", 1)) for n in fields)
        ]
        sources = {base: self._minutes_source(kind, ident, base, moment) for _, base, _ in plan}
        labels = (
            format_many(starts[:-1], tz)
            if gran in _SUB_DAILY
            else [format_ts(b, tz) for b in starts[:-1]]
        )
        names = [name for name, _, _ in plan]
        if gran in _SUB_DAILY or all(b % 60 == 0 for b in starts):
            # Buckets of whole minutes: one run of adjoining buckets, reduced block by block.
            first, last, run, run_end = _run([b // 60 for b in starts], first_ok, until)
            how_of = "each" if gran == "1min" else None
            columns = (
                self.physics.columns(
                    [(sources[base], how_of or how) for _, base, how in plan], run, run_end
                )
                if run
                else [[] for _ in plan]
            )
        else:  # a zone whose offset has seconds: a minute may belong to two buckets
            spans = [
                (max(starts[i] // 60, first_ok), min(-(-starts[i + 1] // 60), until))
                for i in range(len(labels))
            ]
            full = [i for i, (lo, hi) in enumerate(spans) if lo < hi]
            first, last = (full[0], full[-1]) if full else (0, -1)
            values = [
                self.physics.columns([(sources[base], how) for _, base, how in plan], [lo], hi)
                for lo, hi in spans[first : last + 1]
            ]
            columns = [[bucket[index][0] for bucket in values] for index in range(len(plan))]
        rows = [{"id": ident, "ts": label} for label in labels]
        for name, column in zip(names, columns, strict=True):
            for row, value in zip(rows[first : last + 1], column, strict=True):
                row[name] = value
        return rows

    def _latest(self, ident: int, fields: list[str], tz: ZoneInfo) -> list[dict[str, Any]]:
        now = self.clock()
        first_ok, until = self._available("components", ident, now)
        minute = min(until, int(now // 60)) - 1
        row: dict[str, Any] = {"id": ident, "ts": format_ts(minute * 60, tz)}
        if minute >= first_ok:
            for name in fields:
                blocks = self._minutes_source("components", ident, name.rsplit("_", 1)[0], now)
                row[name] = self.physics.minute(blocks, minute)
        return [row]

    def _partners_sites_data(
        self, pid: int, params: dict[str, str], request: SimRequest
    ) -> dict[str, Any]:
        fields, tz, gran = self._common(params)
        if gran != "monthly":
            raise _Reject(400, "Bulk data supports monthly granularity only")
        offered = {f"{q.base_field}_{a}" for q in BULK_FIELDS for a in q.aggregations}
        for name in fields:
            if name not in offered:
                raise _Reject(400, f"Invalid field {name!r} for bulk data")
        start, end = self._range(params, tz)
        wall_start = datetime.fromtimestamp(start, tz).replace(tzinfo=None)
        try:
            limit = wall_start.replace(year=wall_start.year + 1)
        except ValueError:  # 29 February
            limit = wall_start.replace(year=wall_start.year + 1, day=28)
        if datetime.fromtimestamp(end, tz).replace(tzinfo=None) > limit:
            raise _Reject(400, "end can be at most 1 year after start for bulk data")
        self.stats.data_windows.append(
            (request.path, params["start"], params["end"], tz.key, gran, ",".join(fields))
        )
        return {"data": self.bulk_rows(pid, fields, start, end, tz)}

    def bulk_rows(
        self, pid: int, fields: list[str], start: int, end: int, tz: ZoneInfo
    ) -> list[dict[str, Any]]:
        """Monthly rows of every site of the partner that has components, prorated as the
        reference says field by field:

        - ``Wh_sum``: not prorated (all the energy measured in the month);
        - ``Whp_sum``, ``GHIhp_m_sum``: from the startup date on (part of its month); with
          no startup date, whole months from the first month with measured energy;
        - ``Wh_e_sum``, ``GHIh_t_sum``: the same, and only up to now;
        - ``GHIh_m_sum``: not prorated, but only from the first month with measured energy;
        - ``EER_avg`` = ``Whp / Wh_e``, ``GEER_avg`` = ``EER / (GHIhp_m / GHIh_t)``: the
          prorating happens in the other fields.

        A value the site cannot have is null (no energy yet; no geolocation for modelled
        irradiance).
        """
        starts = bucket_starts(start, end, tz, "monthly")
        now_minute = int(self.clock() // 60)
        out: list[dict[str, Any]] = []
        for sid in sorted(self._partner_sites(pid)):
            site = self.fleet.sites[sid][0]
            if not site.components:
                continue
            first_ok, until = self._available("sites", sid, self.clock())
            startup = (
                _instant(datetime.combine(site.startup, datetime.min.time()), tz) // 60
                if site.startup is not None
                else None
            )
            for index in range(len(starts) - 1):
                m_lo, m_hi = starts[index] // 60, starts[index + 1] // 60
                lo, hi = max(m_lo, first_ok), min(m_hi, until)
                # Whole months from the first month with measured energy (no startup).
                energised = first_ok < until and m_hi > first_ok
                if startup is not None:
                    p_lo = max(m_lo, startup)
                elif energised:
                    p_lo = m_lo
                else:
                    p_lo = m_hi  # nothing
                past = min(m_hi, now_minute)
                values = _BulkMonth(
                    self, sid, site.geolocated, energised, (m_lo, lo, hi, p_lo, past)
                )
                row: dict[str, Any] = {"id": sid, "ts": format_ts(starts[index], tz)}
                for name in fields:
                    row[name] = values.value(name)
                out.append(row)
        return out

    def _site_sum(self, sid: int, base: str, lo: int, hi: int) -> float | None:
        return self.physics.total(lambda block: self.physics.site_block(sid, base, block), lo, hi)

    def ground_truth(
        self,
        kind: str,
        ident: int,
        *,
        fields: list[str],
        start: datetime,
        end: datetime,
        tz: str,
        gran: str,
        as_of: datetime | float | None = None,
        field_params: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """What a correct client returns for this request, whatever the range limits.

        ``kind`` is ``"components"``, ``"sites"`` or ``"bulk"`` (partner monthly data);
        ``start``/``end`` naive (wall time in ``tz``) or aware. Rows are
        ``{"id", "ts": aware datetime in tz, <field>: float or None}``, in time order.
        ``as_of``: the moment (aware datetime or unix seconds) whose data to answer with,
        upload lag and revisions included; default the simulator's clock.
        ``field_params``: the PV model's parameters, for modelled fields.
        """
        if kind not in ("components", "sites", "bulk"):
            raise ValueError(f"kind must be 'components', 'sites' or 'bulk', not {kind!r}")
        zone = ZoneInfo(tz)
        if isinstance(as_of, datetime):
            if as_of.tzinfo is None:
                raise ValueError("as_of must be an aware datetime or unix seconds")
            as_of = as_of.timestamp()
        lo = _instant(start, zone)
        hi = _instant(end, zone)
        if kind == "bulk":
            raw = self.bulk_rows(ident, fields, lo, hi, zone)
            raw.sort(key=lambda r: (datetime.fromisoformat(r["ts"]), r["id"]))
        else:
            raw = self.rows(
                kind,
                ident,
                fields=fields,
                start=lo,
                end=hi,
                tz=zone,
                gran=gran,
                now=as_of,
                params=field_params,
            )
        rows = []
        for item in raw:
            row: dict[str, Any] = {
                "id": item["id"],
                "ts": datetime.fromisoformat(item["ts"]).astimezone(zone),
            }
            for name in fields:
                row[name] = item.get(name)
            rows.append(row)
        return rows
