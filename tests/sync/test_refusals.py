"""A window the server refuses (400/403/404) is recorded with its reason and asked once;
transient failures are asked again; --retry-failed asks a refused one again."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import respx

from locus_async import Backfill, BackfillSpec, BearerToken, LocusClient

pytestmark = pytest.mark.anyio

BASE = "https://api.locusenergy.com"
AVAILABLE = {
    "statusCode": 200,
    "baseFields": [
        {
            "baseField": "W", "longName": "AC Power", "source": "Measured", "unit": "W",
            "granularities": ["daily"], "aggregations": [{"shortName": "W_avg", "aggregation": "avg"}],
        }
    ],
}  # fmt: skip
SPEC = BackfillSpec(
    fields="W_avg", start="2024-01-01T00:00:00", end="2024-01-03T00:00:00", tz="UTC",
    gran="daily", components=(1, 2),
)  # fmt: skip
NOW = datetime(2024, 6, 1, tzinfo=UTC).timestamp()
ROWS = {"statusCode": 200, "data": [{"id": 2, "ts": "2024-01-01T00:00:00+00:00", "W_avg": 5.0}]}


async def _run(out: Path, **options: object) -> object:
    async with LocusClient(auth=BearerToken("tok-1234")) as client:
        return await Backfill(client, SPEC, out, clock=lambda: NOW, **options).run()  # type: ignore[arg-type]


async def test_a_refused_window_is_asked_once_unless_retry_failed(tmp_path: Path) -> None:
    """Component 1's window gets a 400: recorded as permanent with the server's reason,
    exit-worthy once; the next run sends it nothing; --retry-failed asks again."""
    out = tmp_path / "ds"
    with respx.mock(base_url=BASE) as router:
        router.get(url__regex=r"/v3/components/\d/dataavailable").respond(json=AVAILABLE)
        refused = router.get("/v3/components/1/data").respond(
            400, json={"statusCode": 400, "message": "Range not available for this device"}
        )
        router.get("/v3/components/2/data").respond(json=ROWS)
        first = await _run(out)
        assert not first.complete  # type: ignore[attr-defined]
        (failure,) = first.permanent_failures  # type: ignore[attr-defined]
        assert (failure.entity_id, failure.status, failure.permanent) == (1, 400, True)
        assert "Range not available for this device" in failure.error
        assert first.failures == ()  # type: ignore[attr-defined]
        second = await _run(out)
        assert second.complete  # type: ignore[attr-defined]
        assert second.permanent_failures == first.permanent_failures  # type: ignore[attr-defined]
        assert refused.call_count == 1
        await _run(out, retry_failed=True)
        assert refused.call_count == 2


async def test_a_transient_failure_is_asked_again_by_the_next_run(tmp_path: Path) -> None:
    """A window that keeps failing with 503 is recorded as transient and the next run asks
    it again (and stores it once it succeeds)."""
    out = tmp_path / "ds"
    with respx.mock(base_url=BASE) as router:
        router.get(url__regex=r"/v3/components/\d/dataavailable").respond(json=AVAILABLE)
        flaky = router.get("/v3/components/1/data").respond(503, json={"statusCode": 503})
        router.get("/v3/components/2/data").respond(json=ROWS)
        first = await _run(out)
        assert [f.status for f in first.failures] == [503]  # type: ignore[attr-defined]
        assert first.permanent_failures == ()  # type: ignore[attr-defined]
        calls = flaky.call_count
        flaky.respond(json={"statusCode": 200, "data": []})
        second = await _run(out)
        assert second.complete  # type: ignore[attr-defined]
        assert flaky.call_count == calls + 1
