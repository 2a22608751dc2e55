"""Handlers of metadata documents: node, user, datum source and location source metadata, with
filters, merge (add) and replace (store).

Owns: metadata bodies. Must never: read the real clock.
"""

from __future__ import annotations

from typing import Any

from locus_async.simulator._http import SimResponse
from locus_async.simulator.solarnet.state import CoreState, _Call, _invalid, _merge, fmt
from locus_async.solarnetwork.filters import matches


class MetadataHandlers(CoreState):
    """The metadata endpoints."""

    @staticmethod
    def _document(call: _Call) -> dict[str, Any]:
        body = call.json()
        if not isinstance(body, dict):
            raise _invalid("The metadata must be an object")
        for key in ("m", "pm"):
            if key in body and not isinstance(body[key], dict):
                raise _invalid(f"Metadata {key} must be an object", key)
        if "t" in body and (
            not isinstance(body["t"], list) or not all(isinstance(t, str) for t in body["t"])
        ):
            raise _invalid("Metadata t must be a list of strings", "t")
        return {k: body[k] for k in ("m", "pm", "t") if k in body}

    def _write(self, store: dict[Any, dict[str, Any]], key: Any, call: _Call) -> SimResponse:
        """POST merges, PUT replaces, DELETE removes a metadata document."""
        method = call.request.method
        if method == "DELETE":
            store.pop(key, None)
            return self._ok()
        doc = self._document(call)
        old = store.get(key)
        now = call.now
        if method == "PUT" or old is None:
            new = dict(doc)
        else:
            new = {k: v for k, v in old.items() if k in ("m", "pm", "t")}
            for part in ("m", "pm"):
                if part in doc:
                    new[part] = _merge(new.get(part, {}), doc[part])
            if "t" in doc:
                new["t"] = list(dict.fromkeys([*new.get("t", []), *doc["t"]]))
        new["created"] = old["created"] if old is not None else now
        new["updated"] = now
        store[key] = new
        return self._ok()

    @staticmethod
    def _meta_wire(doc: dict[str, Any], **ids: Any) -> dict[str, Any]:
        out: dict[str, Any] = {
            **ids,
            "created": fmt(doc["created"]),
            "updated": fmt(doc["updated"]),
        }
        for key in ("m", "pm", "t"):
            if doc.get(key):
                out[key] = doc[key]
        return out

    def _node_meta_list(self, call: _Call) -> SimResponse:
        ids = self._node_ids(call, required=False) or [
            n.id for n in self._visible_nodes(call, archived=False)
        ]
        tree = self._filter(call, "metadataFilter")
        items = []
        for ident in sorted(ids):
            doc = self.world.node_meta.get(ident)
            if doc is None:
                continue
            if tree is not None and not matches(tree, doc):
                continue
            items.append(self._meta_wire(doc, nodeId=ident))
        return self._listing(call, items, ("created", "node", "updated"))

    def _node_meta_get(self, call: _Call) -> SimResponse:
        node = self._node(call, call.groups[0])
        doc = self.world.node_meta.get(node.id)
        results = [self._meta_wire(doc, nodeId=node.id)] if doc is not None else []
        return self._ok(self._page(call, results))

    def _node_meta_write(self, call: _Call) -> SimResponse:
        node = self._node(call, call.groups[0])
        return self._write(self.world.node_meta, node.id, call)

    def _user_meta_get(self, call: _Call) -> SimResponse:
        doc = self.world.user_meta.get(call.token.user_id)
        results = [self._meta_wire(doc, userId=call.token.user_id)] if doc is not None else []
        return self._ok(self._page(call, results))

    def _user_meta_write(self, call: _Call) -> SimResponse:
        return self._write(self.world.user_meta, call.token.user_id, call)

    def _source_of(self, call: _Call) -> str:
        source = call.groups[1] if len(call.groups) > 1 and call.groups[1] else call.get("sourceId")
        if not source:
            raise _invalid("A source ID is required", "sourceId")
        return source

    def _datum_meta_write(self, call: _Call) -> SimResponse:
        node = self._node(call, call.groups[0])
        return self._write(self.world.datum_meta, (node.id, self._source_of(call)), call)

    def _location_meta_write(self, call: _Call) -> SimResponse:
        key = (int(call.groups[0]), self._source_of(call))
        return self._write(self.world.location_meta, key, call)
