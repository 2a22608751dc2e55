"""Limiter construction checks (no event loop needed)."""

from __future__ import annotations

import pytest

from locus_async import InvalidArgumentType, LocalLimiter, UsageError


@pytest.mark.parametrize("bad", [0, -1])
def test_capacity_below_one_is_refused(bad: int) -> None:
    """Capacity must be at least 1."""
    with pytest.raises(UsageError, match="at least 1"):
        LocalLimiter(bad)


@pytest.mark.parametrize("bad", [True, 1.5, "2", None])
def test_capacity_must_be_an_int(bad: object) -> None:
    """Capacity must be an int (bools are not)."""
    with pytest.raises(InvalidArgumentType, match="must be an int"):
        LocalLimiter(bad)  # type: ignore[arg-type]
