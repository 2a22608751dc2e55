"""Argument checks shared by every public constructor: one ``UsageError`` line naming the
argument, raised before anything is built or sent.

Owns: numbers (finite, in range, whole where needed) and flags. Must never: do I/O.
"""

from __future__ import annotations

import math
from typing import Final

from locus_async.errors import InvalidArgumentType, UsageError

__all__ = ["check_flag", "check_id", "check_number", "check_whole"]

_MAX_ID: Final = 2**63 - 1


def check_flag(value: object, name: str) -> bool:
    """A real bool: ``strict="no"`` would otherwise switch strictness on."""
    if not isinstance(value, bool):
        raise InvalidArgumentType(f"{name} must be True or False, not {value!r}")
    return value


def check_number(value: object, name: str, *, minimum: float = 0.0, above: bool = False) -> float:
    """A finite number ``>= minimum`` (``> minimum`` with ``above``); bools are refused."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentType(f"{name} must be a number, not {type(value).__name__}")
    if not math.isfinite(value):
        raise UsageError(f"{name} must be a finite number, not {value!r}")
    if value < minimum or (above and value == minimum):
        relation = "more than" if above else "at least"
        raise UsageError(f"{name} must be {relation} {minimum:g}, got {value!r}")
    return float(value)


def check_whole(value: object, name: str, *, minimum: int = 1) -> int:
    """A whole number ``>= minimum``; bools and floats are refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentType(f"{name} must be an int, not {type(value).__name__}")
    if value < minimum:
        raise UsageError(f"{name} must be at least {minimum}, got {value}")
    return value


def check_id(value: object, name: str) -> int:
    """A positive integer id (bools are not ids)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentType(f"{name} must be an int, not {type(value).__name__}")
    if not 0 < value <= _MAX_ID:
        raise UsageError(f"{name} must be a positive integer, got {value}")
    return value
