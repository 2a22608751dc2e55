"""JSON bodies to typed objects: one private cattrs converter, lenient or strict.

Owns: the ``make_converter`` / ``configure_converter`` pair (cattrs' preconf pattern), the
wire-name mapping of every model, strict primitive hooks (``"12"`` is not an int, ``12.7``
is not truncated), aware-datetime and date parsing, and turning validation failures into one
``ResponseDecodeError`` that names the JSON path in wire names (``$.components[2].siteId``).

Lenient mode (the default) is forgiving, because real servers send what their reference
says they never do: unknown keys are ignored (v3 adds fields without notice); a null,
missing or wrongly typed value in a field that is not a *key* becomes the field's empty
value (its default; ``""`` for a string, ``()`` for an array; None otherwise); an item of
an array whose key is missing or invalid is dropped. Each of these is noted in the
``forgiving()`` collector of the call (the session logs one warning per field). A key is
an item's identity or what it cannot mean anything without: ``id``, or a field whose
metadata says ``key``. Strict mode raises on all of it, unknown keys included, and says
where. ``statusCode``, which the API puts on every body and on some list items, is
allowed in both.

The way back: ``to_jsonable`` unstructures any model (and lists, tuples, mappings of
them) through a cattrs converter into what the wire carries: wire names, ISO 8601 times
with their offset, unix seconds where the wire has them, arrays for tuples. Fields marked
``SECRET`` (tokens, SNWS2 secrets) are left out unless asked for. ``structure`` reads the
result back to an equal object.

Must never: do I/O, or quote a body (token responses hold secrets).
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, date, datetime
from types import NoneType, UnionType
from typing import Any, Final, TypeVar, Union, get_args, get_origin, get_type_hints

import attrs
import cattrs
import orjson
from cattrs.cols import homogenous_tuple_structure_factory, is_sequence, list_structure_factory
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from locus_async.errors import ResponseDecodeError

__all__ = [
    "KEY",
    "SECRET",
    "Forgiven",
    "configure_converter",
    "decode_json",
    "forgiving",
    "from_jsonable",
    "is_strict",
    "make_converter",
    "note_forgiven",
    "structure",
    "summarise",
    "to_jsonable",
    "wire_name",
]

T = TypeVar("T")

#: Field metadata of a *key* besides ``id``: a field its item means nothing without. If
#: it is missing or invalid, lenient mode drops the item instead of reading it as empty.
KEY: Final[Mapping[str, bool]] = {"key": True}

#: Field metadata of a secret (a token, a signing secret): ``to_jsonable`` leaves it out.
SECRET: Final[Mapping[str, bool]] = {"secret": True}

#: Keys every Locus body may carry besides the documented ones.
_ENVELOPE_KEYS: Final = frozenset({"statusCode"})


class SchemaProblem(ValueError):
    """A value does not have the documented type; the message says what was expected."""


#: How messages name the JSON types.
_JSON_NAMES: Final[dict[type, str]] = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "an array",
    dict: "an object",
}


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    return _JSON_NAMES.get(type(value), type(value).__name__)


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


def _sequence_factory(converter: cattrs.Converter, *, strict: bool) -> Callable[[Any], Any]:
    def factory(type_: Any) -> Callable[[Any, Any], Any]:
        if get_origin(type_) is tuple:
            inner = homogenous_tuple_structure_factory(type_, converter)
        else:
            inner = list_structure_factory(type_, converter)
        item_type = get_args(type_)[0] if get_args(type_) else Any
        item_name = getattr(item_type, "__name__", str(item_type))

        def hook(value: Any, target: Any) -> Any:
            if type(value) is not list:
                raise SchemaProblem(f"expected an array, got {_type_name(value)}")
            notes = _NOTES.get()
            mark = len(notes) if notes is not None else 0
            try:
                return inner(value, target)
            except (IterableValidationError, *_CAUGHT) as exc:
                if strict:
                    raise
                failure = exc
            # Lenient: the items that fail (a missing or invalid key) are left out. The
            # first attempt's notes go: the items are read again, one by one.
            if notes is not None:
                del notes[mark:]
            item_hook = converter.get_structure_hook(item_type)
            kept = []
            for item in value:
                try:
                    kept.append(item_hook(item, item_type))
                except _CAUGHT as exc:
                    _note(Forgiven(item_name, _first_problem(exc)))
            if len(kept) == len(value):
                raise failure  # pragma: no cover - the items passed one by one: not ours
            return tuple(kept) if get_origin(type_) is tuple else kept

        return hook

    return factory


def _is_homogenous_sequence(type_: Any) -> bool:
    args = get_args(type_)
    return is_sequence(type_) and (get_origin(type_) is not tuple or args[-1:] == (Ellipsis,))


@attrs.frozen
class Forgiven:
    """One thing the lenient decoder let pass: a value it replaced, or an item it dropped.

    ``where`` is ``Model.wireName`` for a value, ``Model`` for a dropped item; ``problem``
    what was wrong; ``used`` the value put in its place (empty for a dropped item).
    """

    where: str
    problem: str
    used: str = ""

    @property
    def dropped(self) -> bool:
        """Whether the whole item was left out."""
        return not self.used


_NOTES: ContextVar[list[Forgiven] | None] = ContextVar("locus_async_forgiven", default=None)


@contextlib.contextmanager
def forgiving() -> Iterator[list[Forgiven]]:
    """Collect what the lenient decoder forgives while the block runs (one call's decode)."""
    notes: list[Forgiven] = []
    token = _NOTES.set(notes)
    try:
        yield notes
    finally:
        _NOTES.reset(token)


def _note(found: Forgiven) -> None:
    notes = _NOTES.get()
    if notes is not None:
        notes.append(found)


def note_forgiven(where: str, problem: str, used: str = "") -> None:
    """Record one forgiven value (``used``: what replaced it) or dropped item."""
    _note(Forgiven(where, problem, used))


def summarise(notes: list[Forgiven]) -> list[str]:
    """One line per field (or per broken key of dropped items), with counts and the first
    problem: what the log says."""
    groups: dict[tuple[str, str, str], list[Forgiven]] = {}
    for n in notes:
        field = n.problem.split(":", 1)[0] if n.dropped and ":" in n.problem else ""
        groups.setdefault((n.where, n.used, field), []).append(n)
    lines = []
    for (where, used, _), found in groups.items():
        count, problem = len(found), found[0].problem
        if used:
            times = "1 value" if count == 1 else f"{count} values"
            lines.append(f"{where}: {times} unreadable ({problem}), read as {used}")
        else:
            items = "1 item" if count == 1 else f"{count} items"
            lines.append(f"{where}: {items} dropped ({problem})")
    return lines


_CAUGHT: Final = (
    SchemaProblem,
    ClassValidationError,
    IterableValidationError,
    KeyError,
    ValueError,
    TypeError,
    AttributeError,  # cattrs' mapping hook, given a list
)


def _is_key(attribute: attrs.Attribute[Any]) -> bool:
    return attribute.name == "id" or bool(attribute.metadata.get("key"))


def _optional_of(type_: Any) -> Any:
    """``X`` for ``X | None``, else None."""
    if get_origin(type_) in (Union, UnionType):
        args = [a for a in get_args(type_) if a is not NoneType]
        if len(args) < len(get_args(type_)) and len(args) == 1:
            return args[0]
    return None


def _empty(attribute: attrs.Attribute[Any], type_: Any) -> tuple[Any, str]:
    """The value a forgiven field gets, and how the log shows it."""
    default = attribute.default
    factory = getattr(default, "factory", None)
    if isinstance(default, attrs.Factory) and factory is not None:  # type: ignore[arg-type]
        value = factory()
        return value, repr(value)
    if default is not attrs.NOTHING:
        return default, repr(default)
    if type_ is str:
        return "", "''"
    if _is_homogenous_sequence(type_):
        return (), "()"
    return None, "None"


def _first_problem(exc: BaseException) -> str:
    """``"id: expected an integer, got null"``: the first leaf failure, path relative."""
    description, path = _problems(exc, "$")[0]
    where = path[2:] if path.startswith("$.") else path[1:]
    return f"{where}: {description}" if where else description


def _not_null(inner: Callable[[Any, Any], Any], type_: Any) -> Callable[[Any, Any], Any]:
    """A field the reference says is always returned may not be null (strict mode raises;
    lenient mode then reads it as empty, with a note)."""

    def hook(value: Any, _: Any) -> Any:
        if value is None:
            raise SchemaProblem(f"expected {_expected(type_)}, got null")
        return inner(value, type_)

    return hook


def _expected(type_: Any) -> str:
    times = {datetime: "an ISO-8601 timestamp", date: "a YYYY-MM-DD date"}
    found = _JSON_NAMES.get(type_) or times.get(type_)
    return found or str(getattr(type_, "__name__", type_))


def _hints(cls: Any) -> dict[str, Any]:
    """The attributes' types of ``cls``, a generic's parameters filled in (``Page[Node]``)."""
    origin = get_origin(cls) or cls
    hints = get_type_hints(origin)
    params = getattr(origin, "__parameters__", ())
    if not params or origin is cls:
        return hints
    mapping = dict(zip(params, get_args(cls), strict=True))

    def resolve(hint: Any) -> Any:
        if isinstance(hint, TypeVar):
            return mapping.get(hint, hint)
        inner = getattr(hint, "__parameters__", ())
        return hint[tuple(mapping.get(p, p) for p in inner)] if inner else hint

    return {name: resolve(hint) for name, hint in hints.items()}


def _special_hook(
    converter: cattrs.Converter, attribute: attrs.Attribute[Any], type_: Any
) -> Callable[[Any, Any], Any] | None:
    """A field's own hook where the type's is not enough: unix seconds, or a field the
    reference says is always returned (typed optional only so that lenient mode can put
    None there): null is a problem there, in both modes."""
    if attribute.metadata.get("epoch"):
        return _epoch_seconds
    inner = _optional_of(type_)
    if attribute.default is attrs.NOTHING and inner is not None:
        return _not_null(converter.get_structure_hook(inner), inner)
    return None


def _forgiving_structure(converter: cattrs.Converter, cls: Any) -> Callable[[dict[str, Any]], Any]:
    """The field-by-field pass of lenient mode, run when the generated function failed."""
    hints = _hints(cls)
    name = getattr(get_origin(cls) or cls, "__name__", str(cls))
    plan = []
    for attribute in attrs.fields(cls):
        type_ = hints[attribute.name]
        hook = _special_hook(converter, attribute, type_) or converter.get_structure_hook(type_)
        plan.append((attribute, wire_name(attribute), type_, hook, _is_key(attribute)))

    def structure_fields(value: dict[str, Any]) -> Any:
        kwargs: dict[str, Any] = {}
        failed: list[Exception] = []
        found: list[Forgiven] = []
        for attribute, wire, type_, hook, key in plan:
            if wire not in value:
                if attribute.default is not attrs.NOTHING:
                    continue
                problem: Exception = KeyError(wire)
            else:
                try:
                    kwargs[attribute.name] = hook(value[wire], type_)
                    continue
                except _CAUGHT as exc:
                    problem = exc
            if key:
                problem.__notes__ = [
                    AttributeValidationNote(
                        f"Structuring class {name} @ attribute {attribute.name}",
                        attribute.name,
                        type_,
                    )
                ]
                failed.append(problem)
                continue
            empty, shown = _empty(attribute, type_)
            kwargs[attribute.name] = empty
            found.append(Forgiven(f"{name}.{wire}", _leaf(problem, "$", type_)[0][0], shown))
        if failed:
            raise ClassValidationError(f"While structuring {name}", failed, cls)
        for item in found:
            _note(item)
        return cls(**kwargs)

    return structure_fields


def configure_converter(converter: cattrs.Converter, *, strict: bool = False) -> None:
    """Install our hooks on ``converter``: strict primitives, times, wire names, extras policy."""
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(float, _structure_float)
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(bool, _structure_bool)
    converter.register_structure_hook(datetime, _structure_datetime)
    converter.register_structure_hook(date, _structure_date)
    converter.register_structure_hook_factory(
        _is_homogenous_sequence, _sequence_factory(converter, strict=strict)
    )

    def attrs_factory(cls: type[Any]) -> Callable[[Any, Any], Any]:
        hints = _hints(cls)
        overrides: dict[str, Any] = {}
        for attribute in attrs.fields(cls):
            field_hook = _special_hook(converter, attribute, hints[attribute.name])
            overrides[attribute.name] = override(
                rename=wire_name(attribute), struct_hook=field_hook
            )
        generated = make_dict_structure_fn(
            cls, converter, _cattrs_forbid_extra_keys=strict, **overrides
        )
        forgiving_pass = None if strict else _forgiving_structure(converter, cls)

        def hook(value: Any, _: Any) -> Any:
            if type(value) is not dict:
                raise SchemaProblem(f"expected an object, got {_type_name(value)}")
            if not _ENVELOPE_KEYS.isdisjoint(value):
                value = {k: v for k, v in value.items() if k not in _ENVELOPE_KEYS}
            if forgiving_pass is None:
                return generated(value, cls)
            try:
                return generated(value, cls)
            except ClassValidationError:
                return forgiving_pass(value)

        return hook

    converter.register_structure_hook_factory(attrs.has, attrs_factory)


class _Converter(cattrs.Converter):
    """cattrs' converter, knowing whether it is strict (the data parser asks)."""

    strict: bool = False


def make_converter(*, strict: bool = False) -> cattrs.Converter:
    """A fresh converter with our hooks: lenient (forgiving), or ``strict`` (raises on any
    value off the schema, unknown keys included)."""
    converter = _Converter(detailed_validation=True, forbid_extra_keys=strict)
    converter.strict = strict
    configure_converter(converter, strict=strict)
    return converter


def is_strict(converter: cattrs.Converter) -> bool:
    """Whether ``converter`` was made strict (a converter made elsewhere counts as lenient)."""
    return bool(getattr(converter, "strict", False))


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
        raise ResponseDecodeError(what, path="$", request=request, garbled=True) from None


# -- the way back: models to JSON ------------------------------------------------------


def _unstructure_datetime(value: datetime) -> str:
    return value.isoformat()


def _unstructure_date(value: date) -> str:
    return value.isoformat()


def _epoch(value: datetime) -> int | float:
    seconds = value.timestamp()
    return int(seconds) if seconds.is_integer() else seconds


def _make_unstructurer(*, secrets: bool) -> cattrs.Converter:
    converter = cattrs.Converter(unstruct_collection_overrides={tuple: list})
    converter.register_unstructure_hook(datetime, _unstructure_datetime)
    converter.register_unstructure_hook(date, _unstructure_date)

    def attrs_factory(cls: type[Any]) -> Callable[[Any], Any]:
        overrides: dict[str, Any] = {}
        for attribute in attrs.fields(cls):
            epoch = attribute.metadata.get("epoch")
            overrides[attribute.name] = override(
                rename=wire_name(attribute),
                omit=bool(attribute.metadata.get("secret")) and not secrets,
                unstruct_hook=_epoch if epoch else None,
            )
        return make_dict_unstructure_fn(cls, converter, **overrides)

    converter.register_unstructure_hook_factory(attrs.has, attrs_factory)
    return converter


_UNSTRUCTURERS: Final = {
    False: _make_unstructurer(secrets=False),
    True: _make_unstructurer(secrets=True),
}


def to_jsonable(value: Any, *, secrets: bool = False) -> Any:
    """``value`` as the wire carries it: plain dicts, lists, strings, numbers, booleans
    and None, ready for ``json.dumps``, FastAPI or a message queue.

    A model becomes an object with its wire names (``siteId``), times ISO 8601 strings
    with their offset (unix seconds where the wire has them), tuples arrays; lists,
    tuples and mappings of models work too, as does anything iterable of them (a
    ``TimeSeries``: its rows). Secrets (tokens, SNWS2 secrets) are left out unless
    ``secrets=True``. ``locus_async.from_jsonable(Model, data)`` reads it back.
    """
    converter = _UNSTRUCTURERS[bool(secrets)]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if attrs.has(type(value)) or isinstance(value, datetime | date):
        return converter.unstructure(value)
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item, secrets=secrets) for key, item in value.items()}
    try:
        items = iter(value)
    except TypeError:
        raise TypeError(
            f"to_jsonable cannot convert a {type(value).__name__}: a model, a list, "
            "a mapping or an iterable of them"
        ) from None
    return [to_jsonable(item, secrets=secrets) for item in items]


@functools.cache
def _reading_converter(strict: bool) -> cattrs.Converter:
    return make_converter(strict=strict)


def from_jsonable(cls: type[T], data: object, *, strict: bool = False) -> T:
    """A ``cls`` (a model, or ``list[Model]``, ``tuple[Model, ...]``) read from JSON data as
    the client reads the wire: what ``to_jsonable`` wrote comes back equal. Lenient by
    default (see the module); ``strict=True`` refuses anything off the schema. Raises
    ``ResponseDecodeError`` naming the JSON path."""
    return structure(_reading_converter(bool(strict)), data, cls, request="from_jsonable")
