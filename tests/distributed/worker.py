"""A separate OS process sharing a credential through Redis (run by the Redis tests).

    python -m tests.distributed.worker calls API_URL REDIS_URL KEY N [--store TOKEN_KEY]
    python -m tests.distributed.worker hold   API_URL REDIS_URL KEY LEASE

``calls`` makes N concurrent ``components.get`` calls and prints a JSON summary; ``hold``
takes a slot, says "holding" and keeps it until killed.
"""

from __future__ import annotations

import json
import sys
import time

import anyio

from locus_async import LocusClient, RedisLimiter, RedisTokenStore
from locus_async.simulator import DEFAULT_ACCOUNT


async def calls(
    api: str, redis_url: str, key: str, count: int, token_key: str | None, seconds: float
) -> None:
    limiter = RedisLimiter(redis_url, key=key, capacity=1, lease=2.0)
    store = RedisTokenStore(redis_url, key=token_key) if token_key else None
    started = time.monotonic()
    waits: list[float] = []
    async with LocusClient(
        auth=DEFAULT_ACCOUNT.provider(store=store), base_url=api, limiter=limiter
    ) as client:

        async def one() -> None:
            asked = time.monotonic()
            await client.components.get(54369)
            waits.append(time.monotonic() - asked)

        done = 0
        while done < count or time.monotonic() - started < seconds:
            async with anyio.create_task_group() as group:
                for _ in range(min(10, max(1, count - done))):
                    group.start_soon(one)
            done += min(10, max(1, count - done))
        stats = client.stats.snapshot()
    await limiter.aclose()
    if store is not None:
        await store.aclose()
    print(
        json.dumps({"stats": stats, "max_wait": max(waits), "elapsed": time.monotonic() - started})
    )


async def hold(redis_url: str, key: str, lease: float) -> None:
    limiter = RedisLimiter(redis_url, key=key, capacity=1, lease=lease)
    async with limiter.slot():
        print("holding", flush=True)
        await anyio.sleep(3600)


if __name__ == "__main__":
    mode, api, redis_url, key, *rest = sys.argv[1:]
    if mode == "calls":
        token_key = rest[rest.index("--store") + 1] if "--store" in rest else None
        seconds = float(rest[rest.index("--seconds") + 1]) if "--seconds" in rest else 0.0
        anyio.run(calls, api, redis_url, key, int(rest[0]), token_key, seconds)
    else:
        anyio.run(hold, redis_url, key, float(rest[0]))
