"""The simulated SolarNetwork SolarUser server: SNWS2 verification, every endpoint, state
in memory. Synchronous and I/O-free; the shared ASGI adapter (``_asgi``) serves it.

Owns: verifying each signature exactly as the server does (from the raw path, the decoded
query and form fields, the headers as received; sorted lower-case signed names that include
``host``, the date header, and every ``content-type``, ``content-md5``, ``digest`` and
``x-sn-*`` header present; a ``Digest`` that matches the body; a date within 15 minutes;
keys for the request day and the 6 before), the envelope and both list shapes, paging and
sorting, metadata filters, the rate limit (burst then a steady rate, 429 with
``X-SN-Rate-Limit-Retry-After`` in epoch milliseconds), access rules, and the simulated
nodes that carry instructions out (``_snstate``).
Must never: sleep or read the real clock (``clock`` is injected).
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import attrs
import orjson

from locus_async.simulator._core import SimRequest, SimResponse, SimulatorStats
from locus_async.simulator._snstate import (
    SnInstruction,
    SnNode,
    SnToken,
    SnWorld,
    default_world,
    finish_time,
    outcome,
    state_at,
)
from locus_async.solarnetwork._core.signing import (
    canonical_request,
    digest_header,
    signed_inputs,
    signing_key,
    string_to_sign,
)
from locus_async.solarnetwork.filters import Filter, matches, parse_filter

__all__ = ["API_PREFIX", "RateRule", "SolarNetCore"]

API_PREFIX: Final = "/solaruser/api/v1/sec"
ASSOCIATE: Final = "/solaruser/associate.json"
MAX_SKEW: Final = 15 * 60.0
KEY_DAYS: Final = 7
ALWAYS_SIGNED: Final = ("content-type", "content-md5", "digest")
STATES: Final = ("Unknown", "Queuing", "Queued", "Received", "Executing", "Declined", "Completed")

#: Sort keys of list endpoints and the item field each one orders by.
_SORT_FIELDS: Final = {
    "created": "created",
    "kind": "kind",
    "node": "nodeId",
    "source": "sourceId",
    "start": "startDate",
    "updated": "updated",
}

_AUTH: Final = re.compile(
    r"SNWS2 Credential=(?P<token>[^,;\s]+),SignedHeaders=(?P<names>[a-z0-9;-]+),"
    r"Signature=(?P<sig>[0-9a-f]{64})\Z"
)


@attrs.frozen
class RateRule:
    """A token bucket per security token: ``burst`` requests, refilled at ``per_second``."""

    burst: float = 2.0
    per_second: float = 1.0


class _Fail(Exception):
    """An error answer: status, ``code``, ``message``, optional ``errors`` and headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.errors = errors
        self.headers = headers


def _invalid(message: str, field: str | None = None) -> _Fail:
    errors = [{"field": field, "message": message}] if field else None
    return _Fail(422, message, code="VAL.00003", errors=errors)


def _denied() -> _Fail:
    return _Fail(403, "ACCESS_DENIED", code="SEC.00001")


def _not_found(what: str) -> _Fail:
    return _Fail(404, f"{what} not found", code="DAO.00102")


def _auth_failure(message: str, status: int = 401) -> _Fail:
    return _Fail(status, message, headers=(("x-sn-errormessage", message),))


def fmt(ts: float) -> str:
    """``2019-02-27 18:34:16.550Z``; six fraction digits when the instant has them."""
    moment = datetime.fromtimestamp(ts, UTC)
    micro = moment.microsecond
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{micro:06d}Z" if micro % 1000 else f"{text}.{micro // 1000:03d}Z"


_DATE: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?Z?\Z"
)


def parse_date(text: str, name: str, zone: ZoneInfo | None = None) -> float:
    """The request date forms: ``YYYY-MM-DD``, ``YYYY-MM-DDTHH:mm``, ``... HH:mm:ss.SSSZ``;
    UTC unless ``zone`` (node-local dates)."""
    match = _DATE.match(text.strip())
    if match is None:
        raise _invalid(f"{name} {text!r} is not a valid date", name)
    y, mo, d, h, mi, s, frac = match.groups()
    try:
        moment = datetime(
            int(y),
            int(mo),
            int(d),
            int(h or 0),
            int(mi or 0),
            int(s or 0),
            int((frac or "0").ljust(6, "0")[:6]),
            tzinfo=zone or UTC,
        )
    except ValueError:
        raise _invalid(f"{name} {text!r} is not a valid date", name) from None
    return moment.timestamp()


def _epoch_or_text(value: object, name: str) -> float:
    if isinstance(value, bool):
        raise _invalid(f"{name} must be a date", name)
    if isinstance(value, int | float):
        return float(value) / 1000.0
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return parse_date(value, name)
    raise _invalid(f"{name} must be a date", name)


def _ant(pattern: str) -> re.Pattern[str]:
    """An Ant-style source pattern: ``*`` within a segment, ``**`` across, ``?`` one char."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@attrs.define
class _Call:
    """One authenticated request, parsed."""

    request: SimRequest
    token: SnToken
    params: list[tuple[str, str]]
    now: float
    groups: tuple[str, ...] = ()

    def get(self, name: str) -> str | None:
        for key, value in self.params:
            if key == name:
                return value
        return None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.params if k == name]

    def json(self) -> Any:
        try:
            return orjson.loads(self.request.body)
        except orjson.JSONDecodeError:
            raise _Fail(422, "The request body could not be read", code="VAL.00001") from None


class SolarNetCore:
    """All state of one simulated SolarNetwork deployment."""

    def __init__(
        self,
        *,
        world: SnWorld | None = None,
        clock: Callable[[], float] = time.time,
        rate: RateRule | None = None,
        instruction_step: float = 1.0,
        page_cap: int = 1000,
        location_metadata_prefix: str = "/location/datum/meta",
    ) -> None:
        self.world = world or default_world()
        self.clock = clock
        self.rate = rate
        self.step = instruction_step
        self.page_cap = page_cap
        self.location_prefix = location_metadata_prefix.rstrip("/")
        self.stats = SimulatorStats()
        self._buckets: dict[str, tuple[float, float]] = {}
        self._counter = 0
        #: Every token secret this server generated (tests scan outputs for them).
        self.issued_secrets: list[str] = []
        #: The last unexpected exception a handler raised (answered 500), for debugging.
        self.last_error: BaseException | None = None
        self._routes = self._route_table()

    # ------------------------------------------------------------------ the adapter's Backend

    def fault_key(self, request: SimRequest) -> str:
        digest = hashlib.blake2b(request.body, digest_size=6).hexdigest()
        return f"{request.method} {request.path}?{request.query}#{digest}"

    def caller(self, request: SimRequest) -> tuple[str, int | None] | None:
        match = _AUTH.match(request.header("authorization") or "")
        return None if match is None else (match["token"], None)

    def rate_limited(self, request: SimRequest) -> SimResponse:
        retry_at = int((self.clock() + 1.0) * 1000)
        return self._failure(
            _Fail(
                429,
                "Rate limit exceeded",
                code="WEB.10000",
                headers=(("x-sn-rate-limit-retry-after", str(retry_at)),),
            )
        )

    def throttle(self, request: SimRequest) -> SimResponse | None:
        """The token bucket of the request's credential (when a RateRule is set)."""
        rule = self.rate
        match = _AUTH.match(request.header("authorization") or "")
        if rule is None or match is None:
            return None
        now = self.clock()
        level, at = self._buckets.get(match["token"], (rule.burst, now))
        level = min(rule.burst, level + (now - at) * rule.per_second)
        if level < 1.0:
            self._buckets[match["token"]] = (level, now)
            ready = now + (1.0 - level) / rule.per_second
            self.stats.counters["rate_rule_429s"] += 1
            return self._failure(
                _Fail(
                    429,
                    "Rate limit exceeded",
                    code="WEB.10000",
                    headers=(("x-sn-rate-limit-retry-after", str(int(ready * 1000) + 1)),),
                )
            )
        self._buckets[match["token"]] = (level - 1.0, now)
        return None

    def error(self, status: int, message: str) -> SimResponse:
        return self._failure(_Fail(status, message))

    def revoke(self, request: SimRequest) -> SimResponse | None:
        return None

    # ------------------------------------------------------------------ answers

    @staticmethod
    def _envelope(
        status: int, body: dict[str, Any], headers: Iterable[tuple[str, str]] = ()
    ) -> SimResponse:
        return SimResponse(
            status,
            orjson.dumps(body),
            (("content-type", "application/json;charset=UTF-8"), *headers),
        )

    def _failure(self, fail: _Fail) -> SimResponse:
        body: dict[str, Any] = {"success": False, "message": fail.message}
        if fail.code is not None:
            body["code"] = fail.code
        if fail.errors:
            body["errors"] = fail.errors
        return self._envelope(fail.status, body, fail.headers)

    def _ok(self, data: Any = None, *, omit_empty: bool = False) -> SimResponse:
        body: dict[str, Any] = {"success": True}
        if data is not None and not (omit_empty and data == []):
            body["data"] = data
        return self._envelope(200, body)

    # ------------------------------------------------------------------ authentication

    def authenticate(
        self, request: SimRequest, params: list[tuple[str, str]], body_hash: str
    ) -> SnToken:
        """The token of a correctly signed request, or a _Fail saying what is wrong.
        ``params`` and ``body_hash``: the request's parameters (query and form fields) and
        body hash as the server reads them (``signed_inputs``)."""
        match, names, when = self._signed_headers(request)
        body = request.body
        digest = request.header("digest")
        if digest is not None and not hmac.compare_digest(digest.strip(), digest_header(body)):
            raise _auth_failure("Digest does not match the body", status=403)
        md5 = request.header("content-md5")
        if md5 is not None:
            raw = hashlib.md5(body, usedforsecurity=False).digest()
            if md5.strip() not in (raw.hex(), base64.b64encode(raw).decode()):
                raise _auth_failure("Content-MD5 does not match the body", status=403)
        token = self.world.tokens.get(match["token"])
        if token is None:
            raise _auth_failure("Bad credentials", status=403)
        headers = {n: request.header(n) or "" for n in names}
        canonical = canonical_request(
            request.method, request.raw_path or request.path, params, headers, body_hash
        )
        if not self._signature_matches(canonical, when, token.secret, match["sig"]):
            self.stats.counters["bad_signatures"] += 1
            raise _auth_failure("Invalid signature")
        if token.status != "Active":
            raise _auth_failure("Token disabled", status=403)
        if token.expires is not None and self.clock() >= token.expires:
            raise _auth_failure("Token expired")
        self.stats.counters["signatures_verified"] += 1
        return token

    def _signed_headers(self, request: SimRequest) -> tuple[re.Match[str], list[str], datetime]:
        """The parsed header, the signed names and the request date, all checked."""
        header = request.header("authorization")
        if not header:
            raise _auth_failure("Missing Authorization header")
        match = _AUTH.match(header)
        if match is None:
            raise _auth_failure("Malformed SNWS2 Authorization header")
        names = match["names"].split(";")
        if names != sorted(set(names)):
            raise _auth_failure("SignedHeaders must be sorted, lower-case and unique")
        date_name = "x-sn-date" if request.header("x-sn-date") is not None else "date"
        for needed in ("host", date_name):
            if needed not in names:
                raise _auth_failure(f"The {needed} header must be signed")
        present = {n for n in request.headers if n in ALWAYS_SIGNED or n.startswith("x-sn-")}
        unsigned = sorted(present - set(names))
        if unsigned:
            raise _auth_failure(f"The {unsigned[0]} header must be signed")
        missing = [n for n in names if request.header(n) is None]
        if missing:
            raise _auth_failure(f"Signed header {missing[0]} is missing")
        raw_date = request.header(date_name) or ""
        try:
            when = email.utils.parsedate_to_datetime(raw_date)
        except (TypeError, ValueError):
            raise _auth_failure("Invalid request date") from None
        if not raw_date.endswith(" GMT") or when.tzinfo is None:
            raise _auth_failure("Invalid request date")
        if abs(when.timestamp() - self.clock()) > MAX_SKEW:
            raise _auth_failure("Date skew too large")
        return match, names, when

    @staticmethod
    def _signature_matches(canonical: str, when: datetime, secret: str, signature: str) -> bool:
        """Whether ``signature`` signs ``canonical`` with the key of one of the 7 days."""
        to_sign = string_to_sign(canonical, when).encode()
        for back in range(KEY_DAYS):
            key = signing_key(secret, (when - timedelta(days=back)).date())
            if hmac.compare_digest(hmac.new(key, to_sign, hashlib.sha256).hexdigest(), signature):
                return True
        return False

    # ------------------------------------------------------------------ dispatch

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

    # ------------------------------------------------------------------ shared rules

    def _node(self, call: _Call, node_id: int | str) -> SnNode:
        """A node the token may act on; 403 for anyone else's, 404 for none."""
        try:
            ident = int(node_id)
        except (TypeError, ValueError):
            raise _invalid(f"nodeId {node_id!r} is not a number", "nodeId") from None
        node = self.world.nodes.get(ident)
        if node is None:
            raise _not_found(f"Node {ident}")
        allowed = (call.token.policy or {}).get("nodeIds")
        if node.user_id != call.token.user_id or (allowed and ident not in allowed):
            raise _denied()
        return node

    def _ints(self, text: str, name: str) -> list[int]:
        try:
            return [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise _invalid(f"{name} must be a list of numbers", name) from None

    def _node_ids(self, call: _Call, *, required: bool = True) -> list[int]:
        values = call.all("nodeIds")
        ids: list[int] = []
        for value in values:
            ids += self._ints(value, "nodeIds")
        if not ids and call.get("nodeId"):
            ids = self._ints(call.get("nodeId") or "", "nodeId")
        if not ids and required:
            raise _invalid("A node ID is required", "nodeId")
        for ident in ids:
            self._node(call, ident)
        return ids

    def _sources(self, call: _Call) -> list[re.Pattern[str]] | None:
        values = call.all("sourceIds")
        if len(values) == 1:
            values = values[0].split(",")
        single = call.get("sourceId")
        if single is not None:
            values = [single, *values]
        return [_ant(v) for v in values] if values else None

    @staticmethod
    def _filter(call: _Call, name: str) -> Filter | None:
        """The parsed filter parameter ``name``; a malformed one is a 422."""
        text = call.get(name)
        if not text:
            return None
        try:
            return parse_filter(text)
        except ValueError as exc:
            raise _invalid(str(exc), name) from None

    def _page(self, call: _Call, items: list[Any]) -> dict[str, Any]:
        try:
            size = int(call.get("max") or self.page_cap)
            offset = int(call.get("offset") or 0)
        except ValueError:
            raise _invalid("max and offset must be numbers") from None
        if size < 1 or offset < 0:
            raise _invalid("max must be positive and offset not negative")
        size = min(size, self.page_cap)
        results = items[offset : offset + size]
        body: dict[str, Any] = {
            "startingOffset": offset,
            "returnedResultCount": len(results),
            "results": results,
        }
        if call.get("withoutTotalResultsCount") != "true":
            body["totalResults"] = len(items)
        return body

    def _listing(
        self, call: _Call, items: list[dict[str, Any]], fields: Iterable[str]
    ) -> SimResponse:
        """A paged answer, re-sorted by ``sorts[i].sortKey`` / ``sorts[i].descending`` over
        the allowed ``fields`` (unknown keys are ignored, as the server ignores
        ``sorts[i].key``); ``items`` come in the endpoint's default order."""
        allowed = set(fields)
        order: list[tuple[str, bool]] = []
        for index in range(8):
            key = call.get(f"sorts[{index}].sortKey")
            if key is None:
                break
            if key in allowed:
                order.append((key, call.get(f"sorts[{index}].descending") == "true"))
        for key, descending in reversed(order):
            field = _SORT_FIELDS[key]
            items = sorted(items, key=lambda item: item[field], reverse=descending)
        return self._ok(self._page(call, items))

    def _range(
        self, call: _Call, zone: ZoneInfo | None = None, *, local: bool = False
    ) -> tuple[float | None, float | None]:
        start_name, end_name = (
            ("localStartDate", "localEndDate") if local else ("startDate", "endDate")
        )
        start = call.get(start_name)
        end = call.get(end_name)
        return (
            parse_date(start, start_name, zone) if start else None,
            parse_date(end, end_name, zone) if end else None,
        )

    # ------------------------------------------------------------------ whoami, associate

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

    # ------------------------------------------------------------------ nodes

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

    def _visible_nodes(self, call: _Call, *, archived: bool) -> list[SnNode]:
        allowed = (call.token.policy or {}).get("nodeIds")
        return sorted(
            (
                n
                for n in self.world.nodes_of(call.token.user_id)
                if n.archived == archived and (not allowed or n.id in allowed)
            ),
            key=lambda n: n.id,
        )

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

    # ------------------------------------------------------------------ metadata

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

    # ------------------------------------------------------------------ datum auxiliary

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
        ids = self._node_ids(call)
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

    # ------------------------------------------------------------------ stale aggregates

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

    # ------------------------------------------------------------------ stream metadata

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

    # ------------------------------------------------------------------ instructions

    def settle(self, until: float | None = None) -> None:
        """Apply the effects of every instruction that has ended by ``until`` (default now),
        in time order."""
        now = self.clock() if until is None else until
        world = self.world
        pending = []
        for ins in world.instructions.values():
            if ins.settled:
                continue
            end = finish_time(ins, world.nodes.get(ins.node_id), self.step)
            if end is not None and end <= now:
                pending.append((end, ins.id, ins))
        for end, _, ins in sorted(pending, key=lambda p: (p[0], p[1])):
            ins.settled = True
            if ins.forced is not None:
                continue
            node = world.nodes[ins.node_id]
            ins.outcome = outcome(
                ins, node, world.instructions.values(), self.step, end - self.step
            )
            if ins.outcome[0] != "Completed":
                continue
            params = dict(ins.parameters)
            if ins.topic == "SetControlParameter":
                params.pop("executionDate", None)
                node.controls.update(params)
            elif ins.topic == "CancelInstruction":
                target = world.instructions[int(params["id"])]
                target.forced = ("Declined", end)
                target.outcome = ("Declined", {"message": "Cancelled"})
                target.settled = True

    def _instr_wire(self, ins: SnInstruction, at: float) -> dict[str, Any]:
        node = self.world.nodes.get(ins.node_id)
        state, since = state_at(ins, node, self.step, at)
        result = None
        if state == "Finished":
            decided = ins.outcome
            if decided is None and node is not None:
                decided = outcome(
                    ins, node, self.world.instructions.values(), self.step, since - self.step
                )
            state, result = decided or ("Completed", None)
        elif ins.forced is not None and state == ins.forced[0] and ins.outcome is not None:
            result = ins.outcome[1]
        out: dict[str, Any] = {
            "id": ins.id,
            "created": fmt(ins.created),
            "nodeId": ins.node_id,
            "topic": ins.topic,
            "instructionDate": fmt(ins.created),
            "state": state,
            "statusDate": fmt(since),
            "parameters": [{"name": n, "value": v} for n, v in ins.parameters],
        }
        if result:
            out["resultParameters"] = result
        return out

    def _instruction_input(self, call: _Call) -> tuple[list[int], str, list[tuple[str, str]], bool]:
        """(node ids, topic, parameters, single) from a JSON body or form fields."""
        path_topic = call.groups[0] if call.groups else None
        content_type = (call.request.header("content-type") or "").split(";")[0].strip()
        if content_type == "application/json":
            body = call.json()
            if not isinstance(body, dict):
                raise _invalid("The instruction must be an object")
            if "nodeIds" in body:
                raise _invalid("The JSON form takes a single nodeId", "nodeIds")
            if "params" in body and "parameters" in body:
                raise _invalid("Give params or parameters, not both", "params")
            node_id = body.get("nodeId")
            if isinstance(node_id, bool) or not isinstance(node_id, int):
                raise _invalid("nodeId must be a number", "nodeId")
            topic = path_topic or body.get("topic")
            pairs: list[tuple[str, str]] = []
            if isinstance(body.get("params"), dict):
                pairs = [(str(k), str(v)) for k, v in body["params"].items()]
            elif isinstance(body.get("parameters"), list):
                for item in body["parameters"]:
                    if not isinstance(item, dict) or "name" not in item:
                        raise _invalid("Each parameter needs a name", "parameters")
                    pairs.append((str(item["name"]), str(item.get("value", ""))))
            return [node_id], str(topic or ""), pairs, True
        ids = self._node_ids(call)
        topic = path_topic or call.get("topic") or ""
        indexed: dict[int, dict[str, str]] = {}
        for key, value in call.params:
            found = re.fullmatch(r"parameters\[(\d+)\]\.(name|value)", key)
            if found:
                indexed.setdefault(int(found[1]), {})[found[2]] = value
        pairs = []
        for index in sorted(indexed):
            entry = indexed[index]
            if "name" not in entry:
                raise _invalid(f"parameters[{index}].name is required", "parameters")
            pairs.append((entry["name"], entry.get("value", "")))
        single = not call.all("nodeIds")
        return ids, topic, pairs, single

    def _queue(self, call: _Call) -> tuple[list[SnInstruction], bool]:
        ids, topic, pairs, single = self._instruction_input(call)
        if not topic:
            raise _invalid("topic is required", "topic")
        nodes = [self._node(call, i) for i in ids]
        execution_at = None
        given = dict(pairs).get("executionDate")
        if given is not None:
            execution_at = (
                float(given) / 1000 if given.isdigit() else _epoch_or_text(given, "executionDate")
            )
        world = self.world
        made = []
        for node in nodes:
            world.next_instruction += 1
            ins = SnInstruction(
                world.next_instruction, node.id, topic, list(pairs), call.now, execution_at
            )
            world.instructions[ins.id] = ins
            made.append(ins)
        self.stats.counters["instructions"] += len(made)
        return made, single

    def _instr_add(self, call: _Call) -> SimResponse:
        made, single = self._queue(call)
        wires = [self._instr_wire(i, call.now) for i in made]
        return self._ok(wires[0] if single else wires)

    def _instr_exec(self, call: _Call) -> SimResponse:
        text = call.get("resultMaxWait")
        try:
            wait = int(text) if text is not None else 60
        except ValueError:
            raise _invalid("resultMaxWait must be a number of seconds", "resultMaxWait") from None
        if not 0 <= wait <= 60:
            raise _invalid("resultMaxWait must be between 0 and 60", "resultMaxWait")
        made, single = self._queue(call)
        ends = [finish_time(i, self.world.nodes.get(i.node_id), self.step) for i in made]
        if all(e is not None and e - call.now <= wait for e in ends):
            at = max(e for e in ends if e is not None)
        else:
            at = call.now + wait
        wires = [self._instr_wire(i, at) for i in made]
        self.settle(until=at)  # the node has acted by the time the held answer goes out
        response = self._ok(wires[0] if single else wires)
        return attrs.evolve(response, hold=max(0.0, at - call.now))

    def _instructions_of(self, ids: Iterable[int]) -> list[SnInstruction]:
        wanted = set(ids)
        return sorted(
            (i for i in self.world.instructions.values() if i.node_id in wanted), key=lambda i: i.id
        )

    def _instr_list(self, call: _Call) -> SimResponse:
        ids = self._node_ids(call)
        states = call.get("states") or call.get("state")
        wanted = set(states.split(",")) if states else None
        only = set(self._ints(call.get("instructionIds") or "", "instructionIds")) or None
        start, end = self._range(call)
        out = []
        for ins in self._instructions_of(ids):
            wire = self._instr_wire(ins, call.now)
            if wanted is not None and wire["state"] not in wanted:
                continue
            if only is not None and ins.id not in only:
                continue
            if (start is not None and ins.created < start) or (
                end is not None and ins.created >= end
            ):
                continue
            out.append(wire)
        return self._ok(out, omit_empty=True)

    def _own_instruction(self, call: _Call, ident: int) -> SnInstruction:
        ins = self.world.instructions.get(ident)
        if ins is None:
            raise _not_found(f"Instruction {ident}")
        self._node(call, ins.node_id)
        return ins

    def _instr_view(self, call: _Call) -> SimResponse:
        many = call.get("ids")
        if many is not None:
            found = [self.world.instructions.get(i) for i in self._ints(many, "ids")]
            wires = [
                self._instr_wire(i, call.now)
                for i in found
                if i is not None and self._mine(call, i)
            ]
            return self._ok(wires, omit_empty=True)
        single = call.get("id")
        if not single:
            raise _invalid("id or ids is required", "id")
        ins = self._own_instruction(call, self._ints(single, "id")[0])
        return self._ok(self._instr_wire(ins, call.now))

    def _mine(self, call: _Call, ins: SnInstruction) -> bool:
        node = self.world.nodes.get(ins.node_id)
        return node is not None and node.user_id == call.token.user_id

    def _instr_by_state(self, call: _Call, states: set[str]) -> SimResponse:
        ids = self._node_ids(call)
        wires = [self._instr_wire(i, call.now) for i in self._instructions_of(ids)]
        return self._ok([w for w in wires if w["state"] in states][:2000], omit_empty=True)

    def _instr_active(self, call: _Call) -> SimResponse:
        return self._instr_by_state(call, {"Queued"})

    def _instr_pending(self, call: _Call) -> SimResponse:
        return self._instr_by_state(call, {"Queued", "Received", "Executing"})

    def _instr_update_state(self, call: _Call) -> SimResponse:
        state = call.get("state")
        if state not in STATES:
            raise _invalid(f"Unknown state {state}", "state")
        text = call.get("ids") or call.get("id")
        if not text:
            raise _invalid("id or ids is required", "id")
        targets = [self._own_instruction(call, i) for i in self._ints(text, "ids")]
        for ins in targets:
            ins.forced = (state, call.now)
            ins.outcome = (state, None)
            ins.settled = True
        return self._ok()

    # ------------------------------------------------------------------ security tokens

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

    # ------------------------------------------------------------------ user events

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
        page = found[offset : offset + size]
        return self._ok([{**e, "created": fmt(e["created"])} for e in page], omit_empty=True)
