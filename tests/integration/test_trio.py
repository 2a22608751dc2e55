"""The client, the limiter and the data engine under trio (through anyio)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import trio

from locus_async import AdaptiveLimiter, Backfill, BackfillSpec
from locus_async.simulator import Faults, Simulator


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


@pytest.mark.anyio
async def test_everything_runs_on_trio(tmp_path: Path) -> None:
    """Concurrent calls through the limiter, chunked data equal to the ground truth,
    prefetching iter_data and a backfill, all on trio's event loop."""
    assert trio.lowlevel.current_trio_token() is not None
    sim = Simulator(allowance=2, faults=Faults(latency=0.002, server_errors=0.05, seed=3))
    args = {
        "fields": ["W_avg", "Wh_sum"],
        "start": datetime(2024, 10, 1),
        "end": datetime(2024, 12, 1),
        "tz": "America/Los_Angeles",
        "gran": "5min",
    }
    async with sim.client(limiter=AdaptiveLimiter(ceiling=4), strict=True) as client:
        async with trio.open_nursery() as nursery:
            for _ in range(40):
                nursery.start_soon(client.components.get, 54369)
        series = await client.components.data(54369, **args)
        async with client.components.iter_data(54370, **args) as stream:
            parts = [part async for part in stream]
        spec = BackfillSpec(
            fields=("Wh_sum",),
            start="2024-06-01",
            end="2024-08-01",
            tz="UTC",
            gran="hourly",
            components=(54369, 54380),
        )
        result = await Backfill(client, spec, tmp_path / "out").run()
    assert list(series) == sim.ground_truth("components", 54369, **args)
    assert sum(len(p) for p in parts) == len(series)
    assert result.complete
    assert result.rows == 2 * 61 * 24
    assert sim.stats.max_in_flight <= 2
