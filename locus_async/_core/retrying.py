"""What may be retried, and how long to wait: pure decisions for the retry shell.

Owns: the retry classification table and the backoff arithmetic. Must never: sleep, read a
clock or draw randomness itself (``rand`` in [0, 1) is an argument).

Classification (a request is *retry-safe* when sending it twice does no harm: GETs and
token grants):

==========================  =====================================================
RateLimited (429)           always: the server refused it without acting on it
ServerError (5xx)           retry-safe requests, or ones that were never sent
CertificateError            never: the same certificate fails the same way every time
TransportError              retry-safe requests, or ones that never reached the server
ResponseDecodeError         retry-safe requests whose body was cut or is not JSON
                            (``garbled``); never one that is well-formed but off-schema
anything else               never (400, 403, 404, 422, usage errors, 401 after refresh)
==========================  =====================================================
"""

from __future__ import annotations

from collections import deque
from typing import Final

from locus_async.errors import (
    CertificateError,
    RateLimited,
    ResponseDecodeError,
    ServerError,
    TransportError,
)

__all__ = ["WireHold", "backoff", "is_retryable", "rate_limit_pause"]


def is_retryable(exc: BaseException, *, retry_safe: bool, sent: bool) -> bool:
    """Whether ``exc`` from one attempt justifies another; see the table above."""
    if isinstance(exc, RateLimited):
        return True
    may_resend = retry_safe or not sent
    if isinstance(exc, CertificateError):  # the same certificate fails the same way again
        return False
    if isinstance(exc, TransportError):
        return may_resend or not getattr(exc, "request_sent", True)
    if isinstance(exc, ResponseDecodeError):
        return exc.garbled and may_resend
    if isinstance(exc, ServerError):
        return may_resend
    return False


def backoff(attempt: int, *, initial: float, maximum: float, rand: float) -> float:
    """Exponential backoff with equal jitter: half fixed, half random, capped at ``maximum``.

    ``attempt`` counts failures so far (1 after the first). ``rand`` is uniform in [0, 1).
    """
    ceiling: float = min(maximum, initial * 2.0 ** max(0, attempt - 1))
    return ceiling / 2 + ceiling / 2 * rand


def rate_limit_pause(
    consecutive: int,
    retry_after: float | None,
    *,
    initial: float,
    maximum: float,
    rand: float,
) -> float:
    """How long the whole credential pauses after its ``consecutive``-th 429 in a row.

    A ``Retry-After`` wins (capped at ``maximum``); otherwise backoff over the streak, so a
    lone spurious 429 costs a fraction of a second and a storm backs off quickly.
    """
    if retry_after is not None:
        return float(min(maximum, retry_after))
    return backoff(consecutive, initial=initial, maximum=maximum, rand=rand)


class WireHold:
    """How long a slot stays busy after its exchange was abandoned on the wire.

    The server may still be working on a request whose caller was cancelled or timed out;
    a strict one-at-a-time server counts it until it answers. Estimate of the server's time
    for one request: the slowest of the last ``WINDOW`` completed exchanges times
    ``MARGIN`` plus ``EXTRA`` seconds (``initial`` before any was observed). The hold is
    that estimate less the time already spent on the wire, and never less than half of it
    (an exchange slower than the estimate means a slow server, which will not finish
    sooner for being late), nor more than ``CEILING``.
    """

    WINDOW: Final = 64
    MARGIN: Final = 1.5
    EXTRA: Final = 0.05
    CEILING: Final = 30.0

    def __init__(self, *, initial: float = 1.0) -> None:
        self.initial = float(initial)
        self._seen: deque[float] = deque(maxlen=self.WINDOW)

    def observe(self, seconds: float) -> None:
        """A completed exchange took ``seconds`` on the wire."""
        self._seen.append(max(0.0, seconds))

    def estimate(self) -> float:
        """The server's time for one request, as far as we can tell."""
        if not self._seen:
            return min(self.CEILING, self.initial)
        return min(self.CEILING, max(self._seen) * self.MARGIN + self.EXTRA)

    def hold(self, elapsed: float) -> float:
        """Seconds to keep the slot after abandoning an exchange ``elapsed`` seconds in."""
        estimate = self.estimate()
        return max(estimate - max(0.0, elapsed), estimate / 2)
