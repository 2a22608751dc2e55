"""The layers hold: the pure core imports no I/O library and nothing of the shell."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "locus_async"
# Pure modules: request builders, parsers, signing, planning. No I/O, no clock, no loop.
PURE = sorted(
    [
        *(PACKAGE / "_core").glob("*.py"),
        PACKAGE / "solarnetwork" / "_signing.py",
        PACKAGE / "solarnetwork" / "_envelope.py",
        PACKAGE / "solarnetwork" / "filters.py",
        PACKAGE / "models.py",
        PACKAGE / "errors.py",
    ]
)
FORBIDDEN = ("httpx", "anyio", "trio", "asyncio", "redis", "tenacity", "uvicorn")
SHELL = {"_session", "_transport", "_limiter", "_redis", "_retry", "_shell", "_oauth"}


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


@pytest.mark.parametrize("path", PURE, ids=[str(p.relative_to(PACKAGE)) for p in PURE])
def test_a_pure_module_imports_no_io_and_no_shell(path: Path) -> None:
    """No httpx, anyio, trio, asyncio, redis, tenacity or uvicorn, and no shell module."""
    for name in _imports(path):
        top = name.lstrip(".").split(".")[0]
        assert top not in FORBIDDEN, f"{path.name} imports {name}"
        assert not (name.startswith(".") and top in SHELL), f"{path.name} imports {name}"


def test_only_the_transport_imports_httpx() -> None:
    """httpx is spoken in one module of the library (the simulators' ASGI glue aside)."""
    speakers = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if any(n.split(".")[0] == "httpx" for n in _imports(path))
    )
    assert speakers == ["_transport.py"]
