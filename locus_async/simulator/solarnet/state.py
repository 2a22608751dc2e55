"""The simulated SolarUser server's state and vocabulary: the world it serves, the rate rule,
the envelope, failures, and the parameter helpers every handler shares (node ids, sources,
ranges, paging).

Owns: what the handler modules share. Must never: sleep, touch sockets or read the real
clock (``clock`` is injected).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import attrs
import orjson

from locus_async.simulator._http import SimRequest, SimResponse, SimulatorStats
from locus_async.simulator._snstate import (
    SnNode,
    SnToken,
    SnWorld,
    default_world,
)
from locus_async.solarnetwork.filters import Filter, parse_filter

__all__ = ["API_PREFIX", "CoreState", "RateRule"]


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
    r"SNWS2 Credential=(?P<token>[^,;\s]+),SignedHeaders=(?P<names>[^,\s]+),"
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


class CoreState:
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
        paged_events: bool = False,
    ) -> None:
        self.world = world or default_world()
        #: Answer ``/user/events`` as a paged object (the reference's text) instead of a
        #: flat list (its example); clients must read both.
        self.paged_events = paged_events
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

    def _route_table(
        self,
    ) -> list[tuple[str, re.Pattern[str], Callable[[_Call], SimResponse], bool]]:
        """Every route: (method, path pattern, handler, streamed); ``routes.Router`` has it."""
        raise NotImplementedError

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
