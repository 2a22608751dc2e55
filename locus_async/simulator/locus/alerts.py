"""Handlers of the simulated Locus alerts: generated per component, filtered by type, status,
priority, updated-since and open-during, with their documented limits.

Owns: the alert rules and bodies. Must never: read the real clock.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from locus_async.simulator._calendar import format_ts
from locus_async.simulator._http import SimRequest
from locus_async.simulator._physics import epoch_day
from locus_async.simulator.locus.state import (
    ALERT_TYPES,
    OPEN_DURING_MAX,
    UPDATED_SINCE_MAX,
    CoreState,
    _Alert,
    _optional_local,
    _Reject,
    _zone,
)


class AlertHandlers(CoreState):
    """The alert endpoints."""

    def _component_alerts(self, cid: int) -> list[_Alert]:
        found = self._alert_cache.get(cid)
        if found is not None:
            return found
        located = self.fleet.components[cid]
        rng = random.Random(self.seed * 15_485_863 + cid)
        commissioned = located.component.commissioned or date(2021, 1, 1)
        t = epoch_day(commissioned) * 86_400 + 3600 * 10
        horizon = self.clock() + 30 * 86_400
        alerts: list[_Alert] = []
        while t < horizon:
            t += int(rng.expovariate(1 / (9 * 86_400))) + 3600
            kind = rng.choice(ALERT_TYPES)
            duration = int(rng.uniform(0.5, 96) * 3600)
            end = t + duration
            description = (
                ("VDC high", "A voltage higher than 2100 V is present on the DC bus.")
                if kind == "Device Fault"
                else None
            )
            alerts.append(
                _Alert(
                    id=cid * 10_000 + len(alerts) + 1,
                    component_id=cid,
                    alert_type=kind,
                    priority=rng.choice(("High", "Medium", "Low")),
                    start=t,
                    end=end,
                    updated=end + int(rng.uniform(60, 3600)),
                    description=description,
                )
            )
        self._alert_cache[cid] = alerts
        return alerts

    def alerts_as_of(self, component_ids: Iterable[int]) -> list[_Alert]:
        """Alerts that have started by now; those whose end lies ahead are open."""
        now = self.clock()
        out: list[_Alert] = []
        for cid in component_ids:
            for alert in self._component_alerts(cid):
                if alert.start > now:
                    break
                if alert.end is not None and alert.end > now:
                    out.append(attrs.evolve(alert, end=None, updated=alert.start + 60))
                else:
                    out.append(alert)
        return out

    def _alert_wire(self, alert: _Alert, tz: ZoneInfo) -> dict[str, Any]:
        located = self.fleet.components[alert.component_id]
        body: dict[str, Any] = {
            "id": alert.id,
            "componentId": alert.component_id,
            "componentName": located.component.name,
            "siteId": located.site.id,
            "siteName": located.site.name,
            "alertType": alert.alert_type,
            "priority": alert.priority,
            "start": format_ts(alert.start, tz),
            "updated": format_ts(alert.updated, tz),
        }
        if alert.end is not None:
            body["end"] = format_ts(alert.end, tz)
        if alert.description is not None:
            body["descriptionShort"], body["descriptionLong"] = alert.description
        return body

    def _alerts(
        self, component_ids: list[int], params: dict[str, str], *, partner: bool
    ) -> dict[str, Any]:
        tz = _zone(params.get("tz"))
        since = _optional_local(params, "updatedSince", tz)
        low = _optional_local(params, "openDuringMin", tz)
        high = _optional_local(params, "openDuringMax", tz)
        if (low is None) != (high is None):
            raise _Reject(400, "openDuringMin and openDuringMax must be given together")
        if low is not None and high is not None and low >= high:
            raise _Reject(400, "openDuringMin must be before openDuringMax")
        if partner:
            if since is None and low is None:
                raise _Reject(
                    400, "Either updatedSince or openDuringMin and openDuringMax are required"
                )
            if since is not None and since < self.clock() - UPDATED_SINCE_MAX.total_seconds():
                raise _Reject(400, "updatedSince is limited to up to 7 days ago")
            if (
                low is not None
                and high is not None
                and high - low > OPEN_DURING_MAX.total_seconds()
            ):
                raise _Reject(400, "Open during time period is limited to 31 days")
        types = params.get("alertType")
        wanted_types = {t.strip() for t in types.split(",")} if types else None
        if wanted_types and not wanted_types <= set(ALERT_TYPES):
            raise _Reject(400, f"Invalid alertType {types!r}")
        status = params.get("status")
        if status is not None and status.lower() not in ("open", "closed"):
            raise _Reject(400, "status must be open or closed")
        priorities = params.get("priority")
        wanted_priorities = (
            {p.strip().lower() for p in priorities.split(",")} if priorities else None
        )
        if wanted_priorities and not wanted_priorities <= {"high", "medium", "low"}:
            raise _Reject(400, "priority must be high, medium or low")
        out = []
        for alert in self.alerts_as_of(component_ids):
            if since is not None and alert.updated < since:
                continue
            if (
                low is not None
                and high is not None
                and (alert.start > high or (alert.end is not None and alert.end < low))
            ):
                continue
            if wanted_types and alert.alert_type not in wanted_types:
                continue
            if status is not None and (alert.end is None) != (status.lower() == "open"):
                continue
            if wanted_priorities and alert.priority.lower() not in wanted_priorities:
                continue
            out.append(self._alert_wire(alert, tz))
        return {"alerts": out}

    def _partners_alerts(self, pid: int, params: dict[str, str], _: SimRequest) -> dict[str, Any]:
        ids = [cid for cid, located in self.fleet.components.items() if located.partner.id == pid]
        return self._alerts(ids, params, partner=True)

    def _sites_alerts(self, sid: int, params: dict[str, str], _: SimRequest) -> dict[str, Any]:
        ids = [c.id for c in self.fleet.site_components(sid)]
        return self._alerts(ids, params, partner=False)

    def _components_alerts(self, cid: int, params: dict[str, str], _: SimRequest) -> dict[str, Any]:
        return self._alerts([cid], params, partner=False)
