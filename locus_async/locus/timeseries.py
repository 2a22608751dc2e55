"""Time series results and the engine that fetches them window by window.

Owns: ``TimeSeries`` (rows, Arrow, pandas, polars from column storage) and the fetch
engine: plan windows (``_core.windows``), send them through the client's limiter with one
more worker than the allowance so the slot never idles, merge in time order without
duplicate ``(id, ts)``. Must never: hold a limiter slot while parsing (the session sees to
that), or keep more than ``allowance`` windows in memory when streaming.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import anyio
import anyio.abc

from locus_async._core.converter import is_strict
from locus_async._core.http import Request, Response
from locus_async._shell.fanout import run_bounded
from locus_async._shell.limiter import Priority
from locus_async.locus._core.arrow_series import arrow_available, parse_data_arrow
from locus_async.locus._core.query import DataQuery
from locus_async.locus._core.series import Columns, merge_columns, parse_data_body
from locus_async.locus._core.windows import Window
from locus_async.locus.models import Granularity

if TYPE_CHECKING:
    import pandas
    import polars
    import pyarrow

    from locus_async._shell.session import Session

__all__ = ["TimeSeries", "WindowStream"]


class TimeSeries:
    """Rows of one or more entities: ``{"id", "ts", <field>...}`` per row, in time order.

    ``ts`` is an aware datetime in the requested zone; a field the server left out of a row
    is None. Storage is columnar; ``to_arrow``/``to_pandas``/``to_polars`` need the
    ``arrow``/``pandas``/``polars`` extras.
    """

    __slots__ = ("_arrow", "_cols", "fields", "gran", "requests", "tz")

    def __init__(
        self,
        columns: Columns,
        *,
        tz: ZoneInfo,
        gran: Granularity,
        requests: int = 0,
    ) -> None:
        self._cols: Columns | None = columns
        self._arrow: pyarrow.Table | None = None
        self.fields: tuple[str, ...] = columns.fields
        self.tz = tz
        self.gran = gran
        #: Data requests that produced this series (retries not counted).
        self.requests = requests

    @classmethod
    def from_arrow(
        cls, table: pyarrow.Table, *, tz: ZoneInfo, gran: Granularity, requests: int = 0
    ) -> TimeSeries:
        """A series held as an Arrow table (``id`` int64, ``ts`` timestamp[us, UTC], one
        float64 per field, in ``(ts, id)`` order): what the fast decoder makes. Its
        columns are made from it only when asked for."""
        series = cls(Columns(tuple(table.column_names[2:])), tz=tz, gran=gran, requests=requests)
        series._cols = None
        series._arrow = table
        return series

    @property
    def _columns(self) -> Columns:
        if self._cols is None:
            table = self._arrow
            assert table is not None
            from array import array

            import pyarrow as pa

            ts = table["ts"].cast(pa.int64()).to_pylist()  # microseconds since the epoch
            columns = Columns(
                self.fields,
                array("q", table["id"].to_pylist()),
                array("q", [t // 1_000_000 for t in ts]),
            )
            for name in self.fields:
                columns.values[name] = table[name].to_pylist()
            self._cols = columns
        return self._cols

    @property
    def arrow(self) -> pyarrow.Table | None:
        """The Arrow table this series is held as (UTC timestamps), or None."""
        return self._arrow

    def __repr__(self) -> str:
        return (
            f"TimeSeries(rows={len(self)}, fields={list(self.fields)}, gran={self.gran.value!r}, "
            f"tz={self.tz.key!r})"
        )

    def __len__(self) -> int:
        if self._cols is None and self._arrow is not None:
            return int(self._arrow.num_rows)
        return len(self._columns)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        columns = self._columns
        tz = self.tz
        names = self.fields
        values = [columns.values[name] for name in names]
        for i, (ident, stamp) in enumerate(zip(columns.ids, columns.ts, strict=True)):
            row: dict[str, Any] = {"id": ident, "ts": datetime.fromtimestamp(stamp, tz)}
            for name, column in zip(names, values, strict=True):
                row[name] = column[i]
            yield row

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TimeSeries):
            return NotImplemented
        a, b = self._columns, other._columns
        return (
            self.fields == other.fields
            and a.ids == b.ids
            and a.ts == b.ts
            and all(a.values[f] == b.values[f] for f in self.fields)
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def columns(self) -> Columns:
        """The underlying column storage (ids, unix-second timestamps, one list per field)."""
        return self._columns

    @property
    def ids(self) -> list[int]:
        """Distinct entity ids, in order of first appearance."""
        return list(dict.fromkeys(self._columns.ids))

    @property
    def timestamps(self) -> list[datetime]:
        return [datetime.fromtimestamp(t, self.tz) for t in self._columns.ts]

    def column(self, name: str) -> list[float | None]:
        """One field's values, row-aligned."""
        return list(self._columns.values[name])

    def to_rows(self) -> list[dict[str, Any]]:
        return list(self)

    def to_arrow(self, tz: str | None = None) -> pyarrow.Table:
        """An Arrow table: ``id`` int64, ``ts`` timestamp[us, tz], one float64 per field."""
        import pyarrow as pa

        zone = tz or self.tz.key
        if self._arrow is not None:
            table = self._arrow
            return table.set_column(1, "ts", table["ts"].cast(pa.timestamp("us", tz=zone)))
        columns = self._columns
        stamps = pa.array(columns.ts, type=pa.int64()).cast(pa.timestamp("s", tz="UTC"))
        data: dict[str, Any] = {
            "id": pa.array(columns.ids, type=pa.int64()),
            "ts": stamps.cast(pa.timestamp("us", tz=zone)),
        }
        for name in self.fields:
            data[name] = pa.array(columns.values[name], type=pa.float64())
        return pa.table(data)

    def to_pandas(self) -> pandas.DataFrame:
        """A DataFrame indexed by tz-aware ``ts``, with ``id`` and one float column per field."""
        import pandas as pd

        columns = self._columns
        index = pd.DatetimeIndex(
            pd.to_datetime(pd.Series(columns.ts, dtype="int64"), unit="s", utc=True), name="ts"
        ).tz_convert(self.tz.key)
        data: dict[str, Any] = {"id": pd.Series(columns.ids, dtype="int64", index=index)}
        for name in self.fields:
            data[name] = pd.Series(columns.values[name], dtype="float64", index=index)
        return pd.DataFrame(data, index=index)

    def to_polars(self) -> polars.DataFrame:
        """A polars DataFrame with ``id``, tz-aware ``ts`` and one Float64 column per field."""
        import polars as pl

        columns = self._columns
        stamps = pl.from_epoch(pl.Series("ts", columns.ts, dtype=pl.Int64), time_unit="s")
        return pl.DataFrame(
            {
                "id": pl.Series("id", columns.ids, dtype=pl.Int64),
                "ts": stamps.dt.replace_time_zone("UTC").dt.convert_time_zone(self.tz.key),
                **{
                    name: pl.Series(name, columns.values[name], dtype=pl.Float64)
                    for name in self.fields
                },
            }
        )

    @classmethod
    def concat(cls, parts: Sequence[TimeSeries]) -> TimeSeries:
        """Merge series of the same fields in time order, one row per ``(id, ts)``."""
        if not parts:
            raise ValueError("concat needs at least one TimeSeries")
        first = parts[0]
        merged = merge_columns([p._columns for p in parts], first.fields)
        return cls(merged, tz=first.tz, gran=first.gran, requests=sum(p.requests for p in parts))

    @classmethod
    def empty(cls, fields: Sequence[str], *, tz: ZoneInfo, gran: Granularity) -> TimeSeries:
        return cls(Columns(tuple(fields)), tz=tz, gran=gran)


# --------------------------------------------------------------------------- the engine


def window_request(path: str, query: DataQuery, window: Window | None) -> Request:
    """The GET for one window (``None``: the single request of ``latest``)."""
    if window is None:
        return Request("GET", path, query.query())
    return Request("GET", path, query.query(window.start, window.end))


def _decoder(
    query: DataQuery, window: Window | None, *, arrow: bool = False, strict: bool = False
) -> Callable[[Response], Columns | pyarrow.Table]:
    # Only a window widened past the requested range (its start or end was an ambiguous
    # local time) can bring rows the caller did not ask for; otherwise trust the server.
    low = high = None
    if window is not None and query.start is not None and query.end is not None:
        low = query.start if window.start < query.start else None
        high = query.end if window.end > query.end else None

    def decode(response: Response) -> Columns | pyarrow.Table:
        if arrow:
            table = parse_data_arrow(response.content, query.fields)
            if table is not None:
                return _within(table, low, high)
        columns = parse_data_body(
            response.content, query.fields, request=response.request.label, strict=strict
        )
        return columns.within(low, high) if low is not None or high is not None else columns

    return decode


def _within(table: pyarrow.Table, low: int | None, high: int | None) -> pyarrow.Table:
    if low is None and high is None:
        return table
    import pyarrow as pa
    import pyarrow.compute as pc

    seconds = table["ts"].cast(pa.int64())
    keep = pc.and_(
        pc.greater_equal(seconds, (low if low is not None else -(2**62)) * 1_000_000),
        pc.less(seconds, (high if high is not None else 2**62) * 1_000_000),
    )
    return table.filter(keep)


async def fetch_window(
    session: Session,
    path: str,
    query: DataQuery,
    window: Window | None,
    priority: Priority,
    *,
    arrow: bool = False,
) -> TimeSeries:
    """One window as a TimeSeries (rows outside the requested range dropped). ``arrow``:
    decode straight into Arrow when the body allows it (``arrow_available()``)."""
    decoded = await session.call(
        window_request(path, query, window),
        _decoder(
            query,
            window,
            arrow=arrow and arrow_available(),
            strict=is_strict(session.converter),
        ),
        priority=priority,
    )
    if not isinstance(decoded, Columns):
        return TimeSeries.from_arrow(decoded, tz=query.tz, gran=query.gran, requests=1)
    return TimeSeries(
        merge_columns([decoded], query.fields), tz=query.tz, gran=query.gran, requests=1
    )


async def fetch_series(
    session: Session,
    path: str,
    query: DataQuery,
    windows: Sequence[Window] | None,
    *,
    priority: Priority = Priority.INTERACTIVE,
) -> TimeSeries:
    """All windows concurrently through the limiter, merged. ``None``: one latest request."""
    if windows is None:
        return await fetch_window(session, path, query, None, priority)
    if not windows:
        return TimeSeries.empty(query.fields, tz=query.tz, gran=query.gran)
    parts: list[TimeSeries | None] = [None] * len(windows)

    async def job(index: int) -> None:
        parts[index] = await fetch_window(session, path, query, windows[index], priority)

    # One worker more than the allowance keeps a request queued for the slot at all times.
    await run_bounded(len(windows), session.limiter.capacity + 1, job)
    done = [p for p in parts if p is not None]
    return TimeSeries.concat(done)


class WindowStream:
    """Per-window results of a data call, in time order, with bounded memory.

    ``async for part in stream`` fetches up to the allowance's worth of windows at a time
    and holds no task between steps, so breaking out early is always safe. Inside
    ``async with stream:`` it also prefetches in the background, so the limiter slot stays
    busy while you process a window; at most ``allowance + 1`` windows are fetched ahead of
    the one you hold. Leaving the ``async with`` block cancels what is still in flight.
    """

    def __init__(
        self,
        session: Session,
        path: str,
        query: DataQuery,
        windows: Sequence[Window] | None,
        *,
        priority: Priority = Priority.INTERACTIVE,
        before: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._session = session
        self._path = path
        self._query = query
        self._windows: Sequence[Window | None] = [None] if windows is None else windows
        self._priority = priority
        self._before = before
        self._next = 0  # index of the next window handed out
        self._buffer: list[TimeSeries] = []
        self._group: anyio.abc.TaskGroup | None = None
        self._ready: dict[int, anyio.Event] = {}
        self._results: dict[int, TimeSeries | BaseException] = {}
        self._room: anyio.Semaphore | None = None

    def __len__(self) -> int:
        """How many windows (requests) the stream will fetch."""
        return len(self._windows)

    def __aiter__(self) -> WindowStream:
        return self

    async def _fetch(self, index: int) -> TimeSeries:
        window = self._windows[index]
        return await fetch_window(self._session, self._path, self._query, window, self._priority)

    async def __anext__(self) -> TimeSeries:
        if self._before is not None:
            before, self._before = self._before, None
            await before()
        if self._next >= len(self._windows):
            raise StopAsyncIteration
        if self._group is not None:
            return await self._take_prefetched()
        if not self._buffer:
            first = self._next
            size = min(max(1, self._session.limiter.capacity), len(self._windows) - first)
            results: list[TimeSeries | None] = [None] * size

            async def job(offset: int) -> None:
                results[offset] = await self._fetch(first + offset)

            await run_bounded(size, size, job)
            self._buffer = [r for r in results if r is not None]
        self._next += 1
        return self._buffer.pop(0)

    async def _take_prefetched(self) -> TimeSeries:
        index = self._next
        await self._event(index).wait()
        self._next += 1
        result = self._results.pop(index)
        del self._ready[index]
        assert self._room is not None
        self._room.release()
        if isinstance(result, BaseException):
            raise result
        return result

    async def _produce(self, group: anyio.abc.TaskGroup) -> None:
        assert self._room is not None
        for index in range(self._next, len(self._windows)):
            await self._room.acquire()
            group.start_soon(self._prefetch, index)

    async def _prefetch(self, index: int) -> None:
        try:
            self._results[index] = await self._fetch(index)
        except Exception as exc:  # delivered to the consumer, in order
            self._results[index] = exc
        finally:
            self._event(index).set()

    def _event(self, index: int) -> anyio.Event:
        """The "window ``index`` is done" event, made by whichever side asks first."""
        event = self._ready.get(index)
        if event is None:
            event = self._ready[index] = anyio.Event()
        return event

    async def __aenter__(self) -> WindowStream:
        if self._before is not None:
            before, self._before = self._before, None
            await before()
        self._room = anyio.Semaphore(max(1, self._session.limiter.capacity) + 1)
        group = anyio.create_task_group()
        await group.__aenter__()
        self._group = group
        group.start_soon(self._produce, group)
        return self

    async def __aexit__(self, *exc_info: object) -> bool | None:
        group, self._group = self._group, None
        if group is None:
            return None
        group.cancel_scope.cancel()
        return await group.__aexit__(*exc_info)  # type: ignore[arg-type]
