"""JSON bodies to typed objects: one private cattrs converter, lenient or strict.

Owns: the ``make_converter`` / ``configure_converter`` pair (cattrs' preconf pattern), the
wire-name mapping of every model, strict primitive hooks (``"12"`` is not an int, ``12.7``
is not truncated), aware-datetime and date parsing, and turning validation failures into one
``ResponseDecodeError`` that names the JSON path in wire names (``$.components[2].siteId``).

Lenient mode (production) ignores unknown keys, because v3 adds fields without notice.
Strict mode (tests against the simulator) forbids them so drift is caught. ``statusCode``,
which the API puts on every body and on some list items, is allowed in both.

Must never: do I/O, or quote a body (token responses hold secrets).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any, Final, TypeVar, get_args, get_origin

import attrs
import cattrs
import orjson
from cattrs.cols import homogenous_tuple_structure_factory, is_sequence, list_structure_factory
from cattrs.errors import (
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
)
from cattrs.gen import make_dict_structure_fn, override

from locus_async.errors import ResponseDecodeError

__all__ = [
    "configure_converter",
    "decode_json",
    "make_converter",
    "structure",
    "wire_name",
]

T = TypeVar("T")

#: Keys every Locus body may carry besides the documented ones.
_ENVELOPE_KEYS: Final = frozenset({"statusCode"})


class SchemaProblem(ValueError):
    """A value does not have the documented type; the message says what was expected."""


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _structure_int(value: object, _: object) -> int:
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    raise SchemaProblem(f"expected an integer, got {_type_name(value)}")


def _structure_float(value: object, _: object) -> float:
    if type(value) in (int, float):
        return float(value)  # type: ignore[arg-type]
    raise SchemaProblem(f"expected a number, got {_type_name(value)}")


def _structure_str(value: object, _: object) -> str:
    if type(value) is str:
        return value
    raise SchemaProblem(f"expected a string, got {_type_name(value)}")


def _structure_bool(value: object, _: object) -> bool:
    if type(value) is bool:
        return value
    raise SchemaProblem(f"expected a boolean, got {_type_name(value)}")


def parse_aware_datetime(value: object) -> datetime:
    """An ISO-8601 timestamp that carries a UTC offset (``Z``, ``+05:30``, ``-00:00``)."""
    if type(value) is not str:
        raise SchemaProblem(f"expected a timestamp string, got {_type_name(value)}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise SchemaProblem(f"expected an ISO-8601 timestamp, got {value[:40]!r}") from None
    if parsed.tzinfo is None:
        raise SchemaProblem(f"timestamp {value[:40]!r} has no UTC offset")
    return parsed


def _structure_datetime(value: object, _: object) -> datetime:
    return parse_aware_datetime(value)


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


def _structure_date(value: object, _: object) -> date:
    if type(value) is not str or not _DATE.match(value):
        raise SchemaProblem(f"expected a YYYY-MM-DD date, got {_type_name(value)}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise SchemaProblem(f"expected a valid date, got {value!r}") from None


def _epoch_seconds(value: object, _: object) -> datetime:
    if type(value) not in (int, float):
        raise SchemaProblem(f"expected unix seconds, got {_type_name(value)}")
    return datetime.fromtimestamp(value, UTC)  # type: ignore[arg-type]


def camel(name: str) -> str:
    """``site_id`` -> ``siteId``; ``locale_code1`` -> ``localeCode1``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def wire_name(attribute: attrs.Attribute[Any]) -> str:
    """The JSON key an attribute is read from."""
    return str(attribute.metadata.get("wire", camel(attribute.name)))


@functools.cache
def _wire_names(cls: type) -> Mapping[str, str]:
    return {a.name: wire_name(a) for a in attrs.fields(cls)}


def _sequence_factory(converter: cattrs.Converter) -> Callable[[Any], Any]:
    def factory(type_: Any) -> Callable[[Any, Any], Any]:
        if get_origin(type_) is tuple:
            inner = homogenous_tuple_structure_factory(type_, converter)
        else:
            inner = list_structure_factory(type_, converter)

        def hook(value: Any, target: Any) -> Any:
            if type(value) is not list:
                raise SchemaProblem(f"expected an array, got {_type_name(value)}")
            return inner(value, target)

        return hook

    return factory


def _is_homogenous_sequence(type_: Any) -> bool:
    args = get_args(type_)
    return is_sequence(type_) and (get_origin(type_) is not tuple or args[-1:] == (Ellipsis,))


def configure_converter(converter: cattrs.Converter, *, strict: bool = False) -> None:
    """Install our hooks on ``converter``: strict primitives, times, wire names, extras policy."""
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(float, _structure_float)
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(bool, _structure_bool)
    converter.register_structure_hook(datetime, _structure_datetime)
    converter.register_structure_hook(date, _structure_date)
    converter.register_structure_hook_factory(_is_homogenous_sequence, _sequence_factory(converter))

    def attrs_factory(cls: type[Any]) -> Callable[[Any, Any], Any]:
        overrides: dict[str, Any] = {}
        for attribute in attrs.fields(cls):
            field_hook = _epoch_seconds if attribute.metadata.get("epoch") else None
            overrides[attribute.name] = override(
                rename=wire_name(attribute), struct_hook=field_hook
            )
        generated = make_dict_structure_fn(
            cls, converter, _cattrs_forbid_extra_keys=strict, **overrides
        )

        def hook(value: Any, _: Any) -> Any:
            if type(value) is not dict:
                raise SchemaProblem(f"expected an object, got {_type_name(value)}")
            if not _ENVELOPE_KEYS.isdisjoint(value):
                value = {k: v for k, v in value.items() if k not in _ENVELOPE_KEYS}
            return generated(value, cls)

        return hook

    converter.register_structure_hook_factory(attrs.has, attrs_factory)


def make_converter(*, strict: bool = False) -> cattrs.Converter:
    """A fresh converter with our hooks; ``strict`` forbids unknown keys."""
    converter = cattrs.Converter(detailed_validation=True, forbid_extra_keys=strict)
    configure_converter(converter, strict=strict)
    return converter


def _describe(exc: BaseException, expected: object) -> str:
    if isinstance(exc, SchemaProblem):
        return str(exc)
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, ForbiddenExtraKeysError):
        return f"unknown fields ({', '.join(sorted(exc.extra_fields))})"
    name = getattr(expected, "__name__", None) or repr(expected)
    return f"invalid value (expected {name})" if expected is not None else f"invalid ({exc})"


def _problems(exc: BaseException, path: str) -> list[tuple[str, str]]:
    """(description, path) for every leaf failure, with wire names in the paths."""
    found: list[tuple[str, str]] = []
    if isinstance(exc, IterableValidationError):
        indexed, loose = exc.group_exceptions()
        for sub, index_note in indexed:
            found.extend(_leaf(sub, f"{path}[{index_note.index!r}]", index_note.type))
        found.extend((_describe(sub, None), path) for sub in loose)
    elif isinstance(exc, ClassValidationError):
        names = _wire_names(exc.cl) if attrs.has(exc.cl) else {}
        named, unnamed = exc.group_exceptions()
        for sub, attribute_note in named:
            wire = names.get(attribute_note.name, attribute_note.name)
            found.extend(_leaf(sub, f"{path}.{wire}", attribute_note.type))
        found.extend((_describe(sub, None), path) for sub in unnamed)
    else:
        found.append((_describe(exc, None), path))
    return found


def _leaf(exc: BaseException, path: str, expected: object) -> list[tuple[str, str]]:
    if isinstance(exc, ClassValidationError | IterableValidationError):
        return _problems(exc, path)
    return [(_describe(exc, expected), path)]


def structure(
    converter: cattrs.Converter, data: object, cls: type[T], *, request: str = "", root: str = "$"
) -> T:
    """``converter.structure`` raising one ResponseDecodeError that names the JSON path."""
    try:
        return converter.structure(data, cls)
    except (ClassValidationError, IterableValidationError, SchemaProblem) as exc:
        problems = _problems(exc, root)
        first, where = problems[0]
        listed = tuple(f"{d} @ {p}" for d, p in problems)
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ResponseDecodeError(
            f"response does not match the {cls.__name__} schema: {first} at {where}{more}",
            path=where,
            problems=listed,
            request=request,
        ) from None


def decode_json(content: bytes, *, request: str = "", quote_body: bool = True) -> Any:
    """Parse a JSON body; a non-JSON body raises ResponseDecodeError (path ``$``)."""
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        if not content.strip():
            what = "the body is empty"
        elif quote_body:
            excerpt = content[:60].decode("utf-8", "replace").replace("\n", " ")
            what = f"the body is not JSON ({exc.msg}; starts {excerpt!r})"
        else:
            what = f"the body is not JSON ({exc.msg})"
        raise ResponseDecodeError(what, path="$", request=request) from None
