"""Locus v3 error responses: the one decipher of the provider (token grants included).

Owns: turning a Locus error answer into the right APIError through the shared status
table (``locus_async._core.status``). Must never: do I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

from locus_async._core.http import Response, redact
from locus_async._core.status import body_message, error_for_status, parse_retry_after

__all__ = ["decipher_locus"]


def decipher_locus(response: Response, *, now: float, secrets: Iterable[str] = ()) -> None:
    """Raise the right APIError for a Locus error response; return for a 2xx."""
    status = response.status_code
    if 200 <= status < 300:
        return
    message, code = body_message(response.content)
    if response.request.sensitive:
        message = f"token request rejected: {message}" if message else "token request rejected"
    retry_after = parse_retry_after(response.header("retry-after"), now=now)
    raise error_for_status(
        status,
        redact(message, secrets),
        request=response.request.label,
        code=code,
        retry_after=retry_after,
    )
