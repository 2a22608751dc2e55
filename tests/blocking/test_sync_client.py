"""The blocking clients (``locus_async.sync``): the async clients' every method, on one
background event loop, from any thread, closed cleanly however they end."""

from __future__ import annotations

import gc
import inspect
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from types import FrameType
from typing import Any

import anyio
import httpx
import pytest

import locus_async
from locus_async import (
    BearerToken,
    ClientClosed,
    InvalidArgumentType,
    NotFound,
    Priority,
    TimeSeries,
    UsageError,
    sync,
)
from locus_async._shell.blocking import LoopThread, SyncClient, SyncResource
from locus_async.locus import sync as locus_sync
from locus_async.simulator import DEFAULT_ACCOUNT, Simulator, SolarNetSimulator
from locus_async.solarnetwork import sync as sn_sync

BACKENDS = ["asyncio", "trio"]
SITE, COMPONENT = 3393714, 54369
DAYS = {"start": datetime(2024, 1, 1), "end": datetime(2024, 3, 1), "tz": "UTC"}


def _loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.endswith(" event loop")]


def _waiting_for_a_future(frame: FrameType | None) -> bool:
    """Whether a thread's stack (innermost ``frame``) waits in ``Future.result``."""
    while frame is not None:
        if frame.f_code.co_name == "result" and "concurrent" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


def _public(cls: type) -> set[str]:
    return {
        name
        for name, value in inspect.getmembers(cls)
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isasyncgenfunction(value))
    }


def _wrapped(cls: type) -> dict[str, Callable[..., Any]]:
    """name -> the async function each descriptor of ``cls`` wraps."""
    found = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if hasattr(value, "method") and not name.startswith("_"):
                found[name] = value.method
    return found


def _pairs() -> Iterator[tuple[type, type]]:
    yield locus_sync.LocusClient, locus_async.LocusClient
    yield sn_sync.SolarNetClient, locus_async.SolarNetClient
    for module in (locus_sync, sn_sync):
        for name in module.__all__:
            cls = getattr(module, name)
            if issubclass(cls, SyncResource):
                (base,) = (b for b in cls.__orig_bases__ if hasattr(b, "__args__"))  # type: ignore[attr-defined]
                yield cls, base.__args__[0]


@pytest.mark.parametrize(
    ("blocking_cls", "async_cls"), list(_pairs()), ids=lambda c: c.__qualname__
)
def test_every_async_method_has_its_blocking_twin(blocking_cls: type, async_cls: type) -> None:
    """Each blocking class wraps exactly the public methods of its async class, each the
    very function (so the parameters and docs are the async one's)."""
    lifecycle = {"aclose", "from_env", "now", "with_options"}
    wrapped = _wrapped(blocking_cls)
    assert set(wrapped) == _public(async_cls) - lifecycle
    for name, method in wrapped.items():
        assert method is getattr(async_cls, name), name
    if issubclass(blocking_cls, SyncClient):
        resources = {n for n, v in vars(blocking_cls).get("__annotations__", {}).items()}
        assert resources <= set(dir(blocking_cls)) | resources


@pytest.mark.parametrize("backend", BACKENDS)
def test_locus_calls_answer_as_the_async_client_does(backend: str) -> None:
    """The blocking client's answers equal the async client's on the same simulator, on
    asyncio and on trio."""
    sim = Simulator()

    async def expected() -> tuple[Any, ...]:
        async with sim.client() as client:
            return (
                await client.sites.get(SITE),
                await client.partners.sites(111),
                await client.components.data(COMPONENT, fields="Wh_sum", gran="daily", **DAYS),
            )

    site, sites, series = anyio.run(expected)
    with sim.sync_client(backend=backend) as client:
        assert client.sites.get(SITE) == site
        assert client.partners.sites(111) == sites
        got = client.components.data(COMPONENT, fields="Wh_sum", gran="daily", **DAYS)
        assert got.to_rows() == series.to_rows()
        assert len(got.to_rows()) == 60
        plan = client.sites.plan(fields="Wh_sum", gran="daily", **DAYS)
        assert plan == sim.client().sites.plan(fields="Wh_sum", gran="daily", **DAYS)
        assert plan is not None
        assert len(plan) == 1
        assert client.authenticate() == "password"
        with pytest.raises(NotFound):
            client.sites.get(999)
        with pytest.raises(UsageError, match="site_id must be a positive integer"):
            client.sites.get(-1)
    assert client.closed


@pytest.mark.parametrize("backend", BACKENDS)
def test_iter_data_prefetches_in_a_with_block_and_streams_without(backend: str) -> None:
    """``iter_data`` gives a SyncIterator: its length is the window count; with or without
    ``with`` it yields the windows in order, the same rows as one ``data`` call."""
    sim = Simulator()
    args: dict[str, Any] = {"fields": "Wh_sum", "gran": "1min", "tz": "UTC"}
    args.update(start=datetime(2024, 1, 1), end=datetime(2024, 1, 12))
    with sim.sync_client(backend=backend) as client:
        whole = client.components.data(COMPONENT, **args)
        stream = client.components.iter_data(COMPONENT, **args)
        assert isinstance(stream, sync.SyncIterator)
        assert len(stream) == len(client.components.plan(**args) or []) == 3
        plain = [row for part in stream for row in part.to_rows()]
        with client.components.iter_data(COMPONENT, **args) as prefetching:
            parts = list(prefetching)
        assert all(isinstance(p, TimeSeries) for p in parts)
        assert plain == [row for part in parts for row in part.to_rows()] == whole.to_rows()
        assert next(stream, None) is None  # an ended iterator stays ended


@pytest.mark.parametrize("backend", BACKENDS)
def test_solarnetwork_blocking_client(backend: str) -> None:
    """whoami, a paged list as an iterator, the async generator of nodes with metadata and
    a refused call, on both backends."""
    sim = SolarNetSimulator()

    async def expected() -> tuple[Any, ...]:
        async with sim.client() as client:
            return (
                await client.whoami(),
                await client.nodes.list(),
                [pair async for pair in client.nodes_with_metadata()],
            )

    who, nodes, with_meta = anyio.run(expected)
    with sim.sync_client(backend=backend) as client:
        assert client.whoami() == who
        assert list(client.nodes.iter(page_size=2)) == nodes == client.nodes.list()
        assert len(nodes) >= 3
        assert list(client.nodes_with_metadata()) == with_meta
        with pytest.raises(NotFound):
            client.instructions.get(987654321)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_early_break_closes_the_async_iterator(backend: str) -> None:
    """Leaving a ``with`` block after one page cancels the driving task and closes the
    async generator: no slot stays taken and the next call goes through."""
    sim = SolarNetSimulator()
    with sim.sync_client(backend=backend) as client:
        with client.nodes.iter(page_size=1) as nodes:
            first = next(nodes)
        assert next(nodes, None) is None
        assert client.limiter.in_use == 0
        assert client.nodes.list()[0] == first
        it = client.nodes_with_metadata()
        next(it)
        it.close()
        assert next(it, None) is None
        assert client.whoami().token_type


def test_calls_from_many_threads_share_one_limiter() -> None:
    """Eight threads calling at once go through the one limiter: the server never sees two
    requests of the account at once and every answer is right."""
    sim = Simulator()
    sites = sorted(sim.fleet.sites)[:4]
    errors: list[BaseException] = []
    answers: dict[tuple[int, int], int] = {}
    with sim.sync_client() as client:
        start = threading.Barrier(8)

        def work(worker: int) -> None:
            try:
                start.wait()
                for turn in range(5):
                    site = sites[(worker + turn) % len(sites)]
                    answers[worker, turn] = client.sites.get(site).id
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        assert answers == {(w, t): sites[(w + t) % len(sites)] for w in range(8) for t in range(5)}
        assert sim.stats.max_in_flight == 1
        assert 429 not in sim.stats.by_status
        assert client.stats.requests == 41  # the 40 calls and the one token exchange


def test_a_closed_client_says_so_and_its_thread_ends() -> None:
    """After ``close()`` (twice is fine) every call raises ClientClosed and the loop thread
    is gone; a client dropped unclosed stops its thread when collected."""
    before = set(_loop_threads())
    client = Simulator().sync_client()
    assert len(set(_loop_threads()) - before) == 1
    client.close()
    client.close()
    with pytest.raises(ClientClosed, match="is closed"):
        client.sites.get(SITE)
    assert set(_loop_threads()) == before
    dropped = Simulator().sync_client()
    assert dropped.sites.get(SITE).id == SITE
    del dropped
    gc.collect()
    assert set(_loop_threads()) == before


def test_with_options_shares_the_loop_and_outlives_its_parent() -> None:
    """A ``with_options`` view runs on the same loop and counters, keeps working after the
    first client is dropped, and closing it closes both."""
    sim = Simulator()
    client = sim.sync_client()
    view = client.with_options(max_retries=0, priority=Priority.BACKGROUND, timeout=5.0)
    assert view.sites.get(SITE).id == SITE
    assert view.stats is client.stats
    assert view.limiter is client.limiter
    del client
    gc.collect()
    assert view.sites.get(SITE).id == SITE
    view.close()
    assert view.closed
    assert not [t for t in _loop_threads() if t.is_alive() and "LocusClient" in t.name]


def test_from_env_and_refusals() -> None:
    """``from_env`` reads the async client's variables; a bad backend or argument is
    refused at once with the async client's error."""
    sim = Simulator()
    account = DEFAULT_ACCOUNT
    env = {
        "LOCUS_CLIENT_ID": account.client_id,
        "LOCUS_CLIENT_SECRET": account.client_secret,
        "LOCUS_USERNAME": account.username or "",
        "LOCUS_PASSWORD": account.password or "",
        "LOCUS_BASE_URL": "http://127.0.0.1:9",
    }
    with sync.LocusClient.from_env(env, transport=sim.transport()) as client:
        assert isinstance(client, sync.LocusClient)
        assert account.client_secret not in repr(client)
        assert account.password not in repr(client)
        assert client.client.base_url == "http://127.0.0.1:9"
        assert client.sites.get(SITE).id == SITE
    with pytest.raises(InvalidArgumentType, match="backend"):
        sync.LocusClient(auth=BearerToken("t"), backend="curio")
    with pytest.raises(InvalidArgumentType, match="auth must be"):
        sync.LocusClient(auth="t")  # type: ignore[arg-type]


def test_a_call_from_the_loop_itself_is_refused() -> None:
    """An event hook that calls the blocking client (which would wait for itself forever)
    gets a UsageError saying to await the async client there."""
    sim = Simulator()
    box: list[sync.LocusClient] = []
    seen: list[BaseException] = []

    async def hook(request: object) -> None:
        try:
            box[0].sites.get(SITE)
        except UsageError as exc:
            seen.append(exc)

    with sim.sync_client(event_hooks={"request": [hook]}) as client:
        box.append(client)
        assert client.sites.get(SITE).id == SITE
    assert seen
    assert "use the async client there" in str(seen[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_interrupted_wait_cancels_the_call(backend: str) -> None:
    """Ctrl-C while a call waits (a real SIGINT to the main thread) cancels the request on
    the loop and returns once it has unwound: the next call is answered and no slot
    stays taken."""
    assert threading.current_thread() is threading.main_thread()
    sim = Simulator()
    entered = threading.Event()
    hold = {"on": False}

    async def hook(request: object) -> None:
        if hold["on"]:
            entered.set()
            await anyio.sleep_forever()

    def interrupt() -> None:
        entered.wait()
        main = threading.main_thread().ident or 0
        # The signal must land while the main thread waits for the answer: watch for it.
        for _ in range(60_000):
            if _waiting_for_a_future(sys._current_frames().get(main)):
                break
            time.sleep(0.001)
        signal.pthread_kill(main, signal.SIGINT)

    with sim.sync_client(event_hooks={"request": [hook]}, backend=backend) as client:
        client.authenticate()  # the token exchange passes the hook too: hold data calls only
        hold["on"] = True
        helper = threading.Thread(target=interrupt)
        helper.start()
        with pytest.raises(KeyboardInterrupt):
            client.sites.get(SITE)
        helper.join()
        assert client.stats.abandoned == 1  # cancelled on the wire, and unwound
        hold["on"] = False
        assert client.sites.get(SITE).id == SITE  # after the abandoned exchange's hold
        assert client.limiter.in_use == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_interrupt_while_the_call_starts_leaves_nothing_running(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C landing just after the call was handed to the loop, before the wait began
    (the narrowest window), still stops that call: nothing runs on unobserved, and the
    next call is answered."""
    sim = Simulator()
    seen: list[str] = []

    async def hook(request: Any) -> None:
        seen.append(request.url.path)
        if request.url.path == f"/v3/sites/{SITE}":  # the interrupted call, if it got here
            await anyio.sleep_forever()

    original = LoopThread.submit

    def submit_then_interrupt(self: LoopThread, func: Any) -> Any:
        original(self, func)
        raise KeyboardInterrupt

    with sim.sync_client(event_hooks={"request": [hook]}, backend=backend) as client:
        client.authenticate()
        monkeypatch.setattr(LoopThread, "submit", submit_then_interrupt)
        with pytest.raises(KeyboardInterrupt):
            client.sites.get(SITE)
        monkeypatch.undo()
        assert client.components.get(COMPONENT).id == COMPONENT
        assert client.limiter.in_use == 0
    assert seen[0] == "/oauth/token"
    assert seen[-1] == f"/v3/components/{COMPONENT}"


def test_an_injected_http_client_is_used_and_closed_with_the_blocking_client() -> None:
    """``http_client=`` works as for the async client (its event hooks see every
    exchange), and closing the blocking client closes it too: its connections live on the
    private loop, where nothing else could close them."""
    sim = Simulator()
    seen: list[int] = []

    async def hook(response: httpx.Response) -> None:
        seen.append(response.status_code)

    mine = httpx.AsyncClient(transport=sim.transport(), event_hooks={"response": [hook]})
    client = sync.LocusClient(
        auth=DEFAULT_ACCOUNT.provider(), base_url="http://localhost", http_client=mine
    )
    with client:
        assert client.sites.get(SITE).id == SITE
        assert not mine.is_closed
    assert seen == [200, 200]  # the token, then the site
    assert mine.is_closed


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("prefetch", [False, True], ids=["plain", "with"])
def test_closing_an_iterator_after_each_step_frees_everything(backend: str, prefetch: bool) -> None:
    """Closing ``iter_data`` after 0, 1, 2 or 3 windows (with ``with``: while the next
    window may be in flight) cancels the driver wherever it waits: nothing is left
    queued, the next call is answered, and no slot stays taken."""
    sim = Simulator()
    args: dict[str, Any] = {"fields": "Wh_sum", "gran": "1min", "tz": "UTC"}
    args.update(start=datetime(2024, 1, 1), end=datetime(2024, 1, 16))  # 4 windows
    with sim.sync_client(backend=backend) as client:
        for taken in range(4):
            stream = client.components.iter_data(COMPONENT, **args)
            if prefetch:
                stream.__enter__()
            got = [next(stream) for _ in range(taken)]
            stream.close()
            assert len(got) == taken
            assert next(stream, None) is None
            assert client.limiter.waiting == 0
            assert client.sites.get(SITE).id == SITE
            assert client.limiter.in_use == 0
