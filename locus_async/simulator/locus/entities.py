"""Handlers of the simulated Locus entities: partners' sites, clients and components; clients;
sites with install info and model settings; components.

Owns: entity bodies and the wildcard filters. Must never: read the real clock.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from locus_async.simulator._http import SimRequest
from locus_async.simulator.locus.state import CoreState, _like


class EntityHandlers(CoreState):
    """The entity endpoints."""

    def _partners_sites(self, pid: int, params: dict[str, str], _: SimRequest) -> dict[str, Any]:
        return {
            "sites": [
                {"statusCode": 200, **self.fleet.site_wire(s)} for s in self._partner_sites(pid)
            ]
        }

    def _partners_clients(self, pid: int, params: dict[str, str], _: SimRequest) -> dict[str, Any]:
        ids = [cid for cid, (_, p) in self.fleet.clients.items() if p.id == pid]
        return {"clients": [self.fleet.client_wire(c) for c in ids]}

    def _partners_components(
        self, pid: int, params: dict[str, str], _: SimRequest
    ) -> dict[str, Any]:
        node_id, notes = params.get("nodeId"), params.get("notes")
        out = []
        for cid, located in self.fleet.components.items():
            if located.partner.id != pid or not self.listed(cid):
                continue
            if node_id is not None and not _like(node_id, located.component.node_id):
                continue
            if notes is not None and not _like(notes, located.component.notes):
                continue
            out.append(self.fleet.component_wire(cid))
        return {"components": out}

    def _clients_get(self, cid: int, params: dict[str, str], _: SimRequest) -> dict[str, Any]:
        return self.fleet.client_wire(cid)

    def _clients_sites(self, cid: int, params: dict[str, str], _: SimRequest) -> dict[str, Any]:
        ids = [sid for sid, (_, c, _) in self.fleet.sites.items() if c.id == cid]
        return {"sites": [{"statusCode": 200, **self.fleet.site_wire(s)} for s in ids]}

    def _clients_components(
        self, cid: int, params: dict[str, str], _: SimRequest
    ) -> dict[str, Any]:
        ids = [
            i
            for i, located in self.fleet.components.items()
            if located.client.id == cid and self.listed(i)
        ]
        return {"components": [self.fleet.component_wire(i) for i in ids]}

    def _sites_get(self, sid: int, params: dict[str, str], _: SimRequest) -> dict[str, Any]:
        return self.fleet.site_wire(sid)

    def _sites_components(self, sid: int, params: dict[str, str], _: SimRequest) -> dict[str, Any]:
        return {
            "components": [
                self.fleet.component_wire(c.id)
                for c in self.fleet.site_components(sid)
                if self.listed(c.id)
            ]
        }

    def _sites_installinfo(self, sid: int, params: dict[str, str], _: SimRequest) -> dict[str, Any]:
        site = self.fleet.sites[sid][0]
        body: dict[str, Any] = {"installer": site.installer, "installCrew": "Crew 7"}
        if site.startup is not None:
            body["installDate"] = (site.startup - timedelta(days=20)).isoformat()
            body["ptoDate"] = site.startup.isoformat()
            body["startupDate"] = site.startup.isoformat()
        return body

    def _sites_modelsettings(
        self, sid: int, params: dict[str, str], _: SimRequest
    ) -> dict[str, Any]:
        site = self.fleet.sites[sid][0]
        body: dict[str, Any] = {
            "size": site.size_kw,
            "mismatch": 98,
            "diodesAndConnections": 99,
            "dcWiring": 98,
            "soiling": 95,
            "sunTracking": 100,
            "nameplate": 100,
            "acWiring": 99,
            "transformer": 100,
        }
        if site.geolocated:
            body["tmy3Id"] = 724000 + sid % 1000
        return body

    def _components_get(self, cid: int, params: dict[str, str], _: SimRequest) -> dict[str, Any]:
        return self.fleet.component_wire(cid)
