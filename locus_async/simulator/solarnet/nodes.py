"""Handlers of nodes: whoami, association, lists (archived too), archiving, certificates.

Owns: node bodies. Must never: read the real clock.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import orjson

from locus_async.simulator._http import SimRequest, SimResponse
from locus_async.simulator._snstate import (
    SnNode,
)
from locus_async.simulator.solarnet.state import CoreState, _Call, _Fail, _invalid, fmt


class NodeHandlers(CoreState):
    """The node endpoints."""

    def _whoami(self, call: _Call) -> SimResponse:
        return self._ok({"token": call.token.id, "tokenType": call.token.type})

    def _associate(self, request: SimRequest) -> SimResponse:
        if request.method != "POST":
            raise _Fail(405, "Request method not supported")
        form = dict(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))
        form.update(parse_qsl(request.query, keep_blank_values=True))
        for name in ("username", "confirmationKey", "keystorePassword"):
            if not form.get(name):
                raise _invalid(f"{name} is required", name)
        invitation = next(
            (
                i
                for i in self.world.invitations
                if i.username == form["username"] and i.confirmation_key == form["confirmationKey"]
            ),
            None,
        )
        if invitation is None:
            raise _Fail(422, "Invitation not found or already used", code="REG.00001")
        self.world.invitations.remove(invitation)
        node = self._new_node(invitation.user_id, invitation.time_zone, invitation.country)
        body = {
            "networkId": node.id,
            "networkCertificateStatus": "Active",
            "networkCertificateSubjectDN": f"UID={node.id},O=SolarNetwork",
            "networkCertificate": base64.b64encode(self._certificate(node)).decode(),
            "username": invitation.username,
            "confirmationKey": invitation.confirmation_key,
        }
        return SimResponse(200, orjson.dumps(body))

    def _new_node(self, user_id: int, zone: str, country: str) -> SnNode:
        world = self.world
        while world.next_node in world.nodes:
            world.next_node += 1
        user = world.users[user_id]
        node = SnNode(
            world.next_node, user_id, None, zone, country, user.location_id, created=self.clock()
        )
        world.nodes[node.id] = node
        return node

    @staticmethod
    def _certificate(node: SnNode) -> bytes:
        """Stand-in PKCS#12 bytes (a DER SEQUENCE header and a deterministic payload)."""
        payload = hashlib.sha256(f"solarnode-{node.id}".encode()).digest() * 8
        return b"\x30\x82" + len(payload).to_bytes(2, "big") + payload

    def _node_wire(self, node: SnNode) -> dict[str, Any]:
        user = self.world.users[node.user_id]
        out: dict[str, Any] = {
            "created": fmt(node.created),
            "id": node.id,
            "idAndName": f"{node.id} - {node.name}" if node.name else str(node.id),
            "node": {
                "created": fmt(node.created),
                "id": node.id,
                "locationId": node.location_id,
                "timeZone": node.time_zone,
            },
            "nodeLocation": {
                "country": node.country,
                "created": fmt(node.created),
                "id": node.location_id,
                "timeZoneId": node.time_zone,
            },
            "requiresAuthorization": node.private,
            "user": {
                "created": fmt(user.created),
                "email": user.email,
                "enabled": True,
                "id": user.id,
                "name": user.name,
            },
        }
        if node.name:
            out["name"] = node.name
        if node.description:
            out["description"] = node.description
        return out

    def _nodes(self, call: _Call) -> SimResponse:
        nodes = [self._node_wire(n) for n in self._visible_nodes(call, archived=False)]
        return self._ok(self._page(call, nodes))

    def _archived(self, call: _Call) -> SimResponse:
        return self._ok([self._node_wire(n) for n in self._visible_nodes(call, archived=True)])

    def _set_archived(self, call: _Call) -> SimResponse:
        ids = self._ints(call.get("nodeIds") or "", "nodeIds")
        flag = call.get("archived")
        if not ids or flag not in ("true", "false"):
            raise _invalid("nodeIds and archived (true or false) are required")
        nodes = [self._node(call, i) for i in ids]
        for node in nodes:
            node.archived = flag == "true"
        return self._ok()

    def _create_cert(self, call: _Call) -> SimResponse:
        zone, country, password = (
            call.get("timeZone"),
            call.get("country"),
            call.get("keystorePassword"),
        )
        if not zone or not country or not password:
            raise _invalid("timeZone, country and keystorePassword are required")
        try:
            ZoneInfo(zone)
        except (KeyError, ValueError):
            raise _invalid(f"Unknown time zone {zone}", "timeZone") from None
        node = self._new_node(call.token.user_id, zone, country)
        user = self.world.users[call.token.user_id]
        now = self.clock()
        return self._ok(
            {
                "created": fmt(now),
                "requiresAuthorization": False,
                "user": {
                    "id": user.id,
                    "created": fmt(user.created),
                    "name": user.name,
                    "email": user.email,
                    "enabled": True,
                    "locationId": user.location_id,
                },
                "node": {
                    "id": node.id,
                    "created": fmt(node.created),
                    "locationId": node.location_id,
                    "timeZone": node.time_zone,
                },
                "certificate": {
                    "created": fmt(now),
                    "status": "v",
                    "requestId": hashlib.md5(
                        f"{node.id}".encode(), usedforsecurity=False
                    ).hexdigest(),
                    "nodeId": node.id,
                    "userId": user.id,
                },
                "userId": user.id,
                "nodeLocation": {
                    "id": node.location_id,
                    "created": fmt(node.created),
                    "country": node.country,
                    "timeZoneId": node.time_zone,
                },
                "idAndName": str(node.id),
            }
        )

    def _cert(self, call: _Call) -> SimResponse:
        node = self._node(call, call.groups[0])
        return SimResponse(
            200,
            self._certificate(node),
            (
                ("content-type", "application/x-pkcs12"),
                ("content-disposition", f"attachment; filename=solarnode-{node.id}.p12"),
            ),
        )
