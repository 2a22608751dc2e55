"""SolarNetwork responses: the ``{success, code, message, data}`` envelope, its list shapes,
and errors mapped onto the shared error tree. Pure: no I/O, ``now`` is an argument.

* ``success: false`` is an error whatever the HTTP status.
* Paged lists: ``data = {totalResults?, startingOffset, returnedResultCount, results}``.
* Streamed lists (instructions, user events): ``data = [...]``, omitted when empty.
* Plain lists (tokens, archived nodes): ``data = [...]``.
* 401, and 403 carrying ``X-SN-ErrorMessage``, are authentication failures ("Date skew too
  large" becomes ``ClockSkewError``); any other 403 is ``PermissionDenied``; 404 NotFound;
  422 ValidationFailed; 429 RateLimited with ``X-SN-Rate-Limit-Retry-After`` (epoch
  milliseconds) turned into seconds; 5xx ServerError.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final, TypeVar

import cattrs

from locus_async._core.converter import decode_json, structure
from locus_async._core.http import Response, redact
from locus_async._core.status import error_for_status
from locus_async.errors import (
    APIError,
    AuthenticationError,
    ClockSkewError,
    PermissionDenied,
    ResponseDecodeError,
)
from locus_async.solarnetwork.models import Page

__all__ = [
    "batch_decoder",
    "bool_decoder",
    "decipher_solarnetwork",
    "envelope_data",
    "first_decoder",
    "list_decoder",
    "object_decoder",
    "page_decoder",
    "success_decoder",
]

T = TypeVar("T")

RETRY_AFTER_HEADER: Final = "x-sn-rate-limit-retry-after"
ERROR_HEADER: Final = "x-sn-errormessage"


def _body(content: bytes) -> dict[str, Any] | None:
    try:
        body = decode_json(content)
    except ResponseDecodeError:
        return None
    return body if isinstance(body, dict) else None


def _status_of_failure(code: object) -> int:
    """The HTTP-like status for ``success: false`` on a 2xx answer."""
    if isinstance(code, str) and code.startswith(("VAL.", "DAO.")):
        return 404 if code == "DAO.00102" else 422
    return 400


def _detail(error: object) -> str:
    """One entry of ``errors[]``: ``field: message`` when it names a field."""
    if not isinstance(error, dict):
        return str(error)
    message = str(error.get("message", "")) or str(error.get("code", ""))
    field = error.get("field")
    return f"{field}: {message}" if field else message


def decipher_solarnetwork(response: Response, now: float, secrets: Iterable[str] = ()) -> None:
    """Raise the right error for a SolarNetwork error status; return for a 2xx, whose body
    the decoder reads once (``envelope_data`` raises for ``success: false``)."""
    status = response.status_code
    if 200 <= status < 300:
        return
    raise _failure(status, _body(response.content), response, now, secrets)


def _failure(
    status: int,
    body: dict[str, Any] | None,
    response: Response,
    now: float,
    secrets: Iterable[str],
) -> APIError:
    """The error for a failed answer: ``status`` (the HTTP one, or the one ``success: false``
    on a 2xx stands for) and the envelope's ``code``, ``message`` and ``errors``."""
    code = body.get("code") if body else None
    code = code if isinstance(code, str) else None
    message = body.get("message") if body else None
    message = message if isinstance(message, str) else ""
    label = response.request.label
    header_message = response.header(ERROR_HEADER) or ""
    text = redact(message or header_message, secrets)
    if status == 401 or (status == 403 and header_message):
        if "skew" in text.lower():
            return ClockSkewError(
                f"{text} (the local clock is more than 15 minutes off the server's)",
                status_code=status,
                request=label,
                code=code,
            )
        return AuthenticationError(
            text or "signature refused", status_code=status, request=label, code=code
        )
    if status == 403:
        return PermissionDenied(text or "ACCESS_DENIED", status_code=403, request=label, code=code)
    retry_after = None
    raw = response.header(RETRY_AFTER_HEADER)
    if raw:
        try:
            retry_after = max(0.0, int(raw) / 1000.0 - now)
        except ValueError:
            retry_after = None
    errors = body.get("errors") if body else None
    if isinstance(errors, list) and errors:
        details = [_detail(e) for e in errors[:5]]
        details = [d for d in details if d and d != text]
        if details:
            joined = redact("; ".join(details), secrets)
            text = f"{text}: {joined}" if text else joined
    return error_for_status(status, text, request=label, code=code, retry_after=retry_after)


def envelope_data(response: Response, *, bare: bool = False) -> Any:
    """The ``data`` of a successful envelope (None when absent). ``bare``: a body without
    the envelope is the data itself (``/associate.json`` may answer that way)."""
    label = response.request.label
    body = decode_json(response.content, request=label, quote_body=not response.request.sensitive)
    if isinstance(body, dict) and isinstance(body.get("success"), bool):
        if body["success"] is False:  # an error whatever the status (the shell redacts it)
            raise _failure(_status_of_failure(body.get("code")), body, response, 0.0, ())
        return body.get("data")
    if bare and isinstance(body, dict):
        return body
    raise ResponseDecodeError("expected a {success, data} envelope", path="$", request=label)


def _structure(converter: cattrs.Converter, data: object, cls: Any, response: Response) -> Any:
    return structure(converter, data, cls, request=response.request.label, root="$.data")


def object_decoder(
    converter: cattrs.Converter, cls: type[T], *, bare: bool = False
) -> Callable[[Response], T]:
    """``data`` is one object, required."""

    def decode(response: Response) -> T:
        data = envelope_data(response, bare=bare)
        if data is None:
            raise ResponseDecodeError(
                f"the answer has no data (expected {cls.__name__})",
                path="$.data",
                request=response.request.label,
            )
        result: T = _structure(converter, data, cls, response)
        return result

    return decode


def first_decoder(converter: cattrs.Converter, cls: type[T]) -> Callable[[Response], T | None]:
    """One object or none: ``data`` absent, empty, an object, an array, or a paged shape
    (a node's metadata comes back paged in the reference and bare from other servers)."""

    def decode(response: Response) -> T | None:
        data = envelope_data(response)
        root = "$.data"
        if isinstance(data, dict) and isinstance(data.get("results"), list):
            data, root = data["results"], "$.data.results"
        if isinstance(data, list):
            if not data:
                return None
            data, root = data[0], root + "[0]"
        if data is None or data == {}:
            return None
        result: T = structure(converter, data, cls, request=response.request.label, root=root)
        return result

    return decode


def page_decoder(converter: cattrs.Converter, item: type[T]) -> Callable[[Response], Page[T]]:
    """The paged shape: ``{totalResults?, startingOffset, returnedResultCount, results}``."""
    target: Any = Page[item]  # type: ignore[valid-type]

    def decode(response: Response) -> Page[T]:
        data = envelope_data(response)
        page: Page[T] = _structure(converter, data, target, response)
        # The items sent, not those read: the lenient decoder may have dropped some.
        sent = data.get("results") if isinstance(data, dict) else None
        count = len(sent) if isinstance(sent, list) else len(page.results)
        if page.returned_result_count != count:
            raise ResponseDecodeError(
                f"returnedResultCount is {page.returned_result_count} but "
                f"{count} results came back; paging on would lose or repeat data",
                path="$.data.returnedResultCount",
                request=response.request.label,
            )
        return page

    return decode


def list_decoder(converter: cattrs.Converter, item: type[T]) -> Callable[[Response], list[T]]:
    """Streamed and plain lists: ``data`` is an array, or absent for none. A single object
    (``/instr/add`` for one node) is a list of one."""
    target: Any = tuple[item, ...]  # type: ignore[valid-type]

    def decode(response: Response) -> list[T]:
        data = envelope_data(response)
        if data is None:
            return []
        if isinstance(data, dict):
            return [_structure(converter, data, item, response)]
        return list(_structure(converter, data, target, response))

    return decode


def batch_decoder(
    converter: cattrs.Converter, item: type[T]
) -> Callable[[Response], tuple[list[T], int, int | None]]:
    """A list that may come flat (``data`` an array, or absent for none) or paged (``data``
    the paged object): ``(items, count sent, total or None)``. ``/user/events`` is
    documented as both; the count sent (not the items read: the lenient decoder may drop
    some) is what the next offset adds."""
    flat = list_decoder(converter, item)
    paged = page_decoder(converter, item)

    def decode(response: Response) -> tuple[list[T], int, int | None]:
        data = envelope_data(response)
        if isinstance(data, dict) and "results" in data:
            page = paged(response)
            return list(page.results), page.returned_result_count, page.total_results
        sent = len(data) if isinstance(data, list) else (0 if data is None else 1)
        return flat(response), sent, None

    return decode


def success_decoder(response: Response) -> None:
    """Answers that carry no data: only the envelope is checked."""
    envelope_data(response)


def bool_decoder(response: Response) -> bool:
    data = envelope_data(response)
    if type(data) is not bool:
        raise ResponseDecodeError(
            "expected a boolean in data", path="$.data", request=response.request.label
        )
    return data
