"""What both simulated servers share: a request and a response as the ASGI adapter hands
them over, the counters every test reads, and a byte-bounded answer cache.

Owns: those value types. Must never: do I/O.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import attrs

__all__ = ["SimRequest", "SimResponse", "SimulatorStats"]


@attrs.frozen
class SimRequest:
    method: str
    path: str
    query: str = ""
    headers: Mapping[str, str] = attrs.field(factory=dict)
    body: bytes = b""
    #: The path exactly as sent, still percent-encoded (what SNWS2 signs).
    raw_path: str | None = None

    @property
    def params(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query, keep_blank_values=True)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@attrs.frozen
class SimResponse:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)
    #: Set on answers that never change (data wholly in the past): adapters may reuse
    #: work keyed on it, such as the compressed body.
    cache_key: str | None = None
    #: Seconds the server holds the answer before sending it (a long poll).
    hold: float = 0.0


class _ByteBoundedCache:
    """An LRU of byte strings bounded by their total size."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._items: OrderedDict[str, tuple[bytes, Any]] = OrderedDict()

    def get(self, key: str) -> tuple[bytes, Any] | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: str, body: bytes, extra: Any = None) -> None:
        if len(body) > self.limit // 4:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self.size -= len(old[0])
        self._items[key] = (body, extra)
        self.size += len(body)
        while self.size > self.limit:
            _, (evicted, _) = self._items.popitem(last=False)
            self.size -= len(evicted)


@attrs.define
class SimulatorStats:
    """What the simulator saw. ``data_windows`` lists every accepted data request as
    ``(path, start, end, tz, gran, fields)``; ``max_in_flight`` is the most requests one
    account had in progress at once, ``max_in_flight_by`` the same for each account (by
    its client id)."""

    requests: int = 0
    by_status: Counter[int] = attrs.field(factory=Counter)
    grants: Counter[str] = attrs.field(factory=Counter)
    max_in_flight: int = 0
    in_flight: Counter[str] = attrs.field(factory=Counter)
    max_in_flight_by: Counter[str] = attrs.field(factory=Counter)
    data_windows: list[tuple[str, str | None, str | None, str, str, str]] = attrs.field(
        factory=list
    )
    faults: Counter[str] = attrs.field(factory=Counter)
    log: list[tuple[str, str, int]] = attrs.field(factory=list)
    #: Provider-specific counts (SolarNetwork: signatures verified, instructions...).
    counters: Counter[str] = attrs.field(factory=Counter)

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "grants": dict(self.grants),
            "max_in_flight": self.max_in_flight,
            "data_windows": len(self.data_windows),
            "faults": dict(self.faults),
        }
