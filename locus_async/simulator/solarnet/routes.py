"""The simulated SolarUser route table: every documented method and path (and the path forms
clients use), dispatched to its handler.

Owns: routing. Must never: build a body itself (the handlers do).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import parse_qsl

from locus_async.simulator._http import SimRequest, SimResponse
from locus_async.simulator.solarnet.auth import Snws2Auth
from locus_async.simulator.solarnet.datum import DatumHandlers
from locus_async.simulator.solarnet.instructions import InstructionHandlers
from locus_async.simulator.solarnet.metadata import MetadataHandlers
from locus_async.simulator.solarnet.nodes import NodeHandlers
from locus_async.simulator.solarnet.state import (
    API_PREFIX,
    ASSOCIATE,
    _Call,
    _denied,
    _Fail,
    _not_found,
)
from locus_async.simulator.solarnet.tokens import TokenHandlers
from locus_async.solarnetwork._core.signing import (
    signed_inputs,
)


class Router(
    Snws2Auth, NodeHandlers, MetadataHandlers, DatumHandlers, InstructionHandlers, TokenHandlers
):
    """Routing every documented endpoint to its handler."""

    def handle(self, request: SimRequest) -> SimResponse:
        try:
            return self._dispatch(request)
        except _Fail as fail:
            return self._failure(fail)
        except Exception as exc:  # a simulator bug: answer like the server would, keep it
            self.last_error = exc
            self.stats.counters["internal_errors"] += 1
            return self._failure(_Fail(500, "Internal error"))

    def _dispatch(self, request: SimRequest) -> SimResponse:
        if request.path == ASSOCIATE:
            return self._associate(request)
        if not request.path.startswith(API_PREFIX + "/"):
            raise _not_found("Endpoint")
        params, body_hash = signed_inputs(
            parse_qsl(request.query, keep_blank_values=True), request.headers, request.body
        )
        try:
            token = self.authenticate(request, params, body_hash)
        except _Fail:
            self.stats.counters["auth_rejected"] += 1
            raise
        rest = request.path[len(API_PREFIX) :]
        for method, pattern, handler, streamed in self._routes:
            found = pattern.match(rest)
            if found is None or method != request.method:
                continue
            accept = request.header("accept") or ""
            if streamed and "json" not in accept and "*/*" not in accept:
                raise _Fail(406, "An Accept header (application/json) is required")
            if token.type != "User" and handler != self._whoami:
                raise _denied()
            self.settle()
            return handler(_Call(request, token, params, self.clock(), found.groups()))
        if any(p.match(rest) for _, p, _, _ in self._routes):
            raise _Fail(405, f"Request method '{request.method}' not supported")
        raise _not_found("Endpoint")

    def _route_table(
        self,
    ) -> list[tuple[str, re.Pattern[str], Callable[[_Call], SimResponse], bool]]:
        loc = re.escape(self.location_prefix)
        table: list[tuple[str, str, Callable[[_Call], SimResponse], bool]] = [
            ("GET", r"/whoami", self._whoami, False),
            ("GET", r"/nodes", self._nodes, False),
            ("GET", r"/nodes/archived", self._archived, False),
            ("POST", r"/nodes/archived", self._set_archived, False),
            ("GET", r"/nodes/create-cert", self._create_cert, False),
            ("POST", r"/nodes/create-cert", self._create_cert, False),
            ("GET", r"/nodes/cert/(\d+)", self._cert, False),
            ("GET", r"/nodes/meta", self._node_meta_list, False),
            ("GET", r"/nodes/meta/(\d+)", self._node_meta_get, False),
            ("POST", r"/nodes/meta/(\d+)", self._node_meta_write, False),
            ("PUT", r"/nodes/meta/(\d+)", self._node_meta_write, False),
            ("DELETE", r"/nodes/meta/(\d+)", self._node_meta_write, False),
            ("GET", r"/users/meta", self._user_meta_get, False),
            ("POST", r"/users/meta", self._user_meta_write, False),
            ("PUT", r"/users/meta", self._user_meta_write, False),
            ("DELETE", r"/users/meta", self._user_meta_write, False),
            ("POST", r"/datum/meta/(\d+)(?:/(.+))?", self._datum_meta_write, False),
            ("PUT", r"/datum/meta/(\d+)(?:/(.+))?", self._datum_meta_write, False),
            ("DELETE", r"/datum/meta/(\d+)(?:/(.+))?", self._datum_meta_write, False),
            ("POST", loc + r"/(\d+)(?:/(.+))?", self._location_meta_write, False),
            ("PUT", loc + r"/(\d+)(?:/(.+))?", self._location_meta_write, False),
            ("DELETE", loc + r"/(\d+)(?:/(.+))?", self._location_meta_write, False),
            ("GET", r"/datum/auxiliary", self._aux_list_or_view, False),
            ("POST", r"/datum/auxiliary", self._aux_store, False),
            ("POST", r"/datum/auxiliary/move", self._aux_move, False),
            ("DELETE", r"/datum/auxiliary", self._aux_delete, False),
            ("GET", r"/datum/auxiliary/([^/]+)/(\d+)/([^/]+)/(.+)", self._aux_view, False),
            ("DELETE", r"/datum/auxiliary/([^/]+)/(\d+)/([^/]+)/(.+)", self._aux_delete, False),
            ("GET", r"/datum/maint/agg/stale", self._stale_list, False),
            ("POST", r"/datum/maint/agg/stale", self._stale_mark, False),
            ("GET", r"/datum/stream/meta/node(?:/([^/]+))?", self._stream_view, False),
            ("PATCH", r"/datum/stream/meta/node(?:/([^/]+))?", self._stream_ids, False),
            ("POST", r"/datum/stream/meta/node(?:/([^/]+))?", self._stream_update, False),
            ("GET", r"/instr", self._instr_list, True),
            ("POST", r"/instr/add(?:/([^/]+))?", self._instr_add, False),
            ("POST", r"/instr/exec(?:/([^/]+))?", self._instr_exec, False),
            ("GET", r"/instr/view", self._instr_view, True),
            ("GET", r"/instr/viewActive", self._instr_active, True),
            ("GET", r"/instr/viewPending", self._instr_pending, True),
            ("POST", r"/instr/updateState", self._instr_update_state, False),
            ("GET", r"/user/auth-tokens", self._tokens, False),
            ("DELETE", r"/user/auth-tokens", self._token_delete, False),
            ("POST", r"/user/auth-tokens/generate/([^/]+)", self._token_generate, False),
            ("POST", r"/user/auth-tokens/info", self._token_info, False),
            ("POST", r"/user/auth-tokens/status", self._token_status, False),
            ("PATCH", r"/user/auth-tokens/policy", self._token_policy, False),
            ("PUT", r"/user/auth-tokens/policy", self._token_policy, False),
            ("GET", r"/user/events", self._events, True),
        ]
        return [(m, re.compile(p + r"\Z"), h, s) for m, p, h, s in table]
