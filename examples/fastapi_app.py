"""A FastAPI service on locus_async: one client for the whole app, made in the lifespan.

Run it (credentials from LOCUS_* variables, see README):

    uvicorn examples.fastapi_app:app

Under several workers (``uvicorn --workers 4`` or gunicorn), each worker process has its
own client; set REDIS_URL so they share the credential's one-request-at-a-time allowance
and one token through Redis instead of each assuming it has the whole allowance:

    REDIS_URL=redis://127.0.0.1:6379/0 uvicorn examples.fastapi_app:app --workers 4
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request

from locus_async import LocusClient, NotFound, PermissionDenied, RedisLimiter, RedisTokenStore
from locus_async.locus.client import auth_from_env


def client_from_env() -> LocusClient:
    """A client from LOCUS_* variables; with REDIS_URL, limits and tokens shared in Redis."""
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        return LocusClient.from_env()
    key = os.environ.get("LOCUS_REDIS_KEY", "locus:" + os.environ.get("LOCUS_CLIENT_ID", "default"))
    auth = auth_from_env(os.environ)
    if hasattr(auth, "store"):
        auth.store = RedisTokenStore(redis_url, key=f"{key}:token")
    capacity = int(os.environ.get("LOCUS_MAX_CONCURRENCY", "1"))
    return LocusClient.from_env(
        auth=auth, limiter=RedisLimiter(redis_url, key=key, capacity=capacity)
    )


def locus(request: Request) -> LocusClient:
    """The app's one client (made in the lifespan): inject it with ``LocusDep``."""
    client: LocusClient = request.app.state.locus
    return client


LocusDep = Annotated[LocusClient, Depends(locus)]


def create_app(make_client: Callable[[], LocusClient] = client_from_env) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with make_client() as client:
            app.state.locus = client
            yield
            await client.limiter.aclose()

    app = FastAPI(title="Fleet API", lifespan=lifespan)

    @app.get("/sites/{site_id}")
    async def site(site_id: int, client: LocusDep) -> dict[str, Any]:
        try:
            found = await client.sites.get(site_id)
        except (NotFound, PermissionDenied) as exc:
            raise HTTPException(status_code=exc.status_code, detail=exc.message) from None
        return {"id": found.id, "name": found.name, "timezone": found.location_timezone}

    @app.get("/sites/{site_id}/energy")
    async def energy(site_id: int, start: date, end: date, client: LocusDep) -> dict[str, Any]:
        """Daily energy (kWh) of a site, in its own time zone."""
        found = await client.sites.get(site_id)
        series = await client.sites.data(
            site_id,
            fields=["Wh_sum"],
            start=start,
            end=end,
            tz=found.location_timezone or "UTC",
            gran="daily",
        )
        return {
            "site": site_id,
            "days": [
                {
                    "day": row["ts"].date().isoformat(),
                    "kwh": None if row["Wh_sum"] is None else row["Wh_sum"] / 1000,
                }
                for row in series
            ],
        }

    @app.get("/health")
    async def health(client: LocusDep) -> dict[str, Any]:
        return {"ok": True, "stats": client.stats.snapshot()}

    return app


app = create_app()
