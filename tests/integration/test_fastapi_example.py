"""The FastAPI example, driven through httpx.ASGITransport with its lifespan."""

from __future__ import annotations

import anyio
import httpx
import pytest

from examples.fastapi_app import create_app
from locus_async.simulator import Faults, Simulator

pytestmark = pytest.mark.asyncio


async def test_endpoints_share_one_client_and_one_allowance() -> None:
    """Concurrent requests to the app become one-at-a-time requests to the API."""
    sim = Simulator(faults=Faults(latency=0.002))
    app = create_app(sim.client)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            site = await http.get("/sites/3393714")
            assert site.json() == {
                "id": 3393714,
                "name": "Test Site",
                "timezone": "America/Los_Angeles",
            }
            missing = await http.get("/sites/1")
            assert missing.status_code == 404
            energy = await http.get(
                "/sites/3393714/energy", params={"start": "2024-06-01", "end": "2024-06-08"}
            )
            days = energy.json()["days"]
            assert [d["day"] for d in days] == [f"2024-06-0{i}" for i in range(1, 8)]
            assert all(d["kwh"] > 0 for d in days)
            results = []

            async def hit() -> None:
                results.append((await http.get("/sites/3393714")).status_code)

            async with anyio.create_task_group() as group:
                for _ in range(30):
                    group.start_soon(hit)
            assert results == [200] * 30
            health = (await http.get("/health")).json()
    assert sim.stats.max_in_flight == 1
    assert sim.stats.by_status[429] == 0
    assert health["stats"]["token_grants"] == {"password": 1}
