"""What every SolarNetwork resource sends its requests through: the narrow interface
between the resources and the shell.

Owns: building one SolarUser ``Request`` (prefix, content type, which calls may be
retried), paging a list from offset 0 to its total, and the client's injected clock and
sleep for helpers that poll. Must never: know a resource, or hold a secret.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, TypeVar

from locus_async._core.http import Request, Response
from locus_async._shell.limiter import Priority
from locus_async._shell.session import Session
from locus_async.errors import ResponseDecodeError, UsageError
from locus_async.solarnetwork._core import wire
from locus_async.solarnetwork._core.endpoints import API_PREFIX, FORM_TYPE, JSON_TYPE
from locus_async.solarnetwork._core.envelope import page_decoder
from locus_async.solarnetwork.models import Page

__all__ = ["Requester"]

T = TypeVar("T")


class Requester:
    """Sends SolarUser requests for one client (``signs``: it has credentials)."""

    def __init__(self, session: Session, converter: Any, *, signs: bool) -> None:
        self._session = session
        self.converter = converter
        self.signs = signs

    def monotonic(self) -> float:
        """The client's monotonic clock (injectable)."""
        return self._session.monotonic()

    async def sleep(self, seconds: float) -> None:
        """The client's sleep (injectable): helpers that poll wait with it."""
        await self._session.sleep(seconds)

    async def call(
        self,
        method: str,
        path: str,
        decode: Callable[[Response], T],
        *,
        params: Iterable[wire.Param] = (),
        json: bytes | None = None,
        form: Iterable[wire.Param] | None = None,
        retry_safe: bool | None = None,
        server_wait: float = 0.0,
        authenticate: bool = True,
        sensitive: bool = False,
        accept: str | None = None,
    ) -> T:
        """Send one request under the shell's limiter, signing and retry policy.

        ``retry_safe`` defaults to True for GET, PUT and DELETE (sending them twice does no
        harm) and False otherwise; calls that merge (metadata add, policy add) pass True.
        """
        if authenticate and not self.signs:
            raise UsageError("this call needs credentials: pass Snws2Credentials to the client")
        headers: list[tuple[str, str]] = []
        content = b""
        if json is not None:
            headers.append(("Content-Type", JSON_TYPE))
            content = json
        elif form is not None:
            headers.append(("Content-Type", FORM_TYPE))
            content = wire.form_body(form)
        if accept is not None:
            headers.append(("Accept", accept))
        request = Request(
            method,
            (API_PREFIX + path) if authenticate else path,
            tuple(params),
            tuple(headers),
            content,
            retry_safe=method in ("GET", "PUT", "DELETE") if retry_safe is None else retry_safe,
            authenticate=authenticate,
            sensitive=sensitive,
            server_wait=server_wait,
        )
        return await self._session.call(request, decode, priority=Priority.INTERACTIVE)

    async def pages(
        self,
        path: str,
        item: type[T],
        params: list[wire.Param],
        *,
        page_size: int,
        count: bool = True,
    ) -> AsyncIterator[Page[T]]:
        """Every page of a paged list, from offset 0 until the total is reached. Totals are
        asked for unless ``count`` is False (``withoutTotalResultsCount``: the server
        answers faster; paging ends at a short page, confirmed once when a server caps
        pages below ``page_size``), so nothing is lost either way."""
        decode = page_decoder(self.converter, item)
        offset = largest = 0
        while True:
            page = await self.call(
                "GET",
                path,
                decode,
                params=params + wire.page_params(page_size, offset, count=count),
            )
            if page.starting_offset != offset:
                raise ResponseDecodeError(
                    f"asked for offset {offset} but the page starts at {page.starting_offset}; "
                    "paging on would repeat or skip items",
                    path="$.data.startingOffset",
                    request=f"GET {API_PREFIX}{path}",
                )
            yield page
            got = page.returned_result_count  # items the lenient decoder dropped count too
            offset += got
            if not wire.more_pages(
                got=got, asked=page_size, offset=offset, total=page.total_results, largest=largest
            ):
                return
            largest = max(largest, got)

    def items(
        self,
        path: str,
        item: type[T],
        params: list[wire.Param],
        *,
        page_size: int,
        count: bool = True,
    ) -> AsyncIterator[T]:
        """Every item of a paged list; arguments are checked now, not at the first item."""
        wire.page_params(page_size, 0, count=False)
        return self.each(self.pages(path, item, params, page_size=page_size, count=count))

    @staticmethod
    async def each(pages: AsyncIterator[Page[T]]) -> AsyncIterator[T]:
        async for page in pages:
            for result in page.results:
                yield result
