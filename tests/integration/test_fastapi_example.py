"""The FastAPI example, driven through httpx.ASGITransport with its lifespan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from examples.fastapi_app import create_app
from locus_async import Site, from_jsonable
from locus_async.simulator import DEFAULT_ACCOUNT, Faults, Simulator

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


def _readme_block(heading: str) -> str:
    """The first ```python block after ``heading`` in the README, verbatim."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    after = text[text.index(heading) :]
    start = after.index("```python\n") + len("```python\n")
    return after[start : after.index("```\n", start)]


async def test_the_readme_fastapi_snippet_serves_the_documented_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The README's FastAPI snippet, run verbatim with LOCUS_* variables against a served
    simulator, answers 200 with the site exactly as the API sends it (wire names)."""
    sim = Simulator()
    with sim.serve() as server:
        account = DEFAULT_ACCOUNT
        for name, value in {
            "LOCUS_BASE_URL": server.url,
            "LOCUS_CLIENT_ID": account.client_id,
            "LOCUS_CLIENT_SECRET": account.client_secret,
            "LOCUS_USERNAME": account.username or "",
            "LOCUS_PASSWORD": account.password or "",
        }.items():
            monkeypatch.setenv(name, value)
        namespace: dict[str, Any] = {}
        snippet = compile(_readme_block("## In a FastAPI app"), "README.md", "exec")
        exec(snippet, namespace)  # noqa: S102 - the README's own code is what is tested
        app = namespace["app"]
        async with httpx.AsyncClient(base_url=server.url) as api:
            form = account.token_form()
            token = (await api.post("/oauth/token", data=form)).json()["access_token"]
            wire = (
                await api.get("/v3/sites/3393714", headers={"Authorization": f"Bearer {token}"})
            ).json()
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
                answer = await http.get("/sites/3393714")
    assert answer.status_code == 200
    wire.pop("statusCode")
    assert answer.json() == wire
    assert answer.json()["clientId"] == 419010
    assert from_jsonable(Site, answer.json()).location_timezone == "America/Los_Angeles"
