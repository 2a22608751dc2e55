"""The token bucket's arithmetic: reservations spaced by the rule, refunds, and the
server's remaining count believed only when it is lower."""

from __future__ import annotations

import pytest

from locus_async._core.pacing import RateLimit, TokenBucket


def test_reservations_are_spaced_by_the_rule() -> None:
    """A full bucket sends its burst at once; each later reservation waits one more
    interval, and time refills the bucket up to the burst, never beyond."""
    bucket = TokenBucket(RateLimit(burst=2, per_second=4), now=0.0)
    assert [bucket.reserve(0.0) for _ in range(5)] == [0.0, 0.0, 0.25, 0.5, 0.75]
    bucket = TokenBucket(RateLimit(burst=2, per_second=4), now=0.0)
    bucket.reserve(0.0)
    assert bucket.reserve(100.0) == 0.0
    assert bucket.level == pytest.approx(1.0)


def test_a_refund_and_the_servers_count() -> None:
    """A refunded reservation frees its turn; a lower remaining count lowers the level,
    a higher one is not believed."""
    bucket = TokenBucket(RateLimit(burst=3, per_second=1), now=0.0)
    bucket.reserve(0.0)
    bucket.refund(0.0)
    assert bucket.level == 3.0
    bucket.observe(5, 0.0)
    assert bucket.level == 3.0
    bucket.observe(0, 0.0)
    assert bucket.reserve(0.0) == 1.0


@pytest.mark.parametrize("bad", [0, -1, float("nan"), True, "2"])
def test_the_rule_must_be_positive_numbers(bad: object) -> None:
    """A burst or rate that is not a positive number is refused with its name."""
    with pytest.raises(ValueError, match=r"RateLimit\.burst"):
        RateLimit(burst=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"RateLimit\.per_second"):
        RateLimit(per_second=bad)  # type: ignore[arg-type]
