"""SolarUser request parameters and bodies, checked before any I/O.

Owns: the date formats each endpoint accepts (instants in UTC, minute-precision UTC or
node-local dates), id and source lists (a source id may hold ``/`` and ``,``: one goes as
``sourceId``, several as repeated ``sourceIds``), paging and sort parameters, instruction
bodies (JSON for one node, form fields for several), metadata documents and datum auxiliary
records. Every problem is a UsageError (or InvalidArgumentType) naming the argument.
Must never: do I/O or read a clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Final

import orjson

from locus_async._core.checks import check_id
from locus_async._core.converter import to_jsonable
from locus_async._core.http import encode_query
from locus_async._core.times import from_iso
from locus_async.errors import InvalidArgumentType, UsageError
from locus_async.solarnetwork.models import DatumAuxiliary, Metadata

__all__ = [
    "MAX_PAGE",
    "MAX_RESULT_WAIT",
    "Param",
    "check_topic",
    "datum_auxiliary_key",
    "datum_auxiliary_wire",
    "epoch_millis",
    "form_body",
    "id_list",
    "instruction_form",
    "instruction_json",
    "local_minute",
    "metadata_body",
    "more_pages",
    "node_params",
    "page_params",
    "parse_instruction_params",
    "sort_params",
    "source_params",
    "utc_instant",
    "utc_minute",
]

Param = tuple[str, str]

#: ``/instr/exec`` waits at most this long server-side.
MAX_RESULT_WAIT: Final = 60
#: Page size limit we allow (SolarNetwork caps pages; 1000 is SolarQuery's cap).
MAX_PAGE: Final = 1000

_TOPIC: Final = re.compile(r"[A-Za-z0-9_.:-]{1,128}\Z")
_SORT_KEY: Final = re.compile(r"[A-Za-z]+\Z")


def _aware(value: object, name: str) -> datetime:
    if isinstance(value, str):
        value = from_iso(value, name, "instant", "2024-01-01T00:00:00Z")
    if not isinstance(value, datetime):
        raise InvalidArgumentType(
            f"{name} must be a timezone-aware datetime, not {type(value).__name__}"
        )
    if value.tzinfo is None or value.utcoffset() is None:
        raise UsageError(
            f"{name} must be timezone-aware (SolarNetwork dates are UTC); "
            f"got naive {value.isoformat()}"
        )
    return value.astimezone(UTC)


def utc_instant(value: object, name: str) -> str:
    """``2019-02-06 18:37:28.244Z`` (microseconds kept when present); a date stays a date."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    moment = _aware(value, name)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.microsecond % 1000:
        return f"{text}.{moment.microsecond:06d}Z"
    return f"{text}.{moment.microsecond // 1000:03d}Z"


def utc_minute(value: object, name: str) -> str:
    """``2019-04-10T12:00`` (UTC) or ``2019-04-10``: these endpoints take minutes at most."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    moment = _aware(value, name)
    if moment.second or moment.microsecond:
        raise UsageError(
            f"{name} {moment.isoformat()} has seconds; this endpoint takes whole minutes "
            "(YYYY-MM-DDTHH:mm in UTC)"
        )
    return moment.strftime("%Y-%m-%dT%H:%M")


def local_minute(value: object, name: str) -> str:
    """A node-local ``2019-04-10T12:00`` or ``2019-04-10``: naive, in each node's zone."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if not isinstance(value, datetime):
        raise InvalidArgumentType(f"{name} must be a naive datetime or a date")
    if value.tzinfo is not None:
        raise UsageError(
            f"{name} is read in each node's own time zone: pass a naive datetime or a date"
        )
    if value.second or value.microsecond:
        raise UsageError(f"{name} {value.isoformat()} has seconds; give whole minutes")
    return value.strftime("%Y-%m-%dT%H:%M")


def epoch_millis(value: object, name: str) -> int:
    """Unix milliseconds; a sub-millisecond instant is refused rather than truncated."""
    moment = _aware(value, name)
    if moment.microsecond % 1000:
        raise UsageError(
            f"{name} {moment.isoformat()} has sub-millisecond precision, which an "
            "epoch-millisecond value cannot carry"
        )
    whole = moment.replace(microsecond=0)
    return int(whole.timestamp()) * 1000 + moment.microsecond // 1000


def _many(values: object) -> list[Any]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        return [values]
    return list(values)


def id_list(values: object, name: str) -> list[int]:
    """Positive int ids, order kept, duplicates dropped; at least one."""
    ids: list[int] = []
    for value in _many(values):
        ident = check_id(value, name)
        if ident not in ids:
            ids.append(ident)
    if not ids:
        raise UsageError(f"{name} is empty")
    return ids


def node_params(values: object, name: str = "node_ids") -> list[Param]:
    """``nodeId=1`` for one node, ``nodeIds=1,2`` for several."""
    ids = id_list(values, name)
    if len(ids) == 1:
        return [("nodeId", str(ids[0]))]
    return [("nodeIds", ",".join(map(str, ids)))]


def _source(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidArgumentType(f"every {name} value must be a string")
    if not value or value != value.strip():
        raise UsageError(f"{name} {value!r} must be non-empty without surrounding spaces")
    return value


def source_params(values: object, name: str = "source_ids") -> list[Param]:
    """``sourceId=/power/1`` for one; repeated ``sourceIds`` for several (never a comma
    list, since a source id may contain a comma). Wildcards (``/power/**``) pass through."""
    sources = list(dict.fromkeys(_source(v, name) for v in _many(values)))
    if not sources:
        raise UsageError(f"{name} is empty")
    if len(sources) == 1:
        return [("sourceId", sources[0])]
    return [("sourceIds", s) for s in sources]


def page_params(max_results: int, offset: int, *, count: bool) -> list[Param]:
    if isinstance(max_results, bool) or not isinstance(max_results, int):
        raise InvalidArgumentType("page_size must be an int")
    if not 1 <= max_results <= MAX_PAGE:
        raise UsageError(f"page_size must be between 1 and {MAX_PAGE}, got {max_results}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise UsageError(f"offset must be a non-negative int, got {offset!r}")
    params = [("max", str(max_results)), ("offset", str(offset))]
    if not count:
        params.append(("withoutTotalResultsCount", "true"))
    return params


def more_pages(*, got: int, asked: int, offset: int, total: int | None, largest: int) -> bool:
    """Whether another page may hold more items.

    With a total: until ``offset`` reaches it. Without one, a full page means more; a short
    page ends the list only when it is shorter than an earlier page (``largest``), because a
    server that caps pages below ``asked`` answers short pages that are not the end. So the
    first short page costs one confirming request rather than risking lost items.
    """
    if got == 0:
        return False
    if total is not None:
        return offset < total
    return got >= asked or got >= largest


def sort_params(sorts: object, allowed: Sequence[str]) -> list[Param]:
    """``["created", "-node"]`` -> ``sorts[0].sortKey=created&sorts[1].sortKey=node&
    sorts[1].descending=true`` (``sortKey``: the key one public client gets wrong)."""
    if sorts is None:
        return []
    params: list[Param] = []
    for index, item in enumerate(_many(sorts)):
        if not isinstance(item, str):
            raise InvalidArgumentType("every sort key must be a string such as '-created'")
        key = item[1:] if item.startswith("-") else item
        if key not in allowed or not _SORT_KEY.match(key):
            raise UsageError(f"sort key {key!r} is not one of: {', '.join(allowed)}")
        params.append((f"sorts[{index}].sortKey", key))
        if item.startswith("-"):
            params.append((f"sorts[{index}].descending", "true"))
    return params


def _param_value(value: object, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidArgumentType(
            f"instruction parameter {name!r} must be a string or a number, "
            f"not {type(value).__name__}"
        )
    return value if isinstance(value, str) else repr(value)


def parse_instruction_params(
    params: Mapping[str, object] | Iterable[tuple[str, object]] | None,
    execution_date: object = None,
) -> list[Param]:
    """Instruction parameters as ordered (name, value) pairs; names may repeat (several
    settings in one ``UpdateSetting``). ``execution_date`` defers the instruction."""
    pairs: list[Param] = []
    if params is not None:
        items: object = params.items() if isinstance(params, Mapping) else params
        if isinstance(items, str | bytes) or not isinstance(items, Iterable):
            raise InvalidArgumentType("params must be a mapping or (name, value) pairs")
        for item in items:
            if not isinstance(item, tuple) or len(item) != 2:
                raise InvalidArgumentType("params must be a mapping or (name, value) pairs")
            name, value = item
            if not isinstance(name, str) or not name:
                raise UsageError("instruction parameter names must be non-empty strings")
            pairs.append((name, _param_value(value, name)))
    if execution_date is not None:
        if any(name == "executionDate" for name, _ in pairs):
            raise UsageError("give execution_date or an executionDate parameter, not both")
        moment = _aware(execution_date, "execution_date")
        pairs.append(("executionDate", moment.strftime("%Y-%m-%dT%H:%M:%S") + "Z"))
    return pairs


def check_topic(topic: object) -> str:
    if not isinstance(topic, str):
        raise InvalidArgumentType("topic must be a string such as 'SetControlParameter'")
    if not _TOPIC.match(topic):
        raise UsageError(f"topic {topic!r} is not a valid instruction topic")
    return topic


def instruction_json(node_id: int, topic: str, pairs: list[Param]) -> bytes:
    """The JSON form (one node only): ``params`` when names are unique, else ``parameters``."""
    body: dict[str, Any] = {"nodeId": node_id, "topic": topic}
    names = [n for n, _ in pairs]
    if len(set(names)) == len(names):
        body["params"] = dict(pairs)
    else:
        body["parameters"] = [{"name": n, "value": v} for n, v in pairs]
    return orjson.dumps(body)


def instruction_form(node_ids: list[int], topic: str, pairs: list[Param]) -> list[Param]:
    """The form fields: ``nodeId``/``nodeIds``, ``topic``, ``parameters[i].name/value``."""
    fields = node_params(node_ids)
    fields.append(("topic", topic))
    for index, (name, value) in enumerate(pairs):
        fields += [(f"parameters[{index}].name", name), (f"parameters[{index}].value", value)]
    return fields


def form_body(fields: Iterable[Param]) -> bytes:
    """``application/x-www-form-urlencoded`` with ``%20`` for spaces (what we sign)."""
    return encode_query(fields).encode("ascii")


def metadata_body(document: Metadata | Mapping[str, Any]) -> bytes:
    """A metadata document (``m``, ``pm``, ``t``) as JSON; anything else is refused."""
    if isinstance(document, Metadata):
        doc: dict[str, Any] = document.document()
    elif isinstance(document, Mapping):
        doc = dict(document)
    else:
        raise InvalidArgumentType("metadata must be a Metadata or a dict with m, pm and t")
    unknown = set(doc) - {"m", "pm", "t"}
    if unknown:
        raise UsageError(f"metadata takes only 'm', 'pm' and 't', not {', '.join(sorted(unknown))}")
    for key in ("m", "pm"):
        if key in doc and not isinstance(doc[key], Mapping):
            raise InvalidArgumentType(f"metadata {key!r} must be an object")
    tags = doc.get("t", [])
    if isinstance(tags, str) or not all(isinstance(t, str) for t in tags):
        raise InvalidArgumentType("metadata 't' must be a list of tag strings")
    if "t" in doc:
        doc["t"] = list(tags)
    try:
        return orjson.dumps(doc)
    except TypeError as exc:
        raise InvalidArgumentType(f"metadata is not JSON-serialisable: {exc}") from None


def _sample(value: object, name: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidArgumentType(f"{name} must be a datum sample object such as {{'a': {{}}}}")
    return dict(value)


#: What the API takes of a datum auxiliary record besides its ``created`` (the rest, its
#: local date and time and ``updated``, the server derives).
_AUXILIARY_BODY: Final = ("nodeId", "sourceId", "type", "final", "start", "meta", "notes")


def datum_auxiliary_wire(record: DatumAuxiliary, *, epoch: bool) -> dict[str, Any]:
    """A record as the API takes it, written by ``to_jsonable`` (wire names, samples as
    given); ``created`` as epoch ms (``move``) or UTC text. Values are checked first."""
    if not isinstance(record, DatumAuxiliary):
        raise InvalidArgumentType("record must be a DatumAuxiliary")
    check_id(record.node_id, "node_id")
    _source(record.source_id, "source_id")
    _source(record.type, "type")
    for name in ("final", "start", "meta"):
        _sample(getattr(record, name), name)
    written = to_jsonable(record)
    out: dict[str, Any] = {
        "created": (
            epoch_millis(record.created, "created")
            if epoch
            else utc_instant(record.created, "created")
        )
    }
    out.update((key, written[key]) for key in _AUXILIARY_BODY if written[key] is not None)
    return out


def datum_auxiliary_key(
    type_: str, node_id: int, created: datetime, source_id: str, *, epoch: bool
) -> dict[str, Any]:
    """The primary key of a record (``type``, ``nodeId``, ``created``, ``sourceId``)."""
    return {
        "created": epoch_millis(created, "created") if epoch else utc_instant(created, "created"),
        "nodeId": check_id(node_id, "node_id"),
        "sourceId": _source(source_id, "source_id"),
        "type": _source(type_, "type"),
    }
