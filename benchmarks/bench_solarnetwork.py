"""SolarNetwork: what signing costs, and SolarNetClient's throughput against a careful script.

1. Signing one request: the pure ``snws2_authorization`` deriving the key from the secret
   each time, or reusing a key derived once; and the client's ``Snws2Signer.sign`` (adds
   the date and host headers and copies the request; key derived once per day).
2. ``GET /whoami`` N times over loopback against the SolarUser simulator in its own process
   (20 ms latency), concurrency 1 and 4: SolarNetClient against bare httpx +
   anyio.CapacityLimiter signing each request with the public ``snws2_authorization``.
   Rounds alternate so machine noise hits both alike. Target: ratio >= 0.95.

    python benchmarks/bench_solarnetwork.py [--requests 200] [--rounds 5] [--signs 20000]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

import anyio
import httpx
from _common import (
    alternate,
    machine,
    median,
    rate_of,
    simulator_process,
    table,
    throughput_arguments,
)

from locus_async._core.http import Request
from locus_async.simulator import SN_DEFAULT_TOKEN
from locus_async.solarnetwork import (
    Snws2Credentials,
    SolarNetClient,
    http_date,
    snws2_authorization,
)
from locus_async.solarnetwork.auth import Snws2Signer

TOKEN, SECRET = SN_DEFAULT_TOKEN
PATH = "/solaruser/api/v1/sec/whoami"


def signing(count: int) -> list[tuple[str, float]]:
    """Microseconds per signature of one GET, three ways."""
    signer = Snws2Signer(Snws2Credentials(TOKEN, token_secret=SECRET), base_url="http://x:1")
    request = Request("GET", "/solaruser/api/v1/sec/nodes", (("max", "100"), ("offset", "0")))
    now = time.time()
    when = datetime.fromtimestamp(int(now), UTC)
    headers = {"host": "x:1", "x-sn-date": http_date(when)}
    key = signer.key_for(when.date())

    def pure(**credential: object) -> None:
        snws2_authorization(
            method="GET",
            path=request.path,
            query=request.params,
            headers=headers,
            body=b"",
            token_id=TOKEN,
            date=when,
            **credential,  # type: ignore[arg-type]
        )

    cases = [
        (
            "snws2_authorization, key derived each time (secret given)",
            lambda: pure(token_secret=SECRET),
        ),
        ("snws2_authorization, key derived once and reused", lambda: pure(key=key)),
        (
            "Snws2Signer.sign: date, host, headers, request copy, cached key",
            lambda: signer.sign(request, now),
        ),
    ]
    out = []
    for label, call in cases:
        started = time.perf_counter()
        for _ in range(count):
            call()
        out.append((label, (time.perf_counter() - started) / count * 1e6))
    return out


async def bare(url: str, requests: int, allowance: int) -> float:
    limiter = anyio.CapacityLimiter(allowance)
    host = url.split("://", 1)[1]
    async with httpx.AsyncClient(base_url=url) as http:

        async def one() -> None:
            async with limiter:
                when = datetime.now(UTC).replace(microsecond=0)
                headers = {"Host": host, "X-SN-Date": http_date(when)}
                headers["Authorization"] = snws2_authorization(
                    method="GET",
                    path=PATH,
                    query=[],
                    headers=headers,
                    body=b"",
                    token_id=TOKEN,
                    token_secret=SECRET,
                    date=when,
                )
                headers["Accept"] = "application/json"
                response = await http.get(PATH, headers=headers)
            response.raise_for_status()
            response.json()

        await one()  # the connection, as ours gets it
        return await rate_of(requests, one)


async def ours(url: str, requests: int, allowance: int) -> float:
    creds = Snws2Credentials(TOKEN, token_secret=SECRET)
    async with SolarNetClient(
        credentials=creds, base_url=url, max_concurrency=allowance, rate=None
    ) as c:
        await c.whoami()
        rate = await rate_of(requests, c.whoami)
        assert c.stats.rate_limited == 0
        assert c.stats.retries == 0
        return rate


def main() -> None:
    parser = argparse.ArgumentParser()
    throughput_arguments(parser)
    parser.add_argument("--signs", type=int, default=20000)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    signed = [[label, f"{us:.1f}"] for label, us in signing(args.signs)]
    print(table(["signing one GET", "us per request"], signed))
    rows = []
    for allowance in (1, 4):
        with simulator_process(latency=0.02, solarnetwork=True) as url:
            theirs, mine = alternate(args.rounds, bare, ours, url, args.requests, allowance)
        ratio = median([m / t for m, t in zip(mine, theirs, strict=True)])
        rows.append([allowance, f"{median(theirs):.1f}", f"{median(mine):.1f}", f"{ratio:.3f}"])
    print(table(["concurrency", "bare httpx req/s", "SolarNetClient req/s", "ratio"], rows))


if __name__ == "__main__":
    main()
