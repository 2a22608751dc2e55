"""The simulator enforces the reference's rules, answered with raw HTTP (no client checks)."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import anyio
import httpx
import orjson
import pytest
import pytest_asyncio

from locus_async.simulator import Faults, Simulator

pytestmark = pytest.mark.asyncio

FORM = {
    "grant_type": "password",
    "client_id": "demo-client",
    "client_secret": "demo-secret",
    "username": "demo@locus.example",
    "password": "demo-password",
}


@pytest_asyncio.fixture
async def raw(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://localhost") as http:
        token = (await http.post("/oauth/token", data=FORM)).json()["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        yield http


async def _status(http: httpx.AsyncClient, url: str) -> tuple[int, str]:
    response = await http.get(url)
    return response.status_code, response.json().get("message", "")


async def test_every_body_has_status_code(raw: httpx.AsyncClient) -> None:
    """statusCode is in every body, success or error."""
    for url in [
        "/v3/sites/3393714",
        "/v3/sites/1",
        "/v3/components/54369/data?fields=Wh_sum&tz=UTC&gran=daily",
    ]:
        body = (await raw.get(url)).json()
        assert "statusCode" in body


@pytest.mark.parametrize(
    ("query", "words"),
    [
        (
            "fields=W_avg&start=2024-10-15T00:00:00&end=2024-11-15T00:00:00&tz=America/Los_Angeles&gran=5min",
            "too long",
        ),
        (
            "fields=W_avg&start=2024-03-01T00:00:00&end=2024-03-06T00:00:00&tz=UTC&gran=1min",
            "too long",
        ),
        (
            "fields=W_avg&start=2023-01-01T00:00:00&end=2024-01-01T00:00:00&tz=UTC&gran=daily",
            "too long",
        ),
        ("fields=W_avg&start=2024-01-01&end=2024-01-02T00:00:00&tz=UTC&gran=hourly", "YYYY-MM-DD"),
        (
            "fields=W_avg&start=2024-01-01T00:00:00-08:00&end=2024-01-02T00:00:00&tz=UTC&gran=hourly",
            "YYYY-MM-DD",
        ),
        (
            "fields=W_avg&start=2024-02-30T00:00:00&end=2024-03-02T00:00:00&tz=UTC&gran=hourly",
            "YYYY-MM-DD",
        ),
        (
            "fields=W_avg&start=2024-01-02T00:00:00&end=2024-01-01T00:00:00&tz=UTC&gran=hourly",
            "before",
        ),
        (
            "fields=W_avg&start=2024-01-01T00:00:00&end=2024-01-02T00:00:00&tz=Mars/Olympus&gran=hourly",
            "Invalid tz",
        ),
        (
            "fields=W_avg&start=2024-01-01T00:00:00&end=2024-01-02T00:00:00&gran=hourly",
            "tz is required",
        ),
        (
            "fields=W_avg&start=2024-01-01T00:00:00&end=2024-01-02T00:00:00&tz=UTC&gran=2min",
            "Invalid gran",
        ),
        (
            "fields=POA_avg&start=2024-01-01T00:00:00&end=2024-01-02T00:00:00&tz=UTC&gran=hourly",
            "Invalid field",
        ),
        (
            "start=2024-01-01T00:00:00&end=2024-01-02T00:00:00&tz=UTC&gran=hourly",
            "fields is required",
        ),
    ],
)
async def test_data_rules(raw: httpx.AsyncClient, query: str, words: str) -> None:
    """Bad component data requests are 400s with a message saying why."""
    status, message = await _status(raw, f"/v3/components/54369/data?{query}")
    assert (status, words in message) == (400, True), message


async def test_limits_are_strict_and_absolute(raw: httpx.AsyncClient) -> None:
    """31 days minus a bucket passes; exactly 31 days fails; 31 local days over a fall-back fail."""
    ok = "fields=W_avg&start=2024-06-01T00:00:00&end=2024-07-01T23:55:00&tz=UTC&gran=5min"
    exact = "fields=W_avg&start=2024-06-01T00:00:00&end=2024-07-02T00:00:00&tz=UTC&gran=5min"
    spring = "fields=W_avg&start=2024-03-01T00:00:00&end=2024-04-01T00:00:00&tz=America/Los_Angeles&gran=5min"
    assert (await _status(raw, f"/v3/components/54369/data?{ok}"))[0] == 200
    assert (await _status(raw, f"/v3/components/54369/data?{exact}"))[0] == 400
    # 31 local days across a spring-forward are 30 days 23 hours: allowed.
    assert (await _status(raw, f"/v3/components/54369/data?{spring}"))[0] == 200


async def test_granularity_must_be_offered(raw: httpx.AsyncClient) -> None:
    """Site W has no 1min; sites have no latest; latest needs no range."""
    base = "start=2024-01-01T00:00:00&end=2024-01-02T00:00:00&tz=UTC"
    assert (await _status(raw, f"/v3/sites/3393714/data?fields=W_avg&{base}&gran=1min"))[0] == 400
    assert (await _status(raw, f"/v3/sites/3393714/data?fields=Wh_sum&{base}&gran=1min"))[0] == 200
    assert (await _status(raw, "/v3/sites/3393714/data?fields=Wh_sum&tz=UTC&gran=latest"))[0] == 400
    latest = await raw.get("/v3/components/54369/data?fields=W_avg&tz=UTC&gran=latest")
    assert latest.status_code == 200
    assert len(latest.json()["data"]) == 1


async def test_rows_before_commissioning_carry_only_id_and_ts(raw: httpx.AsyncClient) -> None:
    """The lifetime example's shape: early years have id and ts only."""
    body = (
        await raw.get(
            "/v3/components/54369/data?fields=Wh_sum&start=2019-01-01T00:00:00&end=2023-01-01T00:00:00&tz=UTC&gran=yearly"
        )
    ).json()
    rows = body["data"]
    assert [sorted(r) for r in rows[:2]] == [["id", "ts"], ["id", "ts"]]
    assert rows[2]["ts"] == "2021-01-01T00:00:00+00:00"
    assert rows[2]["Wh_sum"] > 0


async def test_timestamps_carry_the_right_offset_across_dst(raw: httpx.AsyncClient) -> None:
    """Leading timestamps in the requested zone; the repeated hour appears twice."""
    rows = (
        await raw.get(
            "/v3/components/54369/data?fields=Wh_sum&start=2024-11-03T00:00:00&end=2024-11-03T03:00:00&tz=America/Los_Angeles&gran=hourly"
        )
    ).json()["data"]
    assert [r["ts"] for r in rows] == [
        "2024-11-03T00:00:00-07:00",
        "2024-11-03T01:00:00-07:00",
        "2024-11-03T01:00:00-08:00",
        "2024-11-03T02:00:00-08:00",
    ]


async def test_aggregations_are_exact(raw: httpx.AsyncClient) -> None:
    """Twelve 5-minute Wh_sum add up to the hour exactly; a day's W_max is the max of its hours."""
    common = "start=2024-06-10T00:00:00&end=2024-06-11T00:00:00&tz=Europe/Berlin"
    five = (
        await raw.get(f"/v3/components/54369/data?fields=Wh_sum,W_max&{common}&gran=5min")
    ).json()["data"]
    hours = (
        await raw.get(f"/v3/components/54369/data?fields=Wh_sum,W_max&{common}&gran=hourly")
    ).json()["data"]
    day = (
        await raw.get(f"/v3/components/54369/data?fields=Wh_sum,W_max&{common}&gran=daily")
    ).json()["data"]
    assert len(five) == 288
    assert len(hours) == 24
    for index, hour in enumerate(hours):
        parts = five[index * 12 : index * 12 + 12]
        assert sum(p["Wh_sum"] for p in parts) == hour["Wh_sum"]
        assert max(p["W_max"] for p in parts) == hour["W_max"]
    assert day[0]["W_max"] == max(h["W_max"] for h in hours)
    assert day[0]["Wh_sum"] == sum(h["Wh_sum"] for h in hours)
    # The meter is in Los Angeles: 21:00 in Berlin is its noon, 10:00 its 1 a.m.
    assert hours[21]["Wh_sum"] > 0
    assert hours[10]["Wh_sum"] == 0


async def test_meter_is_the_sum_of_its_inverters(raw: httpx.AsyncClient) -> None:
    """Physical consistency: the meter reads exactly what its inverters produce."""
    q = "fields=Wh_sum&start=2024-06-10T00:00:00&end=2024-06-11T00:00:00&tz=UTC&gran=hourly"
    meter = (await raw.get(f"/v3/components/54369/data?{q}")).json()["data"]
    parts = [
        (await raw.get(f"/v3/components/{i}/data?{q}")).json()["data"]
        for i in (54370, 54371, 54372)
    ]
    for index, row in enumerate(meter):
        assert row["Wh_sum"] == sum(p[index]["Wh_sum"] for p in parts)


async def test_bulk_rules_and_shape(raw: httpx.AsyncClient) -> None:
    """Monthly only, at most a year, null where a site cannot have the field, no row without components."""
    base = "/v3/partners/111/sites/data?fields=Wh_sum,GHIh_m_sum&tz=UTC"
    assert (
        await _status(raw, f"{base}&gran=daily&start=2023-01-01T00:00:00&end=2023-02-01T00:00:00")
    )[0] == 400
    assert (
        await _status(raw, f"{base}&gran=monthly&start=2023-01-01T00:00:00&end=2024-01-01T00:01:00")
    )[0] == 400
    body = (
        await raw.get(f"{base}&gran=monthly&start=2023-03-15T00:00:00&end=2023-05-02T00:00:00")
    ).json()
    rows = body["data"]
    assert {r["ts"][:10] for r in rows} == {"2023-04-01", "2023-05-01"}
    assert 3393790 not in {r["id"] for r in rows}  # no components
    denver = [r for r in rows if r["id"] == 3393716]
    assert denver
    assert all(r["GHIh_m_sum"] is None for r in denver)


async def test_partner_alert_rules(raw: httpx.AsyncClient) -> None:
    """Partner alerts need updatedSince within 7 days or an openDuring of at most 31 days."""
    url = "/v3/partners/111/alerts?tz=UTC"
    assert (await _status(raw, url))[0] == 400
    old = (datetime.now() - timedelta(days=8)).strftime("%Y-%m-%dT%H:%M:%S")
    recent = (datetime.now() - timedelta(days=6)).strftime("%Y-%m-%dT%H:%M:%S")
    assert (await _status(raw, f"{url}&updatedSince={old}"))[0] == 400
    assert (await _status(raw, f"{url}&updatedSince={recent}"))[0] == 200
    assert (
        await _status(
            raw, f"{url}&openDuringMin=2024-01-01T00:00:00&openDuringMax=2024-02-02T00:00:00"
        )
    )[0] == 400
    assert (
        await _status(
            raw, f"{url}&openDuringMin=2024-01-01T00:00:00&openDuringMax=2024-02-01T00:00:00"
        )
    )[0] == 200
    site = await raw.get(
        "/v3/sites/3393714/alerts?tz=UTC&openDuringMin=2022-01-01T00:00:00&openDuringMax=2024-01-01T00:00:00"
    )
    assert site.status_code == 200
    assert len(site.json()["alerts"]) > 31


async def test_alert_filters(raw: httpx.AsyncClient) -> None:
    """alertType, status and priority filter as documented."""
    url = "/v3/components/54370/alerts?tz=UTC"
    every = (await raw.get(url)).json()["alerts"]
    faults = (await raw.get(f"{url}&alertType=Device%20Fault")).json()["alerts"]
    high = (await raw.get(f"{url}&priority=high")).json()["alerts"]
    closed = (await raw.get(f"{url}&status=closed")).json()["alerts"]
    assert faults
    assert {a["alertType"] for a in faults} == {"Device Fault"}
    assert all(a["descriptionShort"] for a in faults)
    assert high
    assert {a["priority"] for a in high} == {"High"}
    assert closed
    assert all("end" in a for a in closed)
    assert len(every) > len(faults)


async def test_wildcards_need_percent(raw: httpx.AsyncClient) -> None:
    """nodeId matches exactly unless a %25 wildcard is sent."""
    exact = (await raw.get("/v3/partners/111/components?nodeId=OB.001EC193714.1")).json()[
        "components"
    ]
    prefix = (await raw.get("/v3/partners/111/components?nodeId=OB.001EC1%25")).json()["components"]
    nothing = (await raw.get("/v3/partners/111/components?nodeId=OB.001EC1")).json()["components"]
    assert [c["id"] for c in exact] == [54369]
    assert len(prefix) == 8
    assert nothing == []


async def test_gzip_when_asked(sim: Simulator) -> None:
    """Accept-Encoding: gzip gives a gzip body that decompresses to JSON."""
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://localhost") as http:
        token = (await http.post("/oauth/token", data=FORM)).json()["access_token"]
        request = http.build_request(
            "GET",
            "/v3/partners/111/sites",
            headers={"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"},
        )
        response = await http.send(request, stream=True)
        raw_body = b"".join([chunk async for chunk in response.aiter_raw()])
    assert response.headers["content-encoding"] == "gzip"
    assert len(orjson.loads(gzip.decompress(raw_body))["sites"]) == 9


async def test_excess_request_gets_the_documented_429_at_once(
    sim: Simulator, raw: httpx.AsyncClient
) -> None:
    """A second request while one is in flight: 429 with the documented body, answered
    before the first (it does not wait for the slot)."""
    sim.faults = Faults(latency=0.2)
    results: list[tuple[int, bytes]] = []

    async def one() -> None:
        response = await raw.get("/v3/sites/3393714")
        results.append((response.status_code, response.content))

    async with anyio.create_task_group() as group:
        group.start_soon(one)
        with anyio.fail_after(30):  # a hang guard: wait until the first is in flight
            while not sum(sim.stats.in_flight.values()):  # noqa: ASYNC110 - server state
                await anyio.sleep(0.001)
        group.start_soon(one)
    assert [status for status, _ in results] == [429, 200]  # the 429 came back first
    assert orjson.loads(results[0][1]) == {"message": "Too many requests", "statusCode": 429}


async def test_faults_are_reproducible() -> None:
    """The same seed injects the same faults into the same request sequence."""

    async def run(seed: int) -> dict[str, int]:
        sim = Simulator(
            faults=Faults(seed=seed, server_errors=0.2, rate_limits=0.2, html_errors=0.1)
        )
        async with httpx.AsyncClient(
            transport=sim.transport(), base_url="http://localhost"
        ) as http:
            for _ in range(100):
                await http.get("/v3/sites/3393714")
        return dict(sim.stats.faults)

    first, again, other = await run(1), await run(1), await run(2)
    assert first == again
    assert first != other
    assert 10 < first["server_errors"] < 35


async def test_expired_tokens_get_401(clock_sim: tuple[Simulator, list[float]]) -> None:
    """A token past its lifetime is refused."""
    sim, now = clock_sim
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://localhost") as http:
        body = (await http.post("/oauth/token", data=FORM)).json()
        assert "refresh_token" in body
        assert body["expires_in"] == 60
        headers = {"Authorization": f"Bearer {body['access_token']}"}
        assert (await http.get("/v3/sites/3393714", headers=headers)).status_code == 200
        now[0] += 61
        expired = await http.get("/v3/sites/3393714", headers=headers)
        refreshed = (
            await http.post(
                "/oauth/token",
                data={
                    **FORM,
                    "grant_type": "refresh_token",
                    "refresh_token": body["refresh_token"],
                },
            )
        ).json()
    assert expired.status_code == 401
    assert "refresh_token" not in refreshed  # the reference's refresh response


@pytest.fixture
def clock_sim() -> tuple[Simulator, list[float]]:
    now = [1_700_000_000.0]
    return Simulator(token_lifetime=60, clock=lambda: now[0]), now


async def test_repeated_past_requests_are_served_from_cache(
    sim: Simulator, raw: httpx.AsyncClient
) -> None:
    """The same past-range data request twice: same body, counted twice, computed once."""
    url = "/v3/components/54369/data?fields=Wh_sum&start=2024-05-01T00:00:00&end=2024-05-03T00:00:00&tz=UTC&gran=5min"
    first = await raw.get(url)
    cached = sim.core._responses.size
    second = await raw.get(url)
    assert first.content == second.content
    assert len(sim.stats.data_windows) == 2
    assert cached > 0
    assert sim.core._responses.size == cached
    today = datetime.now().strftime("%Y-%m-%dT00:00:00")
    recent = f"/v3/components/54369/data?fields=Wh_sum&start={today}&end={today[:10]}T01:00:00&tz=UTC&gran=5min"
    assert (await raw.get(recent)).status_code == 200
    assert sim.core._responses.size == cached  # ranges touching today are not cached
