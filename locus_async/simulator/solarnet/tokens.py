"""Handlers of security tokens (list, generate, info, status, policies, delete) and of user
events.

Owns: token and event bodies. Must never: read the real clock.
"""

from __future__ import annotations

import base64
import hashlib

from locus_async.simulator._http import SimResponse
from locus_async.simulator._snstate import (
    SnToken,
)
from locus_async.simulator.solarnet.state import (
    CoreState,
    _Call,
    _denied,
    _invalid,
    _not_found,
    fmt,
)
from locus_async.solarnetwork.filters import matches


class TokenHandlers(CoreState):
    """The token and event endpoints."""

    def _own_token(self, call: _Call) -> SnToken:
        ident = call.get("tokenId")
        if not ident:
            raise _invalid("tokenId is required", "tokenId")
        token = self.world.tokens.get(ident)
        if token is None:
            raise _not_found(f"Token {ident}")
        if token.user_id != call.token.user_id:
            raise _denied()
        return token

    def _tokens(self, call: _Call) -> SimResponse:
        mine = sorted(
            (t for t in self.world.tokens.values() if t.user_id == call.token.user_id),
            key=lambda t: (t.created, t.id),
        )
        return self._ok([t.wire(call.now, fmt) for t in mine])

    def _token_generate(self, call: _Call) -> SimResponse:
        kind = call.groups[0]
        if kind not in ("User", "ReadNodeData"):
            raise _invalid("type must be User or ReadNodeData", "type")
        self._counter += 1
        seed = f"{call.token.user_id}:{self._counter}:{call.now}".encode()
        ident = hashlib.blake2b(seed, digest_size=10, person=b"token-id").hexdigest()[:20]
        secret = base64.b32encode(
            hashlib.blake2b(seed, digest_size=20, person=b"secret").digest()
        ).decode()
        token = SnToken(
            ident,
            secret,
            call.token.user_id,
            type=kind,
            name=call.get("name"),
            description=call.get("description"),
            created=call.now,
        )
        self.world.tokens[ident] = token
        self.issued_secrets.append(secret)
        return self._ok(token.wire(call.now, fmt, with_secret=True))

    def _token_info(self, call: _Call) -> SimResponse:
        token = self._own_token(call)
        token.name = call.get("name")
        token.description = call.get("description")
        return self._ok()

    def _token_status(self, call: _Call) -> SimResponse:
        token = self._own_token(call)
        status = call.get("status")
        if status not in ("Active", "Disabled"):
            raise _invalid("status must be Active or Disabled", "status")
        token.status = status
        return self._ok()

    def _token_delete(self, call: _Call) -> SimResponse:
        token = self._own_token(call)
        del self.world.tokens[token.id]
        return self._ok()

    def _token_policy(self, call: _Call) -> SimResponse:
        token = self._own_token(call)
        policy = call.json()
        if not isinstance(policy, dict) or not policy:
            raise _invalid("The policy must be a non-empty object")
        if call.request.method == "PUT" or not token.policy:
            token.policy = dict(policy)
        else:
            merged = dict(token.policy)
            for key, value in policy.items():
                if isinstance(value, list) and isinstance(merged.get(key), list):
                    merged[key] = list(dict.fromkeys([*merged[key], *value]))
                else:
                    merged[key] = value
            token.policy = merged
        return self._ok(token.wire(call.now, fmt))

    def _events(self, call: _Call) -> SimResponse:
        start, end = self._range(call)
        tags: list[str] = []
        for value in call.all("tags"):
            tags += [t for t in value.split(",") if t]
        if call.get("tag"):
            tags.append(call.get("tag") or "")
        tree = self._filter(call, "searchFilter")
        found = [
            e
            for e in self.world.events
            if e["userId"] == call.token.user_id
            and (start is None or e["created"] >= start)
            and (end is None or e["created"] < end)
            and all(t in e["tags"] for t in tags)
            and (tree is None or matches(tree, e["data"], dotted=True))
        ]
        try:
            size = min(int(call.get("max") or self.page_cap), self.page_cap)
            offset = int(call.get("offset") or 0)
        except ValueError:
            raise _invalid("max and offset must be numbers") from None
        wires = [{**e, "created": fmt(e["created"])} for e in found]
        if self.paged_events:
            return self._ok(self._page(call, wires))
        return self._ok(wires[offset : offset + size], omit_empty=True)
