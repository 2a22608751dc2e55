"""Metadata and search filters: parsing (checked before sending) and matching (the simulator)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from locus_async.errors import InvalidArgumentType, UsageError
from locus_async.solarnetwork import matches, parse_filter
from locus_async.solarnetwork.filters import Comparison, Group

META: dict[str, Any] = {
    "m": {"hardware": "raspberry-pi", "os": "debian", "os-version": 12, "a/b": "slash"},
    "pm": {"room": {"foo": "bar", "n": 3}},
    "t": ["green", "special"],
}
EVENT: dict[str, Any] = {
    "cp": "1234ZY",
    "action": "Heartbeat",
    "messageId": "rukjys5f8q9fjce8x79kl4is",
    "status": 1,
    "options": {"duration": 60, "errorThreshold": 3},
}


def test_parse_tree() -> None:
    """A nested filter parses into the expected tree of groups and comparisons."""
    tree = parse_filter("(&(/m/foo=bar)(|(t=a)(!(t=b))))")
    assert tree == Group(
        "&",
        (
            Comparison("/m/foo", "=", "bar"),
            Group("|", (Comparison("t", "=", "a"), Group("!", (Comparison("t", "=", "b"),)))),
        ),
    )


@pytest.mark.parametrize(
    ("text", "op", "value"),
    [
        ("(a<=5)", "<=", "5"),
        ("(a>=5)", ">=", "5"),
        ("(a<>x)", "<>", "x"),
        ("(a~=^ru)", "~=", "^ru"),
        ("(a&&x,y)", "&&", "x,y"),
        ("(a<5)", "<", "5"),
        ("(a>5)", ">", "5"),
        ("(a?k)", "?", "k"),
        (r"(a=x\)y)", "=", "x)y"),
    ],
)
def test_operators(text: str, op: str, value: str) -> None:
    """Every comparison operator parses into its Comparison."""
    assert parse_filter(text) == Comparison("a", op, value)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("", "expected '('"),
        ("(a=b", "expected ')'"),
        ("(=b)", "missing key"),
        ("(a b)", "expected an operator"),
        ("(&)", "missing key"),
        ("(!(a=1)(b=2))", "exactly one"),
        ("(a=b)(c=d)", "unexpected text"),
        ("(a=b(c)", "unescaped '('"),
        ("(a=b\\", "dangling escape"),
        ("(" * 40 + "a=b" + ")" * 40, "missing key"),
    ],
)
def test_malformed_filters_say_where(text: str, where: str) -> None:
    """A malformed filter is a UsageError naming where it went wrong."""
    with pytest.raises(UsageError, match="filter .*" + re.escape(where)):
        parse_filter(text)


def test_too_deep_and_too_long_and_not_text() -> None:
    """Filters nested too deep, too long, or not text are refused before sending."""
    deep = "(&" * 40 + "(a=b)" + ")" * 40
    with pytest.raises(UsageError, match="nested deeper than 32"):
        parse_filter(deep)
    with pytest.raises(UsageError, match="at most 4096"):
        parse_filter("(a=" + "x" * 5000 + ")")
    with pytest.raises(InvalidArgumentType):
        parse_filter(42)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(/m/hardware=raspberry-pi)", True),
        ("(/m/hardware=raspberry-*)", True),
        ("(/m/hardware=*pi)", True),
        ("(/m/hardware=x86)", False),
        ("(&(/m/hardware=raspberry-pi)(/m/os=debian)(/m/os-version>=10))", True),
        ("(&(/m/hardware=raspberry-pi)(/m/os-version>12))", False),
        ("(/m/os-version=12.0)", True),
        ("(/m/os-version<9)", False),
        ("(t=special)", True),
        ("(/t=green)", True),
        ("(t=blue)", False),
        ("(t<>blue)", True),
        ("(t<>green)", False),
        ("(t&&blue,green)", True),
        ("(t&&blue,red)", False),
        ("(/pm?room)", True),
        ("(/pm?kitchen)", False),
        ("(t?special)", True),
        ("(/pm/room/foo=bar)", True),
        ("(/pm/room/n<10)", True),
        ("(/m/a~1b=slash)", True),
        ("(/m/missing=x)", False),
        ("(/m/missing<>x)", False),
        ("(!(/m/missing=x))", True),
        ("(|(t=blue)(/m/os=debian))", True),
        ("(/m/hardware~=^rasp)", True),
        ("(/m/hardware~=[)", False),
        ("(/m/os>cat)", True),
        ("(/m=x)", False),
    ],
)
def test_metadata_matching(text: str, expected: bool) -> None:
    """Filters match metadata documents as the server matches them."""
    assert matches(parse_filter(text), META) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(cp=1234ZY)", True),
        ("(&(cp=1234ZY)(action=Heartbeat))", True),
        ("(status>1)", False),
        ("(messageId~=^rukjys)", True),
        ("(&(cp=1234ZY)(!(messageId~=^rukjys)))", False),
        ("(options.duration<=60)", True),
        ("(options.errorThreshold=3)", True),
        ("(options.missing=3)", False),
    ],
)
def test_search_filter_examples_of_the_reference(text: str, expected: bool) -> None:
    """The reference's event search filters match its example event."""
    assert matches(parse_filter(text), EVENT, dotted=True) is expected


def test_booleans_compare_as_text() -> None:
    """Booleans compare as the text 'true'/'false', not as numbers."""
    assert matches(parse_filter("(ok=true)"), {"ok": True}, dotted=True)
    assert not matches(parse_filter("(ok=1)"), {"ok": True}, dotted=True)
