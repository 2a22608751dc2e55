"""Counters a client keeps about its own traffic.

Owns: ``ClientStats``, updated by the session as exchanges happen. Must never: hold a
request, a token or anything a log aggregator should not see.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import attrs

__all__ = ["ClientStats"]


@attrs.define
class ClientStats:
    """What a client did so far. Read it any time; ``snapshot()`` gives a plain dict.

    ``requests``: HTTP exchanges sent (token grants included). ``responses``: count by status.
    ``retries``: attempts after the first, any reason. ``rate_limited``: 429 responses.
    ``token_grants``: tokens obtained, by grant type; ``refreshes``: every one after the first.
    ``transport_errors``: exchanges that got no usable response. ``abandoned``: exchanges
    cancelled while on the wire (their slot was given back with a hold).
    ``queued_seconds``: total time callers waited for a slot. ``busy_seconds``: total time
    requests were on the wire. ``max_in_flight``: most exchanges on the wire at once.
    ``forgiven``: values the lenient decoder read as empty (null or of the wrong type where
    the reference promises a value); ``dropped``: items it left out (their key was missing
    or invalid). Both are logged as warnings, one per field and call. ``paced_seconds``:
    total time requests waited for the client-side rate limit (SolarNetwork).
    """

    requests: int = 0
    responses: Counter[int] = attrs.field(factory=Counter)
    retries: int = 0
    rate_limited: int = 0
    transport_errors: int = 0
    abandoned: int = 0
    token_grants: Counter[str] = attrs.field(factory=Counter)
    queued_seconds: float = 0.0
    busy_seconds: float = 0.0
    in_flight: int = 0
    max_in_flight: int = 0
    forgiven: int = 0
    dropped: int = 0
    paced_seconds: float = 0.0
    started: float = attrs.field(factory=time.monotonic)

    @property
    def refreshes(self) -> int:
        return max(0, sum(self.token_grants.values()) - 1)

    def utilisation(self, capacity: int, now: float | None = None) -> float:
        """Share of the allowance used since the client started (busy time / capacity time)."""
        elapsed = (time.monotonic() if now is None else now) - self.started
        if elapsed <= 0 or capacity <= 0:
            return 0.0
        return min(1.0, self.busy_seconds / (elapsed * capacity))

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "responses": {str(k): v for k, v in sorted(self.responses.items())},
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "transport_errors": self.transport_errors,
            "abandoned": self.abandoned,
            "token_grants": dict(self.token_grants),
            "refreshes": self.refreshes,
            "queued_seconds": round(self.queued_seconds, 6),
            "busy_seconds": round(self.busy_seconds, 6),
            "max_in_flight": self.max_in_flight,
            "forgiven": self.forgiven,
            "dropped": self.dropped,
            "paced_seconds": round(self.paced_seconds, 6),
        }
