"""What may be retried, and how long to wait: pure decisions for the retry shell.

Owns: the retry classification table and the backoff arithmetic. Must never: sleep, read a
clock or draw randomness itself (``rand`` in [0, 1) is an argument).

Classification (a request is *retry-safe* when sending it twice does no harm: GETs and
token grants):

==========================  =====================================================
RateLimited (429)           always: the server refused it without acting on it
ServerError (5xx)           retry-safe requests, or ones that were never sent
TransportError              retry-safe requests, or ones that never reached the server
ResponseDecodeError         retry-safe requests (the body was cut or garbled)
anything else               never (400, 403, 404, 422, usage errors, 401 after refresh)
==========================  =====================================================
"""

from __future__ import annotations

from ..errors import RateLimited, ResponseDecodeError, ServerError, TransportError

__all__ = ["backoff", "is_retryable", "rate_limit_pause"]


def is_retryable(exc: BaseException, *, retry_safe: bool, sent: bool) -> bool:
    """Whether ``exc`` from one attempt justifies another; see the table above."""
    if isinstance(exc, RateLimited):
        return True
    may_resend = retry_safe or not sent
    if isinstance(exc, TransportError):
        return may_resend or not getattr(exc, "request_sent", True)
    if isinstance(exc, ServerError | ResponseDecodeError):
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
