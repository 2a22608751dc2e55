"""SolarNetwork's LDAP-style filters: metadata filters and user-event search filters.

``(&(/m/foo=bar)(t=special))``: a comparison is ``(key OP value)``; groups are ``(&...)``
(all), ``(|...)`` (any) and ``(!...)`` (not). Operators: ``=`` (``*`` is a wildcard),
``<>``, ``<``, ``<=``, ``>``, ``>=`` (numbers when both sides are numbers, else text),
``~=`` (regular expression search), ``&&`` (the array at key shares an element with the
comma list), ``?`` (the object at key has that key, or the array holds that value).
``\\`` escapes ``(``, ``)`` and ``\\`` in values.

Metadata filters address JSON-pointer paths (``/m/foo``, ``/pm/room/x``; a bare ``t`` is
``/t``); search filters use dots (``options.duration``). A comparison on an array is true
when any element satisfies it; a key that is absent satisfies nothing.

``parse_filter`` checks a filter before it is sent (a malformed one is a UsageError, not a
422 from the server); the simulator evaluates the parsed tree with ``matches``.
Must never: do I/O.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from typing import Any, Final, Literal

import attrs

from locus_async.errors import InvalidArgumentType, UsageError

__all__ = ["Comparison", "Filter", "Group", "matches", "parse_filter"]

OPERATORS: Final = ("<=", ">=", "<>", "~=", "&&", "=", "<", ">", "?")
_KEY_STOP: Final = frozenset("=<>~&?()|!")
MAX_FILTER_LENGTH: Final = 4096
MAX_DEPTH: Final = 32


@attrs.frozen
class Comparison:
    key: str
    op: str
    value: str


@attrs.frozen
class Group:
    kind: Literal["&", "|", "!"]
    items: tuple[Filter, ...]


Filter = Comparison | Group


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, why: str) -> UsageError:
        return UsageError(f"filter {self.text!r}: {why} at character {self.pos + 1}")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            found = repr(self.peek()) if self.peek() else "the end"
            raise self.fail(f"expected {char!r}, found {found}")
        self.pos += 1

    def filter(self, depth: int) -> Filter:
        if depth > MAX_DEPTH:
            raise self.fail(f"nested deeper than {MAX_DEPTH} groups")
        self.expect("(")
        head = self.peek()
        node: Filter
        if head in ("&", "|", "!") and self.text[self.pos + 1 : self.pos + 2] == "(":
            self.pos += 1
            items = [self.filter(depth + 1)]
            while self.peek() == "(":
                items.append(self.filter(depth + 1))
            if head == "!" and len(items) != 1:
                raise self.fail("'!' takes exactly one filter")
            node = Group(head, tuple(items))  # type: ignore[arg-type]
        else:
            node = self.comparison()
        self.expect(")")
        return node

    def comparison(self) -> Comparison:
        start = self.pos
        while self.peek() and (
            self.peek() not in _KEY_STOP
            or (self.peek() == "~" and self.text[self.pos + 1 : self.pos + 2] != "=")
        ):
            self.pos += 1
        key = self.text[start : self.pos].strip()
        if not key:
            raise self.fail("missing key")
        rest = self.text[self.pos :]
        op = next((o for o in OPERATORS if rest.startswith(o)), None)
        if op is None:
            raise self.fail(f"expected an operator ({' '.join(OPERATORS)})")
        self.pos += len(op)
        chars: list[str] = []
        while self.peek() and self.peek() != ")":
            char = self.peek()
            if char == "(":
                raise self.fail("unescaped '(' in a value")
            if char == "\\":
                self.pos += 1
                if not self.peek():
                    raise self.fail("dangling escape")
                char = self.peek()
            chars.append(char)
            self.pos += 1
        return Comparison(key, op, "".join(chars))


def parse_filter(text: object) -> Filter:
    """The filter tree, or a UsageError saying where ``text`` is malformed."""
    if not isinstance(text, str):
        raise InvalidArgumentType(f"a filter must be a string, not {type(text).__name__}")
    if len(text) > MAX_FILTER_LENGTH:
        raise UsageError(f"a filter may be at most {MAX_FILTER_LENGTH} characters")
    parser = _Parser(text.strip())
    tree = parser.filter(0)
    if parser.pos != len(parser.text):
        raise parser.fail("unexpected text after the filter")
    return tree


_MISSING: Final = object()


def pointer_path(key: str) -> list[str]:
    """``/m/foo`` -> ``["m", "foo"]`` (JSON pointer, ``~1`` and ``~0`` decoded)."""
    parts = key.lstrip("/").split("/")
    return [p.replace("~1", "/").replace("~0", "~") for p in parts]


def dotted_path(key: str) -> list[str]:
    return key.split(".")


def _resolve(document: Any, path: list[str]) -> Any:
    value = document
    for part in path:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _compare_one(value: object, op: str, expected: str) -> bool:
    if isinstance(value, dict | list):
        return False
    if op in ("=", "<>"):
        if "*" in expected:
            equal = fnmatch.fnmatchcase(_text(value), expected.replace("[", "[[]"))
        else:
            left, right = _number(value), _number(expected)
            equal = (
                left == right
                if left is not None and right is not None
                else (_text(value) == expected)
            )
        return equal if op == "=" else not equal
    if op == "~=":
        try:
            return re.search(expected, _text(value)) is not None
        except re.error:
            return False
    left, right = _number(value), _number(expected)
    pair: tuple[Any, Any] = (
        (left, right)
        if left is not None and right is not None
        else (
            _text(value),
            expected,
        )
    )
    low, high = pair
    if op == "<":
        return bool(low < high)
    if op == "<=":
        return bool(low <= high)
    if op == ">":
        return bool(low > high)
    return bool(low >= high)


def _comparison(document: Any, node: Comparison, path_of: Callable[[str], list[str]]) -> bool:
    value = _resolve(document, path_of(node.key))
    if value is _MISSING or value is None:
        return False
    if node.op == "?":
        if isinstance(value, dict):
            return node.value in value
        if isinstance(value, list):
            return any(_text(v) == node.value for v in value)
        return False
    if node.op == "&&":
        wanted = {v.strip() for v in node.value.split(",")}
        values = value if isinstance(value, list) else [value]
        return any(_text(v) in wanted for v in values if not isinstance(v, dict | list))
    if isinstance(value, list):
        if node.op == "<>":
            return all(_compare_one(v, "<>", node.value) for v in value)
        return any(_compare_one(v, node.op, node.value) for v in value)
    return _compare_one(value, node.op, node.value)


def matches(tree: Filter, document: Any, *, dotted: bool = False) -> bool:
    """Whether ``document`` satisfies ``tree``: JSON-pointer keys, or dotted keys for
    user-event search filters (``dotted=True``)."""
    path_of = dotted_path if dotted else pointer_path
    if isinstance(tree, Comparison):
        return _comparison(document, tree, path_of)
    if tree.kind == "&":
        return all(matches(item, document, dotted=dotted) for item in tree.items)
    if tree.kind == "|":
        return any(matches(item, document, dotted=dotted) for item in tree.items)
    return not matches(tree.items[0], document, dotted=dotted)
