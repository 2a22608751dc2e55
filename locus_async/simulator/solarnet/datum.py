"""Handlers of datum records: datum auxiliary records, stale aggregates and stream metadata.

Owns: their bodies and keys. Must never: read the real clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from locus_async.simulator._http import SimResponse
from locus_async.simulator._snstate import (
    SnNode,
)
from locus_async.simulator.solarnet.state import (
    CoreState,
    _Call,
    _epoch_or_text,
    _Fail,
    _invalid,
    _not_found,
    fmt,
    parse_date,
)


class DatumHandlers(CoreState):
    """The datum auxiliary, stale aggregate and stream endpoints."""

    def _aux_wire(self, record: dict[str, Any]) -> dict[str, Any]:
        node = self.world.nodes[record["nodeId"]]
        local = datetime.fromtimestamp(record["created"] / 1000, ZoneInfo(node.time_zone))
        out: dict[str, Any] = {
            "created": fmt(record["created"] / 1000),
            "nodeId": record["nodeId"],
            "sourceId": record["sourceId"],
            "type": record["type"],
            "localDate": local.strftime("%Y-%m-%d"),
            "localTime": local.strftime("%H:%M"),
            "updated": fmt(record["updated"]),
        }
        for part in ("final", "start"):
            sample = dict(record[part])
            sample["t"] = list(dict.fromkeys([*sample.get("t", []), part, record["type"]]))
            out[part] = sample
        if record.get("notes") is not None:
            out["notes"] = record["notes"]
        if record.get("meta") is not None:
            out["meta"] = record["meta"]
        return out

    def _aux_key(
        self, call: _Call, body: dict[str, Any], *, epoch_only: bool
    ) -> tuple[str, int, int, str]:
        for name in ("type", "nodeId", "created", "sourceId"):
            if body.get(name) in (None, ""):
                raise _invalid(f"{name} is required", name)
        created = body["created"]
        if epoch_only and (isinstance(created, bool) or not isinstance(created, int)):
            raise _invalid("created must be a millisecond epoch here", "created")
        node = self._node(call, body["nodeId"])
        return (
            str(body["type"]),
            node.id,
            round(_epoch_or_text(created, "created") * 1000),
            str(body["sourceId"]),
        )

    def _aux_record(
        self, call: _Call, body: dict[str, Any], key: tuple[str, int, int, str]
    ) -> dict[str, Any]:
        for part in ("final", "start"):
            if not isinstance(body.get(part), dict):
                raise _invalid(f"{part} must be a datum sample object", part)
        if body.get("meta") is not None and not isinstance(body["meta"], dict):
            raise _invalid("meta must be an object", "meta")
        type_, node_id, created, source = key
        return {
            "type": type_,
            "nodeId": node_id,
            "created": created,
            "sourceId": source,
            "final": body["final"],
            "start": body["start"],
            "notes": body.get("notes"),
            "meta": body.get("meta"),
            "updated": call.now,
        }

    def _aux_store(self, call: _Call) -> SimResponse:
        body = call.json()
        if not isinstance(body, dict):
            raise _invalid("The record must be an object")
        key = self._aux_key(call, body, epoch_only=False)
        self.world.auxiliary[key] = self._aux_record(call, body, key)
        return self._ok()

    def _aux_move(self, call: _Call) -> SimResponse:
        body = call.json()
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("from"), dict)
            or not isinstance(body.get("to"), dict)
        ):
            raise _invalid("from and to objects are required")
        old = self._aux_key(call, body["from"], epoch_only=True)
        new = self._aux_key(call, body["to"], epoch_only=True)
        record = self._aux_record(call, body["to"], new)
        if old not in self.world.auxiliary:
            return self._ok(False)
        del self.world.auxiliary[old]
        self.world.auxiliary[new] = record
        return self._ok(True)

    def _aux_lookup(self, call: _Call) -> tuple[str, int, int, str]:
        if call.groups:
            type_, node_id, when, source = call.groups
        else:
            type_, node_id, when, source = (
                call.get(n) or "" for n in ("type", "nodeId", "date", "sourceId")
            )
        if not (type_ and node_id and when and source):
            raise _invalid("type, nodeId, date and sourceId are required")
        node = self._node(call, node_id)
        created = round(parse_date(when, "date") * 1000)
        return (type_, node.id, created, source)

    def _aux_view(self, call: _Call) -> SimResponse:
        record = self.world.auxiliary.get(self._aux_lookup(call))
        if record is None:
            raise _not_found("Datum auxiliary")
        return self._ok(self._aux_wire(record))

    def _aux_list_or_view(self, call: _Call) -> SimResponse:
        if call.get("type") and call.get("date"):
            return self._aux_view(call)
        # No node named: every node the token may see (the reference requires none).
        ids = self._node_ids(call, required=False) or [
            n.id for n in self._visible_nodes(call, archived=False)
        ]
        sources = self._sources(call)
        start, end = self._range(call)
        items = [
            self._aux_wire(r)
            for key, r in sorted(self.world.auxiliary.items())
            if r["nodeId"] in ids
            and (sources is None or any(p.match(r["sourceId"]) for p in sources))
            and (start is None or r["created"] / 1000 >= start)
            and (end is None or r["created"] / 1000 < end)
        ]
        items.sort(key=lambda i: (i["created"], i["nodeId"], i["sourceId"]))
        return self._listing(call, items, ("created", "node", "source", "updated"))

    def _aux_delete(self, call: _Call) -> SimResponse:
        key = self._aux_lookup(call)
        self.world.auxiliary.pop(key, None)
        return self._ok()

    def _stale_list(self, call: _Call) -> SimResponse:
        ids = self._node_ids(call)
        sources = self._sources(call)
        kind = call.get("type")
        if kind is not None and kind not in ("h", "d", "m"):
            raise _invalid("type must be h, d or m", "type")
        start, end = self._range(call)
        items = [
            {
                "nodeId": node_id,
                "sourceId": source,
                "startDate": fmt(begin),
                "kind": k,
                "created": fmt(created),
            }
            for (k, node_id, source, begin), created in self.world.stale.items()
            if node_id in ids
            and (kind is None or k == kind)
            and (sources is None or any(p.match(source) for p in sources))
            and (start is None or begin >= start)
            and (end is None or begin < end)
        ]
        items.sort(key=lambda i: (i["kind"], i["nodeId"], i["sourceId"], i["startDate"]))
        return self._listing(call, items, ("created", "kind", "node", "source", "start"))

    def _stale_mark(self, call: _Call) -> SimResponse:
        ids = self._node_ids(call)
        sources = self._sources(call)
        if sources is None:
            raise _invalid("A source ID is required", "sourceId")
        local = call.get("localStartDate") is not None
        marked = 0
        for node_id in ids:
            node = self.world.nodes[node_id]
            zone = ZoneInfo(node.time_zone) if local else None
            start, end = self._range(call, zone, local=local)
            if start is None or end is None:
                raise _invalid("The date range is required", "startDate")
            if end <= start:
                raise _invalid("The end date must be after the start date", "endDate")
            if end - start > 366 * 86400:
                raise _invalid("The date range is too large", "endDate")
            names = [s for s in node.sources if any(p.match(s) for p in sources)]
            hour = int(start // 3600 * 3600)
            while hour < end:
                for source in names:
                    self.world.stale[("h", node_id, source, hour)] = call.now
                    marked += 1
                hour += 3600
        self.stats.counters["stale_marked"] += marked
        return self._ok()

    def _stream(self, call: _Call) -> tuple[str, SnNode, str]:
        ident = call.groups[0] or call.get("streamId")
        if not ident:
            raise _invalid("streamId is required", "streamId")
        found = self.world.streams.get(ident)
        if found is None:
            raise _not_found(f"Stream {ident}")
        node = self._node(call, found[0])
        return ident, node, found[1]

    def _stream_wire(self, ident: str, node: SnNode, source: str) -> dict[str, Any]:
        i, a, s = node.sources.get(source, ([], [], []))
        return {
            "streamId": ident,
            "zone": node.time_zone,
            "kind": "n",
            "objectId": node.id,
            "sourceId": source,
            "i": list(i),
            "a": list(a),
            "s": list(s),
        }

    def _stream_view(self, call: _Call) -> SimResponse:
        return self._ok(self._stream_wire(*self._stream(call)))

    def _move_stream(
        self, call: _Call, ident: str, node: SnNode, source: str
    ) -> tuple[SnNode, str]:
        moved_to = call.get("nodeId")
        new_node = self._node(call, moved_to) if moved_to else node
        new_source = call.get("sourceId") or source
        if (new_node.id, new_source) != (node.id, source):
            if new_source in new_node.sources:
                raise _Fail(
                    422, "A stream with that node and source already exists", code="DAO.00101"
                )
            new_node.sources[new_source] = node.sources.pop(source, ([], [], []))
            self.world.streams[ident] = (new_node.id, new_source)
        return new_node, new_source

    def _stream_ids(self, call: _Call) -> SimResponse:
        ident, node, source = self._stream(call)
        node, source = self._move_stream(call, ident, node, source)
        return self._ok({"streamId": ident, "kind": "n", "objectId": node.id, "sourceId": source})

    def _stream_update(self, call: _Call) -> SimResponse:
        ident, node, source = self._stream(call)
        current = node.sources.get(source, ([], [], []))
        lists = []
        for key, now in zip(("i", "a", "s"), current, strict=True):
            given = call.get(key)
            names = [n for n in given.split(",") if n] if given is not None else list(now)
            if len(names) < len(now):
                return self._ok()
            lists.append(names)
        node, source = self._move_stream(call, ident, node, source)
        node.sources[source] = (lists[0], lists[1], lists[2])
        return self._ok(self._stream_wire(ident, node, source))
