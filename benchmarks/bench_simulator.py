"""How fast the simulator answers, so it is never the bottleneck of another benchmark.

Targets (issue 3): >= 2,000 small requests/s in process; a 5-day 1min response (7,200 rows,
two fields) built in < 20 ms.

    python benchmarks/bench_simulator.py [--requests 4000]
"""

from __future__ import annotations

import argparse
import time

import anyio
import httpx
from _common import TOKEN_FORM, machine, table

from locus_async.simulator import Simulator
from locus_async.simulator._http import SimRequest

ONE_MIN = (
    "/v3/components/54369/data",
    "fields=W_avg,Wh_sum&start=2024-03-01T00:00:00&end=2024-03-05T23:59:00&tz=America/Los_Angeles&gran=1min",
)
FIVE_MIN = (
    "/v3/components/54369/data",
    "fields=W_avg,Wh_sum&start=2024-10-01T00:00:00&end=2024-10-31T23:55:00&tz=America/Los_Angeles&gran=5min",
)


async def small_requests(requests: int) -> tuple[float, float]:
    """(requests/s through httpx's ASGITransport, requests/s calling the ASGI app directly)."""
    sim = Simulator()
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://localhost") as http:
        token = (await http.post("/oauth/token", data=TOKEN_FORM)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        started = time.perf_counter()
        for _ in range(requests):
            response = await http.get("/v3/sites/3393714", headers=headers)
            assert response.status_code == 200
        via_httpx = requests / (time.perf_counter() - started)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/v3/sites/3393714",
        "query_string": b"",
        "headers": [(b"authorization", f"Bearer {token}".encode())],
    }

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: object) -> None:
        return None

    started = time.perf_counter()
    for _ in range(requests):
        await sim.app(scope, receive, send)
    direct = requests / (time.perf_counter() - started)
    return via_httpx, direct


def build_ms(path: str, query: str, *, warm: bool, repeats: int = 7) -> tuple[float, int, int]:
    """(best milliseconds to answer, rows, body bytes) from the core, no HTTP."""
    best = float("inf")
    rows = size = 0
    for _ in range(repeats):
        sim = Simulator()
        core = sim.core
        token = core._issue(core.accounts["demo-client"], with_refresh=False)["access_token"]
        request = SimRequest("GET", path, query, {"authorization": f"Bearer {token}"})
        if warm:
            core.handle(request)
            core.clear_response_cache()  # warm minute data, but build the answer again
        started = time.perf_counter()
        response = core.handle(request)
        best = min(best, (time.perf_counter() - started) * 1000)
        assert response.status == 200
        size = len(response.body)
        rows = response.body.count(b'"ts"')
    return best, rows, size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4000)
    args = parser.parse_args()
    via_httpx, direct = anyio.run(small_requests, args.requests)
    print(f"Machine: {machine()}")
    print(
        table(
            ["small requests in process", "requests/s", "target"],
            [
                ("GET /v3/sites/{id} via httpx ASGITransport", f"{via_httpx:,.0f}", ">= 2,000"),
                ("same, calling the ASGI app directly", f"{direct:,.0f}", ""),
            ],
        )
    )
    print()
    rows = []
    for label, (path, query) in (
        ("5-day 1min, 2 fields", ONE_MIN),
        ("31-day 5min, 2 fields", FIVE_MIN),
    ):
        for warm in (False, True):
            ms, count, size = build_ms(path, query, warm=warm)
            rows.append(
                (
                    label,
                    "warm (minute data cached)" if warm else "cold (minute data computed)",
                    count,
                    f"{size / 1024:.0f} KiB",
                    f"{ms:.1f}",
                )
            )
    print(table(["response", "cache", "rows", "body", "build ms (best of 7)"], rows))


if __name__ == "__main__":
    main()
