"""The layers hold: every ``_core`` package (shared, Locus, SolarNetwork) imports no I/O
library and nothing of the shell; only the shell's transport speaks httpx."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "locus_async"
# Pure modules: request builders, parsers, signing, planning. No I/O, no clock, no loop.
PURE = sorted(
    [
        *PACKAGE.glob("_core/*.py"),
        *PACKAGE.glob("*/_core/*.py"),
        PACKAGE / "solarnetwork" / "filters.py",
        PACKAGE / "solarnetwork" / "models.py",
        PACKAGE / "locus" / "models.py",
        PACKAGE / "errors.py",
    ]
)
FORBIDDEN = ("httpx", "anyio", "trio", "asyncio", "redis", "tenacity", "uvicorn", "filelock")
# Pure code may import pure code only: errors, models, and any ``_core``.
ALLOWED_INTERNAL = ("locus_async.errors", "locus_async._version")


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, relative ones resolved to their last part."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names.add(("." * node.level) + module)
    return names


def _pure_internal(name: str) -> bool:
    parts = name.split(".")
    return (
        name.startswith(ALLOWED_INTERNAL)
        or "_core" in parts
        or parts[-1] == "models"
        or name == "locus_async.solarnetwork.filters"
    )


def test_the_pure_modules_are_found() -> None:
    """The list covers the three ``_core`` packages (a rename cannot empty it unseen)."""
    where = {p.parent.relative_to(PACKAGE).as_posix() for p in PURE}
    assert {"_core", "locus/_core", "solarnetwork/_core"} <= where


@pytest.mark.parametrize("path", PURE, ids=[str(p.relative_to(PACKAGE)) for p in PURE])
def test_a_pure_module_imports_no_io_and_no_shell(path: Path) -> None:
    """No I/O library (httpx, anyio, trio, asyncio, redis, tenacity, uvicorn, filelock), and
    of this package only pure modules: no shell, no client."""
    for name in _imports(path):
        assert not name.startswith("."), f"{path.name}: relative import {name}"
        top = name.split(".")[0]
        assert top not in FORBIDDEN, f"{path.name} imports {name}"
        if top == "locus_async":
            assert _pure_internal(name), f"{path.name} imports {name}"


def test_only_the_transport_imports_httpx() -> None:
    """httpx is spoken in one module of the library (the simulators' ASGI glue aside)."""
    speakers = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if any(n.split(".")[0] == "httpx" for n in _imports(path))
    )
    assert speakers == ["_shell/transport.py"]
