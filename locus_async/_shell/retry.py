"""Retry policy: how many attempts, how long to wait, and the test switch.

Owns: ``RetryPolicy`` (the numbers), the tenacity ``stop``/``wait`` callables built from it,
and ``set_testing`` (after stamina): while on, every wait and pause is zero, so tests run
retries at full speed without monkeypatching anything. Must never: decide *what* is
retryable (that is ``_core.retrying``) or touch the network.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import tenacity

from locus_async._core.checks import check_number, check_whole
from locus_async._core.retrying import backoff, rate_limit_pause
from locus_async.errors import APIError, RateLimited

__all__ = ["RetryPolicy", "is_testing", "set_testing", "testing"]

_TESTING = False


def set_testing(on: bool) -> None:
    """Make every retry wait and rate-limit pause zero (``True``) or real again (``False``)."""
    global _TESTING  # noqa: PLW0603
    _TESTING = bool(on)


def is_testing() -> bool:
    return _TESTING


@contextmanager
def testing() -> Iterator[None]:
    """``with testing(): ...``: zero waits inside, the previous setting after."""
    before = _TESTING
    set_testing(True)
    try:
        yield
    finally:
        set_testing(before)


def _positive(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    check_number(value, f"RetryPolicy.{attribute.name}")


def _count(_: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    check_whole(value, f"RetryPolicy.{attribute.name}")


@attrs.frozen
class RetryPolicy:
    """Bounds and waits for retries.

    ``attempts``: tries per call for failures other than 429 (first try included).
    ``rate_limited_attempts``: tries for 429s, which are harmless and usually short.
    ``initial``/``maximum``: exponential backoff with jitter, in seconds.
    ``rate_limit_initial``: first pause of the whole credential after a 429 without
    ``Retry-After``; it doubles over a streak of 429s up to ``maximum``.
    ``deadline``: no new attempt starts after this many seconds of one call.
    ``wire_hold``: seconds a slot stays busy after its request was abandoned on the wire
    (cancelled or timed out) before any exchange was observed; afterwards the hold is
    learnt from observed latency (see ``WireHold``). Not zeroed by ``testing()``: it is
    what keeps the server within the allowance, not a courtesy wait.
    """

    attempts: int = attrs.field(default=6, validator=_count)
    rate_limited_attempts: int = attrs.field(default=30, validator=_count)
    initial: float = attrs.field(default=0.5, validator=_positive)
    maximum: float = attrs.field(default=30.0, validator=_positive)
    rate_limit_initial: float = attrs.field(default=0.25, validator=_positive)
    deadline: float = attrs.field(default=600.0, validator=_positive)
    wire_hold: float = attrs.field(default=1.0, validator=_positive)

    def wait_seconds(self, failures: int, exc: BaseException | None, rand: float) -> float:
        """Wait before the next attempt of one call (429s wait in the limiter instead)."""
        if _TESTING or isinstance(exc, RateLimited):
            return 0.0
        if isinstance(exc, APIError) and exc.retry_after is not None:
            return min(self.maximum, exc.retry_after)
        return backoff(failures, initial=self.initial, maximum=self.maximum, rand=rand)

    def pause_seconds(self, streak: int, retry_after: float | None, rand: float) -> float:
        """Credential-wide pause after the ``streak``-th consecutive 429."""
        if _TESTING:
            return 0.0
        return rate_limit_pause(
            streak,
            retry_after,
            initial=self.rate_limit_initial,
            maximum=self.maximum,
            rand=rand,
        )


@attrs.define
class AttemptLog:
    """Per-call counters the tenacity callables read."""

    rate_limited: int = 0
    other: int = 0
    sent: bool = False


def make_stop(policy: RetryPolicy, log: AttemptLog) -> Callable[[tenacity.RetryCallState], bool]:
    def stop(state: tenacity.RetryCallState) -> bool:
        if state.seconds_since_start is not None and state.seconds_since_start >= policy.deadline:
            return True
        if log.rate_limited >= policy.rate_limited_attempts:
            return True
        return log.other >= policy.attempts

    return stop


def make_wait(
    policy: RetryPolicy, log: AttemptLog, rng: random.Random
) -> Callable[[tenacity.RetryCallState], float]:
    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        return policy.wait_seconds(max(1, log.other), exc, rng.random())

    return wait
