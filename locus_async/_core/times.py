"""Time zones and ISO-8601 input, checked the same way for both providers.

Owns: ``resolve_tz`` (an IANA zone from a name or a ZoneInfo) and ``from_iso`` (an ISO
string whose failure names the argument). Must never: read a clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from locus_async.errors import InvalidArgumentType, UsageError

__all__ = ["from_iso", "resolve_tz"]


def resolve_tz(tz: object) -> ZoneInfo:
    """An IANA zone from a name or a ZoneInfo; anything else is a UsageError."""
    if isinstance(tz, ZoneInfo):
        return tz
    if isinstance(tz, tzinfo) and tz is UTC:
        return ZoneInfo("UTC")
    if not isinstance(tz, str):
        raise InvalidArgumentType(
            f"tz must be an IANA zone name or a ZoneInfo, not {type(tz).__name__}"
        )
    if not tz or tz != tz.strip() or ".." in tz or tz.startswith("/"):
        raise UsageError(f"tz {tz!r} is not a valid IANA time zone")
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UsageError(
            f"tz {tz!r} is not a known IANA time zone (for example 'America/Los_Angeles')"
        ) from None


def from_iso(text: str, name: str, what: str, example: str) -> datetime:
    """``datetime.fromisoformat`` whose failure is a UsageError naming the argument."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{name} {text!r} is not an ISO-8601 {what} (for example {example!r})"
        ) from None
