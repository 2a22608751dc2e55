"""How fast the simulator answers, so it is never the bottleneck of another benchmark.

Targets: >= 2,000 small requests/s in process (issue 3); any legal window, up to a year of
daily or five days of 1min, answered in <= 20 ms in process, cold or warm (issue 15), with
numpy; the pure-Python physics (an install without numpy) is measured beside it.

    python benchmarks/bench_simulator.py [--requests 4000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import time

import anyio
import httpx
from _common import TOKEN_FORM, machine, table

from locus_async.simulator import Simulator
from locus_async.simulator._fleet import Fleet
from locus_async.simulator._http import SimRequest
from locus_async.simulator._physics import Physics

ONE_MIN = (
    "/v3/components/54369/data",
    "fields=W_avg,Wh_sum&start=2024-03-01T00:00:00&end=2024-03-05T23:59:00&tz=America/Los_Angeles&gran=1min",
)
FIVE_MIN = (
    "/v3/components/54369/data",
    "fields=W_avg,Wh_sum&start=2024-10-01T00:00:00&end=2024-10-31T23:55:00&tz=America/Los_Angeles&gran=5min",
)
_YEAR = "start=2023-01-01T00:00:00&end=2023-12-31T00:00:00&tz=America/Los_Angeles"
#: The largest legal window of each granularity (a meter, two fields), and wider asks.
WINDOWS = (
    ("1min, 5 days", ONE_MIN),
    ("5min, 31 days", FIVE_MIN),
    (
        "15min, 31 days",
        (
            "/v3/components/54369/data",
            "fields=W_avg,Wh_sum&start=2024-10-01T00:00:00&end=2024-10-31T23:45:00&tz=America/Los_Angeles&gran=15min",
        ),
    ),
    (
        "hourly, 31 days",
        (
            "/v3/components/54369/data",
            "fields=W_avg,Wh_sum&start=2024-10-01T00:00:00&end=2024-10-31T23:00:00&tz=America/Los_Angeles&gran=hourly",
        ),
    ),
    ("daily, 364 days", ("/v3/components/54369/data", f"fields=W_avg,Wh_sum&{_YEAR}&gran=daily")),
    (
        "daily, 364 days, 8 fields",
        (
            "/v3/components/54369/data",
            f"fields=W_avg,W_max,W_min,Wh_sum,PF_avg,VA_avg,VAR_avg,WphA_avg&{_YEAR}&gran=daily",
        ),
    ),
    ("site daily, 364 days", ("/v3/sites/3393714/data", f"fields=W_avg,Wh_sum&{_YEAR}&gran=daily")),
    (
        "monthly, 1 year",
        (
            "/v3/components/54369/data",
            "fields=W_avg,Wh_sum&start=2023-01-01T00:00:00&end=2024-01-01T00:00:00&tz=America/Los_Angeles&gran=monthly",
        ),
    ),
    (
        "yearly, 3 years",
        (
            "/v3/components/54369/data",
            "fields=W_avg,Wh_sum&start=2021-01-01T00:00:00&end=2024-01-01T00:00:00&tz=America/Los_Angeles&gran=yearly",
        ),
    ),
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


def build_ms(
    path: str, query: str, *, warm: bool, repeats: int = 7, backend: str = "numpy"
) -> tuple[float, int, int]:
    """(best milliseconds to answer, rows, body bytes) from the core, no HTTP; a new
    simulator each time (cold: nothing computed yet)."""
    best = float("inf")
    rows = size = 0
    for _ in range(repeats):
        sim = Simulator()
        core = sim.core
        core.physics = Physics(core.fleet, seed=core.physics.seed, backend=backend)
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


def producing(fleet: Fleet) -> list[int]:
    """The components with power and energy (inverters and meters)."""
    return sorted(
        cid
        for cid in fleet.components
        if any(q.base_field == "W" for q in fleet.component_quantities(cid))
    )


def backfill_seconds(backend: str) -> tuple[int, float]:
    """(requests, seconds) for a cold simulator to answer every inverter's and meter's
    three years of daily W_avg and Wh_sum, one legal window (a year less a day) at a time."""
    sim = Simulator()
    core = sim.core
    core.physics = Physics(core.fleet, seed=core.physics.seed, backend=backend)
    token = core._issue(core.accounts["demo-client"], with_refresh=False)["access_token"]
    headers = {"authorization": f"Bearer {token}"}
    requests = 0
    started = time.perf_counter()
    for component in producing(core.fleet):
        for year in (2021, 2022, 2023):
            query = (
                f"fields=W_avg,Wh_sum&start={year}-01-01T00:00:00&end={year}-12-31T00:00:00"
                "&tz=America/Los_Angeles&gran=daily"
            )
            path = f"/v3/components/{component}/data"
            response = core.handle(SimRequest("GET", path, query, headers))
            assert response.status == 200, response.body[:200]
            requests += 1
    return requests, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=7, help="best of this many (numpy)")
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
    for label, (path, query) in WINDOWS:
        cells: list[object] = [label]
        for warm in (False, True):
            ms, count, _ = build_ms(path, query, warm=warm, repeats=args.repeats)
            pure_ms, _, _ = build_ms(path, query, warm=warm, repeats=1, backend="pure")
            cells += [f"{ms:.1f}", f"{pure_ms:.0f}"]
        rows.append((*cells[:1], count, *cells[1:]))
    print(
        table(
            [
                "window (meter 54369, W_avg + Wh_sum)",
                "rows",
                "cold ms, numpy",
                "cold ms, pure",
                "warm ms, numpy",
                "warm ms, pure",
            ],
            rows,
        )
    )
    print()
    count, fast = backfill_seconds("numpy")
    _, slow = backfill_seconds("pure")
    print(
        table(
            ["3 years of daily each, a cold simulator", "requests", "numpy s", "pure s", "ratio"],
            [
                (
                    f"{len(producing(Simulator().core.fleet))} inverters and meters",
                    count,
                    f"{fast:.2f}",
                    f"{slow:.2f}",
                    f"{slow / fast:.0f}x",
                )
            ],
        )
    )


if __name__ == "__main__":
    main()
