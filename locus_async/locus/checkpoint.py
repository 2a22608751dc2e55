"""A backfill's checkpoint, checked as a whole when read.

Owns: the checkpoint's file name, format version and states, ``checkpoint_problem`` (what
is wrong with a decoded checkpoint, or nothing) and ``CheckpointError`` (one line, naming
``--repair``), and reading back a finished file's columns for the repair. Must never:
write (the backfill does, atomically).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Final

from locus_async.errors import UsageError

if TYPE_CHECKING:
    pass


__all__ = ["CHECKPOINT", "FORMAT_VERSION", "CheckpointError", "checkpoint_problem", "file_columns"]

CHECKPOINT: Final = "_locus_backfill.json"
FORMAT_VERSION: Final = 1


class CheckpointError(UsageError):
    """The checkpoint cannot be read or is not one of ours; ``--repair`` rebuilds it."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(
            f"{path} is not a valid checkpoint ({problem}); run the same backfill with "
            "--repair (repair=True) to rebuild it from the finished files"
        )
        self.path = path
        self.problem = problem


_STATES: Final = frozenset({"running", "complete", "incomplete", "interrupted"})
_SPEC_TYPES: Final[dict[str, type | tuple[type, ...]]] = {
    "fields": list,
    "gran": str,
    "tz": str,
    "start": int,
    "end": int,
    "format": str,
    "components": list,
    "sites": list,
    "site_components": list,
    "partner_components": list,
    "node_types": list,
}
_FAILURE_TYPES: Final[dict[str, type]] = {
    "kind": str,
    "entity_id": int,
    "start": str,
    "end": str,
    "error": str,
}


def checkpoint_problem(body: object) -> str:
    """What is wrong with a decoded checkpoint, or "" if nothing."""
    if not isinstance(body, dict):
        return f"a JSON object was expected, not {type(body).__name__}"
    version = body.get("version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        return f"unknown version {version!r} (this release writes {FORMAT_VERSION})"
    if body.get("state") not in _STATES:
        return f"unknown state {body.get('state')!r}"
    spec = body.get("spec")
    if not isinstance(spec, dict) or set(spec) != set(_SPEC_TYPES):
        return "the spec is missing or has other fields"
    for name, kind in _SPEC_TYPES.items():
        if not isinstance(spec[name], kind) or isinstance(spec[name], bool):
            return f"spec.{name} has the wrong type"
    failed = body.get("failed")
    if not isinstance(failed, list):
        return "failed must be a list"
    for index, item in enumerate(failed):
        if not isinstance(item, dict) or set(item) != set(_FAILURE_TYPES):
            return f"failed[{index}] is not a failure record"
        for name, kind in _FAILURE_TYPES.items():
            if not isinstance(item[name], kind) or isinstance(item[name], bool):
                return f"failed[{index}].{name} has the wrong type"
    if not isinstance(body.get("updated", ""), str):
        return "updated must be a string"
    return ""


def file_columns(path: Path, fmt: str) -> list[str]:
    """The column names of a finished file, or [] if it cannot be read."""
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        with open(path, encoding="utf-8", newline="") as handle:
            return next(csv.reader(handle), [])
    except Exception:
        return []
