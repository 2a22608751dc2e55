"""House rules of the test suite itself, checked on its source."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _tests() -> list[tuple[Path, ast.FunctionDef | ast.AsyncFunctionDef]]:
    return [
        (path, node)
        for path in sorted(TESTS.rglob("test_*.py"))
        for node in ast.walk(ast.parse(path.read_text("utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")
    ]


def test_every_test_says_what_it_proves() -> None:
    """Each test function has a docstring stating its claim (a few words at least)."""
    tests = _tests()
    assert len(tests) > 350  # the walk found the suite (test functions, before parametrize)
    missing = [
        f"{path.relative_to(TESTS)}::{node.name}"
        for path, node in tests
        if len((ast.get_docstring(node) or "").split()) < 4
    ]
    assert missing == []


def test_test_names_are_unique_within_a_file() -> None:
    """No test shadows another of the same name in its module (only the last would run)."""
    seen: dict[tuple[Path, str], int] = {}
    for path, node in _tests():
        if node.col_offset == 0:
            seen[(path, node.name)] = seen.get((path, node.name), 0) + 1
    assert [key for key, count in seen.items() if count > 1] == []
