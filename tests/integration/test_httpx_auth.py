"""``HttpxAuth``: our token providers on a user's own ``httpx.AsyncClient``, with their
whole lifecycle (one grant for many requests, refresh, a resend after a 401)."""

from __future__ import annotations

import anyio
import httpx
import pytest

from locus_async import HttpxAuth, InvalidArgumentType, UsageError
from locus_async.simulator import DEFAULT_ACCOUNT, IN_PROCESS_URL, Simulator

pytestmark = pytest.mark.anyio


def _http(sim: Simulator, auth: HttpxAuth) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=sim.transport(), base_url=IN_PROCESS_URL, auth=auth)


async def test_one_grant_serves_many_concurrent_requests() -> None:
    """Twenty concurrent GETs on the user's client cost one password grant, all 200."""
    sim = Simulator()
    auth = HttpxAuth(DEFAULT_ACCOUNT.provider())
    statuses: list[int] = []
    async with _http(sim, auth) as http:

        async def get() -> None:
            statuses.append((await http.get("/v3/sites/3393714")).status_code)

        async with anyio.create_task_group() as group:
            for _ in range(20):
                group.start_soon(get)
        assert (await http.get("/v3/sites/3393714")).json()["name"] == "Test Site"
    assert statuses == [200] * 20
    assert sim.stats.grants == {"password": 1}
    assert auth.grants == {"password": 1}


async def test_a_revoked_token_is_replaced_and_the_request_sent_once_more() -> None:
    """After the server revokes every token, the next request gets a 401, a new grant
    and one resend: the caller sees 200."""
    sim = Simulator()
    auth = HttpxAuth(DEFAULT_ACCOUNT.provider())
    async with _http(sim, auth) as http:
        assert (await http.get("/v3/components/54369")).status_code == 200
        sim.core.revoke_all()
        answer = await http.get("/v3/components/54369")
    assert answer.status_code == 200
    assert answer.json()["id"] == 54369
    assert sum(sim.stats.grants.values()) == 2
    assert sim.stats.by_status[401] == 1


async def test_an_expiring_token_is_renewed_before_it_is_sent() -> None:
    """With the server's clock (and the provider's) past most of the lifetime, the next
    request renews first: no 401 at all."""
    moment = [1_700_000_000.0]
    sim = Simulator(clock=lambda: moment[0], token_lifetime=600)
    auth = HttpxAuth(DEFAULT_ACCOUNT.provider())
    auth.wall = lambda: moment[0]  # type: ignore[method-assign]
    ticks = [0.0]
    auth.monotonic = lambda: ticks[0]  # type: ignore[method-assign]
    async with _http(sim, auth) as http:
        await http.get("/v3/sites/3393714")
        moment[0] += 590
        ticks[0] += 590
        assert (await http.get("/v3/sites/3393714")).status_code == 200
    assert sum(sim.stats.grants.values()) == 2
    assert sim.stats.by_status[401] == 0


def test_what_httpx_auth_refuses() -> None:
    """Not a provider: a typed error; a sync httpx.Client: one line saying why."""
    with pytest.raises(InvalidArgumentType, match=r"^provider must be a token provider"):
        HttpxAuth("secret")
    auth = HttpxAuth(DEFAULT_ACCOUNT.provider())
    assert "demo-secret" not in repr(auth)
    with (
        httpx.Client(base_url="http://127.0.0.1:9", auth=auth) as sync,
        pytest.raises(UsageError, match=r"^HttpxAuth needs an httpx.AsyncClient"),
    ):
        sync.get("/v3/sites/1")


async def test_a_request_cancelled_at_every_await_point_leaves_the_provider_usable() -> None:
    """An httpx GET through HttpxAuth (a grant, then the request) cancelled after 0, 1,
    2, ... turns: the provider is never left mid-refresh; the next GET works and the
    grants never exceed one per cancelled refresh plus one."""
    from tests.reliability.test_cancel_points import SteppingTransport, _cancel_after

    finished_in_a_row = 0
    for ticks in range(400):
        sim = Simulator()
        auth = HttpxAuth(DEFAULT_ACCOUNT.provider())
        transport = SteppingTransport(sim.transport())
        async with httpx.AsyncClient(
            transport=transport, base_url=IN_PROCESS_URL, auth=auth
        ) as http:
            done = await _cancel_after(ticks, lambda: http.get("/v3/sites/3393714"))
            assert auth.provider._refreshing is None or auth.provider._refreshing.is_set()
            with anyio.fail_after(30):  # a hang guard only
                assert (await http.get("/v3/sites/3393714")).status_code == 200
        assert sum(sim.stats.grants.values()) <= 2
        finished_in_a_row = finished_in_a_row + 1 if done else 0
        if finished_in_a_row == 3:
            break
    assert finished_in_a_row == 3
    assert ticks > 6
