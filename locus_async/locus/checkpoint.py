"""A dataset's checkpoint: what it holds, how far it is, what failed. Checked as a whole
when read; version 1 (the first releases' backfills) is read and upgraded.

Owns: the file name, format version and states, ``Checkpoint`` (the decoded form, to and
from JSON), ``WindowFailure``, ``checkpoint_problem`` (what is wrong with a decoded body,
or nothing), ``CheckpointError`` (one line, naming ``--repair``), and reading back a
finished file's columns for the repair. Must never: write (the backfill does, atomically),
or hold a secret.

The body (version 3, in ``out.locus/checkpoint.json``; versions 1 and 2 lived in ``out``
as ``_locus_backfill.json`` and had no ``done``: their windows were their files)::

    {"version": 3, "state": "complete",
     "dataset": {"fields": [...], "gran": "5min", "tz": "UTC", "format": "parquet"},
     "range": {"starts": [1704067200], "end": null},       end null: up to now (sync)
     "entities": {"components": [...], "sites": [...], "site_components": [...],
                  "partner_components": [...], "node_types": [...]},
     "found": [["components", 54369], ...],                the last run's expansion
     "available": {"components:54369": ["W_avg"]},         dataavailable, per entity
     "skipped": {"components:54373": "..."},               entities with none of the fields
     "provisional": ["component-54369_..._...", ...],      windows refetched by every run
     "frontiers": {"components:54369": 1733011200},        newest timestamp with a value
     "done": {"components:54369": [[1704067200, 1735689600]]},  finished windows, merged
     "failed": [{kind, entity_id, start, end, error, status, permanent}, ...],
     "window_seconds": 0.42,                               mean time of one data request
     "updated": "2026-12-02T10:00:00+00:00"}
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import attrs

from locus_async.errors import UsageError
from locus_async.locus._core.layout import Ranges

__all__ = [
    "CHECKPOINT",
    "FORMAT_VERSION",
    "LEGACY_CHECKPOINT",
    "Checkpoint",
    "CheckpointError",
    "WindowFailure",
    "checkpoint_problem",
    "entity_key",
    "file_columns",
]

#: The checkpoint's name in the dataset's state (``out.locus/``).
CHECKPOINT: Final = "checkpoint.json"
#: Where versions 1 and 2 kept it: in ``out`` itself, beside one file per window.
LEGACY_CHECKPOINT: Final = "_locus_backfill.json"
FORMAT_VERSION: Final = 3


class CheckpointError(UsageError):
    """The checkpoint cannot be read or is not one of ours; ``--repair`` rebuilds it."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(
            f"{path} is not a valid checkpoint ({problem}); run the same backfill with "
            "--repair (repair=True) to rebuild it from the finished files"
        )
        self.path = path
        self.problem = problem


@attrs.frozen
class WindowFailure:
    """A window that failed after retries. A transient one (5xx, timeout, 429) is retried
    by the next run; a permanent one (400, 403, 404: the server refused the request itself)
    is not, unless the run is told to (``retry_failed``)."""

    kind: str
    entity_id: int
    start: str
    end: str
    error: str
    status: int | None = None
    permanent: bool = False


def entity_key(kind: str, ident: int) -> str:
    """``components:54369``: how the checkpoint names an entity."""
    return f"{kind}:{ident}"


_STATES: Final = frozenset({"running", "complete", "incomplete", "interrupted"})
_ENTITY_LISTS: Final = ("components", "sites", "site_components", "partner_components")


@attrs.define
class Checkpoint:
    """The decoded checkpoint (see the module docs for the meaning of each part)."""

    fields: tuple[str, ...]
    gran: str
    tz: str
    format: str
    starts: list[int]
    end: int | None
    entities: dict[str, list[int]]
    node_types: list[str]
    state: str = "running"
    found: list[tuple[str, int]] = attrs.field(factory=list)
    available: dict[str, list[str]] = attrs.field(factory=dict)
    skipped: dict[str, str] = attrs.field(factory=dict)
    provisional: set[str] = attrs.field(factory=set)
    frontiers: dict[str, int] = attrs.field(factory=dict)
    failed: list[WindowFailure] = attrs.field(factory=list)
    window_seconds: float | None = None
    updated: str = ""
    done: dict[str, Ranges] = attrs.field(factory=dict)

    def ranges(self, key: str) -> Ranges:
        """The finished windows of one entity (created empty when first asked)."""
        found = self.done.get(key)
        if found is None:
            found = self.done[key] = Ranges()
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "state": self.state,
            "dataset": {
                "fields": list(self.fields),
                "gran": self.gran,
                "tz": self.tz,
                "format": self.format,
            },
            "range": {"starts": list(self.starts), "end": self.end},
            "entities": {
                **{name: list(self.entities.get(name, ())) for name in _ENTITY_LISTS},
                "node_types": list(self.node_types),
            },
            "found": [[kind, ident] for kind, ident in self.found],
            "available": {k: list(v) for k, v in sorted(self.available.items())},
            "skipped": dict(sorted(self.skipped.items())),
            "provisional": sorted(self.provisional),
            "frontiers": dict(sorted(self.frontiers.items())),
            "failed": [attrs.asdict(f) for f in self.failed],
            "window_seconds": self.window_seconds,
            "updated": self.updated,
            "done": {k: v.to_json() for k, v in sorted(self.done.items()) if len(v)},
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Checkpoint:
        """From a body ``checkpoint_problem`` found nothing wrong with (either version)."""
        if body["version"] == 1:
            return _from_v1(body)
        dataset, entities = body["dataset"], body["entities"]
        return cls(
            fields=tuple(dataset["fields"]),
            gran=dataset["gran"],
            tz=dataset["tz"],
            format=dataset["format"],
            starts=list(body["range"]["starts"]),
            end=body["range"]["end"],
            entities={name: list(entities[name]) for name in _ENTITY_LISTS},
            node_types=list(entities["node_types"]),
            state=body["state"],
            found=[(kind, ident) for kind, ident in body["found"]],
            available={k: list(v) for k, v in body["available"].items()},
            skipped=dict(body["skipped"]),
            provisional=set(body["provisional"]),
            frontiers=dict(body["frontiers"]),
            failed=[WindowFailure(**item) for item in body["failed"]],
            window_seconds=body["window_seconds"],
            updated=body["updated"],
            done={k: Ranges((lo, hi) for lo, hi in v) for k, v in body.get("done", {}).items()},
        )


def _from_v1(body: dict[str, Any]) -> Checkpoint:
    spec = body["spec"]
    return Checkpoint(
        fields=tuple(spec["fields"]),
        gran=spec["gran"],
        tz=spec["tz"],
        format=spec["format"],
        starts=[spec["start"]],
        end=spec["end"],
        entities={name: list(spec[name]) for name in _ENTITY_LISTS},
        node_types=list(spec["node_types"]),
        state=body["state"],
        failed=[WindowFailure(**item) for item in body["failed"]],
        updated=body.get("updated", ""),
    )


# --------------------------------------------------------------------------- checking

_V1_SPEC: Final[dict[str, type]] = {
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
_FAILURE_TYPES: Final[dict[str, type | tuple[type, ...]]] = {
    "kind": str,
    "entity_id": int,
    "start": str,
    "end": str,
    "error": str,
}
_FAILURE_V2: Final[dict[str, type | tuple[type, ...]]] = {
    **_FAILURE_TYPES,
    "status": (int, type(None)),
    "permanent": bool,
}


def _is(value: object, kind: type | tuple[type, ...]) -> bool:
    if isinstance(value, bool) and kind is not bool:
        return False
    return isinstance(value, kind)


def _list_of(value: object, kind: type) -> bool:
    return isinstance(value, list) and all(_is(item, kind) for item in value)


def _map_of(value: object, check: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and check(v) for k, v in value.items()
    )


def _failures_problem(failed: object, types: dict[str, type | tuple[type, ...]]) -> str:
    if not isinstance(failed, list):
        return "failed must be a list"
    for index, item in enumerate(failed):
        if not isinstance(item, dict) or set(item) != set(types):
            return f"failed[{index}] is not a failure record"
        for name, kind in types.items():
            if not _is(item[name], kind):
                return f"failed[{index}].{name} has the wrong type"
    return ""


def _v1_problem(body: dict[str, Any]) -> str:
    spec = body.get("spec")
    if not isinstance(spec, dict) or set(spec) != set(_V1_SPEC):
        return "the spec is missing or has other fields"
    for name, kind in _V1_SPEC.items():
        if not _is(spec[name], kind):
            return f"spec.{name} has the wrong type"
    return _failures_problem(body.get("failed"), _FAILURE_TYPES)


def _v2_problem(body: dict[str, Any]) -> str:
    dataset = body.get("dataset")
    if (
        not isinstance(dataset, dict)
        or set(dataset) != {"fields", "gran", "tz", "format"}
        or not _list_of(dataset["fields"], str)
        or not all(isinstance(dataset[k], str) for k in ("gran", "tz", "format"))
    ):
        return "dataset is missing or malformed"
    span = body.get("range")
    if (
        not isinstance(span, dict)
        or set(span) != {"starts", "end"}
        or not _list_of(span["starts"], int)
        or not span["starts"]
        or not (span["end"] is None or _is(span["end"], int))
    ):
        return "range is missing or malformed"
    entities = body.get("entities")
    if (
        not isinstance(entities, dict)
        or set(entities) != {*_ENTITY_LISTS, "node_types"}
        or not all(_list_of(entities[name], int) for name in _ENTITY_LISTS)
        or not _list_of(entities["node_types"], str)
    ):
        return "entities is missing or malformed"
    found = body.get("found")
    if not isinstance(found, list) or not all(
        isinstance(item, list)
        and len(item) == 2
        and item[0] in ("components", "sites")
        and _is(item[1], int)
        for item in found
    ):
        return "found is malformed"
    checks: dict[str, Callable[[object], bool]] = {
        "available": lambda v: _map_of(v, lambda x: _list_of(x, str)),
        "skipped": lambda v: _map_of(v, lambda x: isinstance(x, str)),
        "provisional": lambda v: _list_of(v, str),
        "frontiers": lambda v: _map_of(v, lambda x: _is(x, int)),
        "window_seconds": lambda v: v is None or _is(v, (int, float)),
        "updated": lambda v: isinstance(v, str),
    }
    if body["version"] == FORMAT_VERSION:
        checks["done"] = lambda v: _map_of(
            v,
            lambda x: isinstance(x, list)
            and all(
                isinstance(s, list) and len(s) == 2 and _is(s[0], int) and _is(s[1], int)
                and s[0] < s[1]
                for s in x
            ),
        )  # fmt: skip
    for name, check in checks.items():
        if name not in body or not check(body[name]):
            return f"{name} is missing or malformed"
    return _failures_problem(body.get("failed"), _FAILURE_V2)


_V2_KEYS: Final = frozenset(
    {
        "version",
        "state",
        "dataset",
        "range",
        "entities",
        "found",
        "available",
        "skipped",
        "provisional",
        "frontiers",
        "failed",
        "window_seconds",
        "updated",
    }
)


def checkpoint_problem(body: object) -> str:
    """What is wrong with a decoded checkpoint, or "" if nothing."""
    if not isinstance(body, dict):
        return f"a JSON object was expected, not {type(body).__name__}"
    version = body.get("version")
    if version not in (1, 2, FORMAT_VERSION) or isinstance(version, bool):
        return f"unknown version {version!r} (this release writes {FORMAT_VERSION})"
    if body.get("state") not in _STATES:
        return f"unknown state {body.get('state')!r}"
    if version == 1:
        problem = _v1_problem(body)
        if not problem and not isinstance(body.get("updated", ""), str):
            problem = "updated must be a string"
        return problem
    if set(body) != (_V2_KEYS | {"done"} if version == FORMAT_VERSION else _V2_KEYS):
        return "it has missing or other keys"
    return _v2_problem(body)


def file_columns(data: bytes, fmt: str) -> list[str]:
    """The column names of a finished file's bytes, or [] if they cannot be read."""
    try:
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            return list(pq.read_schema(pa.BufferReader(data)).names)
        text = data.decode("utf-8")
        return next(csv.reader(io.StringIO(text, newline="")), [])
    except Exception:
        return []
