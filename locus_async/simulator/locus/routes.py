"""The simulated Locus route table: every documented endpoint under an entity, dispatched to
its handler; the cache of answers over past ranges.

Owns: routing and the response cache. Must never: build a body itself (the handlers do).
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from locus_async.simulator._calendar import parse_local
from locus_async.simulator._http import SimRequest, SimResponse, _ByteBoundedCache
from locus_async.simulator.locus.auth import TokenAuth
from locus_async.simulator.locus.state import (
    _ENDPOINTS,
    _ROUTES,
    Account,
    _json,
    _Reject,
    _with_unknown,
    error_response,
)


class Router(TokenAuth):
    """Routing every documented endpoint to its handler."""

    def handle(self, request: SimRequest) -> SimResponse:
        """Answer one request (no latency, faults or concurrency rule: see the adapter)."""
        if request.path == "/oauth/token":
            response = self._token(request)
            if self.unknown_fields and response.status == 200:
                response = SimResponse(
                    200, orjson.dumps(_with_unknown(orjson.loads(response.body)))
                )
            return response
        record = self._bearer(request)
        if record is None:
            return error_response(401, self.refusal(request))
        if record.revoked:
            return error_response(401, "Token revoked")
        if self.clock() >= record.expires_at:
            return error_response(401, "Token expired")
        if request.method != "GET":
            return error_response(405, "Method not allowed")
        match = _ROUTES[0][0].match(request.path)
        if match is None:
            return error_response(404, "Not found")
        kind, ident, rest = match.group(1), int(match.group(2)), (match.group(3) or "").rstrip("/")
        partner = self.fleet.partner_of(kind, ident)
        if kind == "components" and not self.listed(ident):
            partner = None
        if partner is None:
            return error_response(404, f"{kind[:-1].capitalize()} {ident} not found")
        if partner not in record.account.partner_ids:
            return error_response(403, "You do not have permission to access this entity")
        suffix = rest.strip("/").replace("/", "_") or "get"
        if suffix not in _ENDPOINTS[kind]:
            return error_response(404, "Not found")
        handler = getattr(self, f"_{kind}_{suffix}")
        params = dict(request.params)
        cache_key = self._cache_key(suffix, record.account, request, params)
        if cache_key is not None:
            cached = self._responses.get(cache_key)
            if cached is not None:
                body_bytes, window = cached
                self.stats.data_windows.append(window)
                return SimResponse(200, body_bytes, cache_key=cache_key)
        try:
            body = handler(ident, params, request)
        except _Reject as rejection:
            return error_response(rejection.status, rejection.message)
        response = _json(200, {"statusCode": 200, **self._extra(body)})
        if cache_key is not None:
            self._responses.put(cache_key, response.body, self.stats.data_windows[-1])
            return SimResponse(200, response.body, cache_key=cache_key)
        return response

    def clear_response_cache(self) -> None:
        """Forget cached answers (the minute data stays cached)."""
        self._responses = _ByteBoundedCache(self._responses.limit)

    def _cache_key(
        self, suffix: str, account: Account, request: SimRequest, params: dict[str, str]
    ) -> str | None:
        """A key for data answers that cannot change: their whole range lies in the past."""
        if suffix not in ("data", "sites_data") or params.get("gran") == "latest":
            return None
        try:
            end = parse_local(params.get("end") or "", ZoneInfo(params.get("tz") or ""))
        except (ValueError, ZoneInfoNotFoundError, OSError):
            return None
        settled = self.clock() - 86_400
        if self.timeline is not None:
            settled = min(settled, self.timeline.settled_before(self.clock()))
        if end >= settled:
            return None
        return f"{account.client_id} {request.path}?{request.query}"

    def _extra(self, body: dict[str, Any]) -> dict[str, Any]:
        if not self.unknown_fields:
            return body
        extended: dict[str, Any] = _with_unknown(body)
        return extended
