"""HTTP statuses to our error tree, shared by both providers: the table, ``Retry-After``
and the message found in an error body. Pure: ``now`` is an argument."""

from __future__ import annotations

import email.utils
import math
from typing import Final

import orjson

from locus_async.errors import (
    APIError,
    AuthenticationError,
    BadRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    ValidationFailed,
)

__all__ = ["body_message", "error_for_status", "parse_retry_after"]

_BY_STATUS: Final[dict[int, type[APIError]]] = {
    400: BadRequest,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    422: ValidationFailed,
    429: RateLimited,
}

_REASONS: Final = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def error_for_status(
    status: int,
    message: str,
    *,
    request: str = "",
    code: str | None = None,
    retry_after: float | None = None,
) -> APIError:
    """The exception for an error ``status``: the table above, 5xx as ServerError, else APIError."""
    message = message or _REASONS.get(status, "error")
    if status == 429:
        return RateLimited(message, request=request, code=code, retry_after=retry_after)
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else APIError
    return cls(message, status_code=status, request=request, code=code, retry_after=retry_after)


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def body_message(content: bytes, *, limit: int = 300) -> tuple[str, str | None]:
    """(message, code) from a JSON error body; ``("", None)`` when there is none."""
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return "", None
    if not isinstance(body, dict):
        return "", None
    message = body.get("message") or body.get("error_description") or body.get("error") or ""
    code = body.get("code")
    message = message if isinstance(message, str) else ""
    return message[:limit], code if isinstance(code, str) else None
