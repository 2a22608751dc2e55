"""The blocking face of an async client: one event loop on a background thread, and the
pieces that turn the async client's methods into ordinary calls on it.

Owns: ``LoopThread`` (a daemon thread running one anyio event loop, reached through a
blocking portal; a call made from any thread waits for its answer there, and an
interrupted wait cancels the call), ``SyncIterator`` (an async iterator consumed from
blocking code, driven by one task so that task groups and cancel scopes held across its
steps stay in one task), ``SyncResource``/``SyncClient`` (a blocking view of an async
resource or client on one loop) and the descriptors that declare their methods once,
typed from the async method they wrap: ``blocking`` (a coroutine), ``blocking_iter`` (an
async iterator) and ``passthrough`` (pure, no I/O). Must never: know a provider, or run the
async client anywhere but on its loop thread.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Concatenate,
    Generic,
    ParamSpec,
    Self,
    TypeVar,
    overload,
)

import anyio
from anyio.from_thread import BlockingPortal

from locus_async.errors import ClientClosed, InvalidArgumentType, UsageError

if TYPE_CHECKING:
    from locus_async._shell.client import ShellClient
    from locus_async._shell.limiter import Limiter, Priority
    from locus_async._shell.stats import ClientStats
    from locus_async._shell.transport import Timeouts

__all__ = [
    "BACKENDS",
    "LoopThread",
    "SyncClient",
    "SyncIterator",
    "SyncResource",
    "blocking",
    "blocking_iter",
    "check_backend",
    "passthrough",
]

T = TypeVar("T")
R = TypeVar("R")
S = TypeVar("S")
P = ParamSpec("P")
A = TypeVar("A")
C = TypeVar("C", bound="ShellClient")

#: The event loops a blocking client can run its async client on.
BACKENDS = ("asyncio", "trio")


def check_backend(backend: object) -> None:
    """Refuse an event loop the blocking clients cannot run on, in one line."""
    if backend not in BACKENDS:
        raise InvalidArgumentType(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")


class LoopThread:
    """One event loop on a daemon thread; ``run(func)`` calls ``await func()`` there from
    any thread and waits for the answer. A daemon thread, so that a client nobody closed
    never keeps the interpreter from exiting."""

    def __init__(self, owner: str, *, backend: str = "asyncio") -> None:
        check_backend(backend)
        self.owner = owner
        self.backend = backend
        self._portal: BlockingPortal | None = None
        self._failure: BaseException | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(target=self._main, name=f"{owner} event loop", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise UsageError(
                f"{owner} could not start its {backend} event loop: {self._failure}"
            ) from self._failure

    def _main(self) -> None:
        try:
            anyio.run(self._serve, backend=self.backend)
        except BaseException as exc:  # reported to the constructor, which raises it
            self._failure = exc
            self._ready.set()

    async def _serve(self) -> None:
        async with BlockingPortal() as portal:
            self._portal = portal
            self._ready.set()
            await portal.sleep_until_stopped()

    @property
    def closed(self) -> bool:
        return self._stopped

    def on_loop(self) -> bool:
        """Whether the caller runs on this loop's own thread."""
        return threading.get_ident() == self._thread.ident

    def _checked_portal(self) -> BlockingPortal:
        if self._stopped or self._portal is None:
            raise ClientClosed(
                f"this {self.owner} is closed: make a new one, or call it inside its 'with' block"
            )
        if self.on_loop():
            raise UsageError(
                f"this {self.owner} was called from its own event loop (an event hook or "
                "callback, for example): use the async client there, with await"
            )
        return self._portal

    def submit(self, func: Callable[[], Awaitable[T]]) -> concurrent.futures.Future[T]:
        """Start ``await func()`` on the loop; its future, to wait on or cancel."""
        return self._checked_portal().start_task_soon(func)

    def run(self, func: Callable[[], Awaitable[T]]) -> T:
        """``await func()`` on the loop, waiting here for its result or its error. A wait
        interrupted here (Ctrl-C, for example) cancels the call there and returns once it
        has unwound: it gives its slot of the limiter back (with the hold an exchange
        abandoned on the wire keeps) instead of running on unobserved."""
        lock = threading.Lock()
        unwound = threading.Event()
        state: dict[str, Any] = {"abandoned": False, "scope": None}

        async def call() -> T | None:
            with anyio.CancelScope() as scope:
                with lock:  # held for two assignments: the waiting side may give up now
                    if state["abandoned"]:
                        return None
                    state["scope"] = scope
                try:
                    return await func()
                finally:
                    unwound.set()
            return None  # cancelled because the caller gave up: nobody reads this

        try:
            future = self.submit(call)
            result = future.result()
        except BaseException:
            # Interrupted (Ctrl-C) while the call was being started or awaited, or the call
            # failed: whichever, make sure it is not left running unobserved, and come back
            # only once it has unwound on the loop (its slot given back, files closed).
            with lock:
                state["abandoned"] = True
                scope = state["scope"]
            portal = self._portal
            if scope is not None and portal is not None and not unwound.is_set():
                with contextlib.suppress(RuntimeError):  # the loop has finished
                    portal.call(scope.cancel)
                while not unwound.wait(0.05) and self._thread.is_alive():
                    pass
            raise
        return result  # type: ignore[return-value]

    def stop(self) -> None:
        """Stop the loop (what still runs on it is cancelled) and end the thread; again is
        a no-op."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        portal = self._portal
        if portal is not None and self._thread.is_alive():
            if self.on_loop():
                raise UsageError(f"this {self.owner} cannot be closed from its own event loop")
            with contextlib.suppress(RuntimeError):  # the loop has already finished
                portal.call(portal.stop, True)
            self._thread.join()


_END: Any = object()


class SyncIterator(Generic[T]):
    """An async iterator of the async client, consumed from blocking code:
    ``for item in it``, or ``with it: for item in it`` (the same, with the async
    iterator's own ``async with`` entered, such as a window stream's prefetch, and
    closed at the end of the block). One task on the loop drives the async iterator, one
    step per ``next()``; leaving early (``close()``, ``break`` in the ``with`` block, an
    error or an interrupted wait) cancels that task and closes the async iterator.
    Not for several threads at once, like any iterator."""

    def __init__(self, loop: LoopThread, source: AsyncIterator[T]) -> None:
        self._loop = loop
        self._source = source
        self._driver: concurrent.futures.Future[None] | None = None
        self._channel: tuple[Any, Any] | None = None
        self._done = False

    def __repr__(self) -> str:
        return f"SyncIterator({self._source!r})"

    def __len__(self) -> int:
        """How many items (or windows) the async iterator will give, where it says."""
        return len(self._source)  # type: ignore[arg-type]

    def __iter__(self) -> Self:
        return self

    def __enter__(self) -> Self:
        if self._driver is None and not self._done:
            self._start(enter=True)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _start(self, *, enter: bool) -> None:
        started = threading.Event()

        async def drive() -> None:
            asks_in, asks_out = anyio.create_memory_object_stream[None](1)
            answers_in, answers_out = anyio.create_memory_object_stream[tuple[str, Any]](1)
            self._channel = (asks_in, answers_out)
            started.set()
            with asks_out, answers_in:
                if enter and hasattr(self._source, "__aenter__"):
                    async with self._source:  # type: ignore[attr-defined]
                        await self._serve(asks_out, answers_in)
                else:
                    try:
                        await self._serve(asks_out, answers_in)
                    finally:
                        aclose = getattr(self._source, "aclose", None)
                        if aclose is not None:
                            with anyio.CancelScope(shield=True):
                                await aclose()

        self._driver = self._loop.submit(drive)
        started.wait()

    async def _serve(self, asks: Any, answers: Any) -> None:
        async for _ in asks:
            try:
                item = await self._source.__anext__()
            except StopAsyncIteration:
                await answers.send(("end", _END))
                return
            except Exception as exc:
                await answers.send(("error", exc))
                return
            await answers.send(("item", item))

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        if self._driver is None:
            self._start(enter=False)
        assert self._channel is not None
        asks_in, answers_out = self._channel

        async def step() -> tuple[str, Any]:
            await asks_in.send(None)
            answer: tuple[str, Any] = await answers_out.receive()
            return answer

        try:
            kind, value = self._loop.run(step)
        except BaseException:
            self.close()
            raise
        if kind == "item":
            return value  # type: ignore[no-any-return]
        self.close()
        if kind == "error":
            raise value
        raise StopIteration

    def close(self) -> None:
        """Stop iterating: cancels the driving task and closes the async iterator."""
        self._done = True
        driver, self._driver = self._driver, None
        if driver is not None:
            driver.cancel()
            concurrent.futures.wait([driver])


class _Bridge(Generic[A]):
    """What the descriptors reach through: the async object and the loop it runs on."""

    _target: A
    _loop: LoopThread


class _Wrapper:
    """What the three descriptors share: the async function they wrap (``method``, so its
    parameters and docs are the async one's) and the attribute name they are bound to."""

    def __init__(self, method: Callable[..., Any]) -> None:
        self.method = method
        self.__doc__ = method.__doc__
        self._name: str = method.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name


class blocking(_Wrapper, Generic[S, P, R]):  # noqa: N801 - a decorator-like descriptor
    """``name = blocking(AsyncAPI.name)`` in a blocking class: a method with the async
    method's parameters that waits for its result on the loop."""

    def __init__(self, method: Callable[Concatenate[S, P], Awaitable[R]]) -> None:
        super().__init__(method)

    @overload
    def __get__(self, obj: None, owner: type) -> Self: ...
    @overload
    def __get__(self, obj: _Bridge[Any], owner: type) -> Callable[P, R]: ...
    def __get__(self, obj: _Bridge[Any] | None, owner: type) -> Self | Callable[P, R]:
        if obj is None:
            return self
        target: Callable[P, Awaitable[R]] = getattr(obj._target, self._name)
        loop = obj._loop

        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            return loop.run(functools.partial(target, *args, **kwargs))

        return functools.update_wrapper(call, target)


class blocking_iter(_Wrapper, Generic[S, P, T]):  # noqa: N801 - a decorator-like descriptor
    """``name = blocking_iter(AsyncAPI.name)``: the async method's async iterator as a
    ``SyncIterator`` (arguments are checked at once, requests start on iteration)."""

    def __init__(self, method: Callable[Concatenate[S, P], AsyncIterator[T]]) -> None:
        super().__init__(method)

    @overload
    def __get__(self, obj: None, owner: type) -> Self: ...
    @overload
    def __get__(self, obj: _Bridge[Any], owner: type) -> Callable[P, SyncIterator[T]]: ...
    def __get__(self, obj: _Bridge[Any] | None, owner: type) -> Self | Callable[P, SyncIterator[T]]:
        if obj is None:
            return self
        target: Callable[P, AsyncIterator[T]] = getattr(obj._target, self._name)
        loop = obj._loop

        def call(*args: P.args, **kwargs: P.kwargs) -> SyncIterator[T]:
            return SyncIterator(loop, target(*args, **kwargs))

        return functools.update_wrapper(call, target)


class passthrough(_Wrapper, Generic[S, P, R]):  # noqa: N801 - a decorator-like descriptor
    """``name = passthrough(AsyncAPI.name)``: a pure method of the async object (no I/O,
    no await), called as it is."""

    def __init__(self, method: Callable[Concatenate[S, P], R]) -> None:
        super().__init__(method)

    @overload
    def __get__(self, obj: None, owner: type) -> Self: ...
    @overload
    def __get__(self, obj: _Bridge[Any], owner: type) -> Callable[P, R]: ...
    def __get__(self, obj: _Bridge[Any] | None, owner: type) -> Self | Callable[P, R]:
        if obj is None:
            return self
        bound: Callable[P, R] = getattr(obj._target, self._name)
        return bound


class SyncResource(_Bridge[A]):
    """A blocking view of one resource of the async client (``client.sites``...)."""

    def __init__(self, target: A, loop: LoopThread) -> None:
        self._target = target
        self._loop = loop

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._target!r})"


def _shut(loop: LoopThread, client: ShellClient) -> None:
    """Close the async client on its loop, then stop the loop (once, from any thread but
    the loop's own: collected there, the daemon thread is left to end with the process)."""
    if loop.closed or loop.on_loop():
        return
    try:
        loop.run(client._aclose_on_own_loop)
    finally:
        loop.stop()


class SyncClient(_Bridge[C]):
    """What every blocking client shares: the loop thread its async client runs on, the
    lifecycle (``with``, ``close()``, closed at exit or when collected), the counters
    and ``with_options``. Safe to call from several threads: every call runs on the one
    loop, through the one limiter."""

    _origin: SyncClient[C] | None = None
    #: The async client class a subclass wraps (for ``from_env``).
    _async_type: ClassVar[type[ShellClient]]

    def __init__(self, build: Callable[[], C], *, backend: str = "asyncio") -> None:
        """``build()`` makes the async client (after ``backend`` is checked, so a refused
        backend leaves nothing half made)."""
        check_backend(backend)
        client = build()
        owner = f"sync {type(client).__name__}"
        self._loop = LoopThread(owner, backend=backend)
        self._target = client
        self._closer = weakref.finalize(self, _shut, self._loop, client)
        self._bind()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> Self:
        """A client configured from the environment, read as the async client's
        ``from_env`` reads it; keyword arguments win over the environment."""
        return cls(**cls._async_type._env_kwargs(env, kwargs))

    def _bind(self) -> None:
        """Build the blocking resources over ``self._target``'s (the provider's part)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"sync.{self._target!r}"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool and stop the loop thread (again is a no-op)."""
        self._closer()

    @property
    def closed(self) -> bool:
        return self._loop.closed

    @property
    def client(self) -> C:
        """The async client underneath (its coroutines run only on this client's loop)."""
        return self._target

    @property
    def stats(self) -> ClientStats:
        """Counters of this client's traffic (see the async client's ``stats``)."""
        return self._target.stats

    @property
    def limiter(self) -> Limiter:
        return self._target.limiter

    def now(self) -> float:
        """The client's wall clock, unix seconds."""
        return self._target.now()

    def with_options(
        self,
        *,
        timeout: float | Timeouts | object | None = None,
        max_retries: int | None = None,
        priority: Priority | None = None,
    ) -> Self:
        """This client for some calls with other options, sharing the loop, connections,
        limiter and counters (closing either closes both); see the async
        ``with_options``."""
        clone = object.__new__(type(self))
        clone._origin = self  # the first client's finalizer closes the loop: keep it alive
        clone._loop = self._loop
        clone._closer = self._closer
        clone._target = self._target.with_options(
            timeout=timeout, max_retries=max_retries, priority=priority
        )
        clone._bind()
        return clone
