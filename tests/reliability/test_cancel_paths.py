"""The other async paths this round touched, cancelled at each await point: SolarNetwork
calls (signed in the slot, paged lists), ``LocusClient.authenticate`` (a flow stopped
before its request), and a whole backfill (lock, checkpoint, prefetch, writes). After each
cancellation nothing is held and the next call (or run) goes through at once."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pyarrow.parquet as pq
import pytest

from locus_async import Backfill, BackfillSpec, LocusClient, Priority, SolarNetClient
from locus_async._shell.store import open_store
from locus_async.simulator import RateRule, Simulator, SolarNetSimulator
from tests.conftest import FakeClock
from tests.datasets import checkpoint_path, temporaries
from tests.reliability.test_cancel_points import SteppingTransport, _cancel_after

BACKENDS = [pytest.param("asyncio", id="asyncio"), pytest.param("trio", id="trio")]
SPEC = BackfillSpec(
    fields="Wh_sum", start="2024-01-01", end="2024-02-10", tz="UTC", gran="hourly",
    components=[54369],
)  # fmt: skip  # two windows


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _stepping(sim: Simulator | SolarNetSimulator) -> Any:
    """A client of ``sim`` over a transport with real await points, on a fake clock (a hold
    after a cancel on the wire is waited out on it, not for real)."""
    clock = FakeClock()
    transport = SteppingTransport(sim.transport())
    return sim.client(strict=True, transport=transport, clock=clock.monotonic, sleep=clock.sleep)


def _idle(client: Any) -> None:
    assert client.limiter.in_use == 0
    assert client.limiter.waiting == 0
    assert client.stats.in_flight == 0


async def _sweep(
    make: Callable[[], Any],
    call: Callable[[Any], Awaitable[object]],
    then: Callable[[Any], Awaitable[object]],
) -> int:
    """Cancel ``call`` on a fresh client after 0, 1, 2, ... turns until it finishes first
    three times running; after every cancellation the client is idle and ``then`` works.
    Returns how many turns the sweep covered."""
    in_a_row = 0
    for ticks in range(600):
        async with make() as client:
            done = await _cancel_after(ticks, lambda: call(client))
            _idle(client)
            with anyio.fail_after(30):  # a hang guard only
                await then(client)
            _idle(client)
        in_a_row = in_a_row + 1 if done else 0
        if in_a_row == 3:
            return ticks
    raise AssertionError("the call never finished")


@pytest.mark.anyio
async def test_solarnetwork_calls_cancelled_at_every_await_point_leak_nothing() -> None:
    """A signed call and a paged list, each cancelled at every turn: the next call works."""
    sim = SolarNetSimulator()

    async def whoami(client: SolarNetClient) -> object:
        return await client.whoami()

    async def nodes(client: SolarNetClient) -> object:
        return await client.nodes.list(page_size=2)  # two pages

    assert await _sweep(lambda: _stepping(sim), whoami, nodes) > 3
    assert await _sweep(lambda: _stepping(sim), nodes, whoami) > 6


@pytest.mark.anyio
async def test_authenticate_cancelled_at_every_await_point_leaks_nothing() -> None:
    """``authenticate()`` (a token grant, its request never sent) cancelled at every turn."""
    sim = Simulator()

    async def authenticate(client: LocusClient) -> object:
        return await client.authenticate()

    async def get(client: LocusClient) -> object:
        return await client.components.get(54369)

    assert await _sweep(lambda: _stepping(sim), authenticate, get) > 3


@pytest.mark.anyio
async def test_a_with_options_call_cancelled_at_every_await_point_leaks_nothing() -> None:
    """A call through ``with_options`` (its own timeout, retries and lane, the shared
    limiter) cancelled at every turn, both providers: the shared limiter is idle after
    each, and the client and its copy still work."""
    sim, sn = Simulator(), SolarNetSimulator()

    async def get(client: LocusClient) -> object:
        quick = client.with_options(timeout=5, max_retries=1, priority=Priority.BACKGROUND)
        return await quick.components.get(54369)

    async def plain(client: LocusClient) -> object:
        return await client.components.get(54369)

    async def whoami(client: SolarNetClient) -> object:
        return await client.with_options(timeout=5, max_retries=0).whoami()

    assert await _sweep(lambda: _stepping(sim), get, plain) > 3
    assert await _sweep(lambda: _stepping(sn), whoami, whoami) > 2


class _TickingClock(FakeClock):
    """A fake clock whose sleep is an await point too (as a real sleep is)."""

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await anyio.lowlevel.checkpoint()


def _paced_and_skewed(sim_rate: bool = True, *, paged: bool = False) -> Any:
    """A SolarNetClient paced to its server's rule (burst 1: the second call waits), with
    a machine clock 20 minutes slow (the first call is refused, then re-signed), on one
    ticking fake clock shared with the server."""
    clock = _TickingClock(1_709_251_200.0)
    sim = SolarNetSimulator(
        clock=clock.time,
        sleep=clock.sleep,
        rate=RateRule(burst=1, per_second=1) if sim_rate else None,
        paged_events=paged,
        events=5,
        page_cap=2,
    )
    return sim.client(
        strict=True,
        transport=SteppingTransport(sim.transport()),
        clock=clock.monotonic,
        sleep=clock.sleep,
        wall=lambda: clock.time() - 1200,
    )


@pytest.mark.anyio
async def test_pacing_skew_and_paged_events_cancelled_at_every_await_point() -> None:
    """The new await points of this round, each cancelled at every turn: the pacing wait,
    the re-signed exchange after a clock-skew refusal, and /user/events read as pages;
    afterwards nothing is held and the next call goes through (no 429, no hang)."""

    async def twice(client: SolarNetClient) -> object:
        await client.whoami()  # refused for skew, learned, signed again
        return await client.whoami()  # paced: waits for the bucket

    async def events(client: SolarNetClient) -> object:
        return await client.events.list(page_size=2)

    assert await _sweep(_paced_and_skewed, twice, twice) > 6
    assert await _sweep(lambda: _paced_and_skewed(paged=True), events, twice) > 6


async def _asyncio_cancellations(
    client: SolarNetClient, call: Callable[[], Awaitable[object]], *, ticks: int
) -> None:
    """``call`` under ``asyncio.timeout(0)``, beside a failing TaskGroup sibling, and
    ``task.cancel()`` after 0..``ticks`` loop ticks; after each, the client is idle and
    ``whoami`` goes through."""
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0):
            await call()
    _idle(client)

    async def fail() -> None:
        raise RuntimeError("sibling failed")

    with pytest.raises(ExceptionGroup):  # noqa: PT012 - the group is the statement
        async with asyncio.TaskGroup() as group:
            group.create_task(call())
            group.create_task(fail())
    _idle(client)
    for tick in range(ticks):
        task = asyncio.create_task(call())
        for _ in range(tick):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task  # finished first (the later ticks) or cancelled
        _idle(client)
        async with asyncio.timeout(30):  # a hang guard only
            assert (await client.whoami()).token == "demo-sn-token"


@pytest.mark.asyncio
async def test_asyncio_cancellations_of_paced_and_skewed_calls_leak_nothing() -> None:
    """``asyncio.timeout(0)``, a failing sibling, and ``task.cancel()`` after each tick of
    a paced call whose first signature is refused for skew: the next call goes through,
    and the server never answered 429."""
    async with _paced_and_skewed() as client:
        await _asyncio_cancellations(client, client.whoami, ticks=40)
        assert client.stats.rate_limited == 0
        assert client.stats.responses[401] == 1  # the skew was learned once, and kept
        assert client.stats.paced_seconds > 30  # the calls did wait for the bucket


def _turns(step: int) -> Iterator[int]:
    """0, step, 2 step, ... with the step growing by 1/40 of the turns reached: dense where
    a run starts, and reaching the end of any run however many turns its threads take (a
    slow or traced machine gives the canceller more turns)."""
    ticks = 0
    while ticks < 10**7:
        yield ticks
        ticks += step + ticks // 40


def _check_dataset_after(out: Path, finished: bool) -> None:
    """After a cancelled run: nothing holds the lock, no temporary file is left, and the
    checkpoint (if any) says complete only if the run got to its end."""
    if not out.exists():
        return
    with open_store(out).lock():  # free: a second run could take it at once
        pass
    assert not temporaries(out)
    checkpoint = checkpoint_path(out)
    if checkpoint.exists() and not finished:
        assert json.loads(checkpoint.read_text())["state"] != "complete"


async def _finish(sim: Simulator, out: Path) -> None:
    """The next run goes through and the dataset is whole, without a duplicate row."""
    async with _stepping(sim) as client:
        with anyio.fail_after(60):  # a hang guard only
            result = await Backfill(client, SPEC, out).run()
    assert result.complete
    table = pq.read_table(out)
    keys = list(zip(table.column("id").to_pylist(), table.column("ts").to_pylist(), strict=True))
    assert len(keys) == len(set(keys)) == 40 * 24


@pytest.mark.anyio
async def test_a_backfill_cancelled_at_each_await_point_leaves_a_resumable_directory(
    tmp_path: Path,
) -> None:
    """A backfill cancelled after 0, 3, 6, ... turns (authentication, entities, the first
    window, the lock, the checkpoint, each write) until it finishes first: every time the
    lock is free, no temporary file is left, the checkpoint never claims complete, and the
    next run completes the dataset exactly."""
    sim = Simulator()
    in_a_row = 0
    for index, ticks in enumerate(_turns(3)):
        out = tmp_path / f"out-{index}"
        async with _stepping(sim) as client:
            done = await _cancel_after(ticks, lambda: Backfill(client, SPEC, out).run())  # noqa: B023
            _idle(client)
        _check_dataset_after(out, done)
        await _finish(sim, out)
        in_a_row = in_a_row + 1 if done else 0
        if in_a_row == 2:
            assert index > 5  # the sweep went through the run, not past it
            return
    raise AssertionError("the backfill never finished")


# -- plain asyncio: timeout(0), a failing TaskGroup sibling, task.cancel() each tick ------


@pytest.mark.asyncio
async def test_asyncio_cancellations_of_solarnetwork_calls_leak_nothing() -> None:
    """``asyncio.timeout(0)`` and a failing sibling around a signed call; then
    ``task.cancel()`` after each loop tick: the next call always goes through."""
    sim = SolarNetSimulator()
    async with _stepping(sim) as client:
        await _asyncio_cancellations(client, client.whoami, ticks=0)
        await _asyncio_cancellations(client, lambda: client.nodes.list(page_size=2), ticks=60)


@pytest.mark.asyncio
async def test_asyncio_cancellations_of_a_backfill_leave_it_resumable(tmp_path: Path) -> None:
    """``asyncio.timeout(0)``, a failing sibling, and ``task.cancel()`` after 0..80 ticks
    of a backfill: the lock is free, the checkpoint never says complete, the next run
    completes."""
    sim = Simulator()
    out = tmp_path / "timeout"
    async with _stepping(sim) as client:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0):
                await Backfill(client, SPEC, out).run()
        _idle(client)
    _check_dataset_after(out, False)
    await _finish(sim, out)

    out = tmp_path / "sibling"

    async def fail() -> None:
        await asyncio.sleep(0)
        raise RuntimeError("sibling failed")

    async with _stepping(sim) as client:
        with pytest.raises(ExceptionGroup):  # noqa: PT012 - the group is the statement
            async with asyncio.TaskGroup() as group:
                group.create_task(Backfill(client, SPEC, out).run())
                group.create_task(fail())
        _idle(client)
    _check_dataset_after(out, False)
    await _finish(sim, out)

    for ticks in range(0, 80, 4):
        out = tmp_path / f"tick-{ticks}"
        async with _stepping(sim) as client:
            task = asyncio.create_task(Backfill(client, SPEC, out).run())
            for _ in range(ticks):
                await asyncio.sleep(0)
            task.cancel()
            try:
                await task
                finished = True
            except asyncio.CancelledError:
                finished = False
            _idle(client)
        _check_dataset_after(out, finished)
        await _finish(sim, out)


@pytest.mark.anyio
async def test_a_cluster_partition_cancelled_at_every_await_point_leaks_nothing() -> None:
    """A Dask partition's windows (fetched at once through the limiter) cancelled at every
    turn: nothing is held, and the next partition returns every window, in order."""
    from zoneinfo import ZoneInfo

    from locus_async.distributed import _fetch_all
    from locus_async.locus._core.query import DataQuery
    from locus_async.locus._core.windows import Window, parse_granularity

    sim = Simulator()
    zone = ZoneInfo("UTC")
    start = 1_704_067_200  # 2024-01-01
    query = DataQuery(("Wh_sum",), zone, parse_granularity("hourly"), start, start + 3 * 86_400)
    windows = [Window(start + day * 86_400, start + (day + 1) * 86_400, zone) for day in range(3)]

    async def partition(client: LocusClient) -> object:
        return await _fetch_all(client, "components", 54369, query, windows, arrow=False)

    async def whole(client: LocusClient) -> None:
        series = await partition(client)
        assert isinstance(series, list)
        assert [len(s) for s in series] == [24, 24, 24]
        firsts = [int(s.timestamps[0].timestamp()) for s in series]
        assert firsts == [w.start for w in windows]

    assert await _sweep(lambda: _stepping(sim), partition, whole) > 6


class _ThreadDask:
    """A stand-in for a ``dask.distributed.Client``: ``submit`` runs the partition in a
    thread, against a simulator of its own (as a worker would, with its own client), and
    returns a ``concurrent.futures.Future`` (what ``DaskFetcher`` uses: result, done,
    cancel). Plugins registered are recorded."""

    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(1)
        self.worker_sim = Simulator()
        self.plugins: list[str] = []

    def register_plugin(self, plugin: Any) -> None:
        self.plugins.append(plugin.name)

    def submit(self, _fn: Any, _credential: Any, *args: Any, arrow: bool, **_: Any) -> Any:
        from locus_async.distributed import _fetch_all

        async def partition() -> Any:
            async with self.worker_sim.client() as client:
                return await _fetch_all(client, *args, arrow=arrow)

        return self.pool.submit(anyio.run, partition)


async def _finish_on(sim: Simulator, out: Path, dask: _ThreadDask, credential: Any) -> None:
    """The next ``run_on`` goes through and the dataset is whole, each row once."""
    async with _stepping(sim) as client:
        with anyio.fail_after(60):  # a hang guard only
            result = await Backfill(client, SPEC, out).run_on(dask, credential)
    assert result.complete
    table = pq.read_table(out)
    keys = list(zip(table.column("id").to_pylist(), table.column("ts").to_pylist(), strict=True))
    assert len(keys) == len(set(keys)) == 40 * 24


@pytest.mark.anyio
async def test_a_cluster_backfill_cancelled_at_each_await_point_leaves_a_resumable_directory(
    tmp_path: Path,
) -> None:
    """``run_on`` (the plugin registered in a thread, partitions submitted, each gathered
    in a thread) cancelled after 0, 3, 6, ... turns until it finishes first: the
    coordinator's client is idle, the lock free, no temporary left, and the next
    ``run_on`` completes the dataset exactly, each row once."""
    from locus_async._shell.dask_plugin import profiler_deadlocks
    from locus_async.distributed import Credential

    sim = Simulator()
    credential = Credential("sweep", redis="redis://127.0.0.1:1/0")  # never reached here
    dask = _ThreadDask()
    in_a_row = 0
    try:
        for index, ticks in enumerate(_turns(3)):
            out = tmp_path / f"out-{index}"
            async with _stepping(sim) as client:
                backfill = Backfill(client, SPEC, out)
                done = await _cancel_after(
                    ticks,
                    lambda: backfill.run_on(dask, credential, partition_windows=1),  # noqa: B023
                )
                _idle(client)
            _check_dataset_after(out, done)
            await _finish_on(sim, out, dask, credential)
            in_a_row = in_a_row + 1 if done else 0
            if in_a_row == 2:
                assert index > 5  # the sweep went through the run, not past it
                break
        else:
            raise AssertionError("the cluster backfill never finished")
    finally:
        dask.pool.shutdown(wait=True)
    if profiler_deadlocks():
        assert set(dask.plugins) == {"locus-async-profiler-off"}


@pytest.mark.asyncio
async def test_asyncio_cancellations_of_a_cluster_backfill_leave_it_resumable(
    tmp_path: Path,
) -> None:
    """``run_on`` under ``asyncio.timeout(0)``, beside a failing TaskGroup sibling, and
    ``task.cancel()`` after 0, 4, ... 76 ticks: each time the coordinator's client is idle,
    the lock free, and the next ``run_on`` completes the dataset exactly."""
    from locus_async.distributed import Credential

    sim = Simulator()
    credential = Credential("sweep-asyncio", redis="redis://127.0.0.1:1/0")  # never reached
    dask = _ThreadDask()

    async def fail() -> None:
        await asyncio.sleep(0)
        raise RuntimeError("sibling failed")

    try:
        out = tmp_path / "timeout"
        async with _stepping(sim) as client:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0):
                    await Backfill(client, SPEC, out).run_on(dask, credential)
            _idle(client)
        _check_dataset_after(out, False)
        await _finish_on(sim, out, dask, credential)

        out = tmp_path / "sibling"
        async with _stepping(sim) as client:
            with pytest.raises(ExceptionGroup):  # noqa: PT012 - the group is the statement
                async with asyncio.TaskGroup() as group:
                    group.create_task(Backfill(client, SPEC, out).run_on(dask, credential))
                    group.create_task(fail())
            _idle(client)
        _check_dataset_after(out, False)
        await _finish_on(sim, out, dask, credential)

        for ticks in range(0, 80, 4):
            out = tmp_path / f"tick-{ticks}"
            async with _stepping(sim) as client:
                task = asyncio.create_task(Backfill(client, SPEC, out).run_on(dask, credential))
                for _ in range(ticks):
                    await asyncio.sleep(0)
                task.cancel()
                try:
                    await task
                    finished = True
                except asyncio.CancelledError:
                    finished = False
                _idle(client)
            _check_dataset_after(out, finished)
            await _finish_on(sim, out, dask, credential)
    finally:
        dask.pool.shutdown(wait=True)
