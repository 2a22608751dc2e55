"""Fault matrix: every fault alone, then all together; the data comes out exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from locus_async import set_testing
from tests.reliability.faults import RATES, run_fault

pytestmark = [pytest.mark.asyncio, pytest.mark.sockets]


@pytest.mark.parametrize("fault", list(RATES))
async def test_backfill_through_faults_equals_the_ground_truth(fault: str, tmp_path: Path) -> None:
    """A 60-day 5min backfill of 5 components: 0 missing, 0 duplicated, 0 wrong values."""
    set_testing(False)  # real (small) waits: a timed-out request still holds the server's slot
    result = await run_fault(fault, tmp_path / "out")
    assert (result.missing, result.duplicated, result.wrong) == (0, 0, 0)
    assert result.rows == 5 * (60 * 288 + 12)
    assert result.injected > 0, "the fault never fired: the test would prove nothing"
    assert result.retries >= result.injected - result.token_grants
