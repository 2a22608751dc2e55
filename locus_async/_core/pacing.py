"""A client-side rate limit: the token bucket arithmetic, pure.

Owns: ``RateLimit`` (the rule: ``burst`` requests at once, refilled at ``per_second``) and
``TokenBucket`` (reservations against it, corrected by what the server says remains).
Must never: read a clock or sleep (``now`` is an argument; the session waits).

A reservation always succeeds and says how long to wait: the bucket's level may go below
zero, each waiting request one token further down, so concurrent callers are spaced by
``1 / per_second`` in the order they reserved. Why not a library: the maintained ones
(``aiolimiter``, ``pyrate-limiter``) wait with asyncio's own primitives and clock, where
this client runs under asyncio and trio with an injected clock and sleep.
"""

from __future__ import annotations

import attrs

__all__ = ["RateLimit", "TokenBucket"]


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"RateLimit.{attribute.name} must be a positive number, not {value!r}")


@attrs.frozen
class RateLimit:
    """At most ``burst`` requests at once, then ``per_second`` (SolarNetwork's shipped rule:
    a burst of about 2, refilled at about 1 per second, per token)."""

    burst: float = attrs.field(default=2.0, validator=_positive)
    per_second: float = attrs.field(default=1.0, validator=_positive)


class TokenBucket:
    """Reservations against a ``RateLimit``; starts full at ``now``."""

    def __init__(self, rule: RateLimit, now: float) -> None:
        self.rule = rule
        self.level = float(rule.burst)
        self._at = now

    def __repr__(self) -> str:
        return f"TokenBucket({self.rule!r}, level={self.level:.2f})"

    def _refill(self, now: float) -> None:
        if now > self._at:
            self.level = min(self.rule.burst, self.level + (now - self._at) * self.rule.per_second)
            self._at = now

    def reserve(self, now: float) -> float:
        """Take one request's token: the seconds to wait before sending it (0: send now)."""
        self._refill(now)
        self.level -= 1.0
        return 0.0 if self.level >= 0 else -self.level / self.rule.per_second

    def refund(self, now: float) -> None:
        """A reserved request was not sent (its caller was cancelled while waiting)."""
        self._refill(now)
        self.level = min(self.rule.burst, self.level + 1.0)

    def observe(self, remaining: float, now: float) -> None:
        """The server says ``remaining`` requests are left now (other clients of the same
        token spend them too): never believe more than that."""
        self._refill(now)
        self.level = min(self.level, float(remaining))
