"""Serving the simulator over real loopback sockets with uvicorn.

Owns: running uvicorn in a background thread on an ephemeral port (for tests and the demo)
or in the foreground (``locus-async simulate``). Must never: bind a non-loopback address
unless asked to. Needs the ``simulator`` extra (uvicorn).
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

from locus_async.errors import UsageError

__all__ = ["ServedSimulator", "listen", "serve_forever"]


def _uvicorn() -> Any:
    try:
        import uvicorn
    except ImportError:
        raise UsageError(
            "serving the simulator over sockets needs uvicorn: pip install 'locus-async[simulator]'"
        ) from None
    return uvicorn


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port`` (as uvicorn binds: address reuse on), ready to
    be served; OSError if the port is taken, before anything is printed or started."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)  # connections wait in the backlog until uvicorn serves
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class ServedSimulator:
    """A running loopback server; use as a context manager or call ``stop()``."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0) -> None:
        uvicorn = _uvicorn()
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="off",
            log_level="critical",
            access_log=False,
            loop="asyncio",
            http="h11",
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, name="locus-simulator", daemon=True
        )
        self.host = host
        self.port = port

    def start(self, timeout: float = 10.0) -> ServedSimulator:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the simulator server stopped while starting")
            if time.monotonic() > deadline:
                raise RuntimeError("the simulator server did not start in time")
            time.sleep(0.005)
        sockets = self._server.servers[0].sockets
        self.port = int(sockets[0].getsockname()[1])
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> ServedSimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_forever(app: Any, sock: socket.socket) -> None:
    """Serve on ``sock`` (see ``listen``) in the foreground until interrupted."""
    uvicorn = _uvicorn()
    config = uvicorn.Config(app, lifespan="off", log_level="info", access_log=True)
    uvicorn.Server(config).run(sockets=[sock])
