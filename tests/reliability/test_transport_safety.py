"""Transport safety: TLS verified by default, no credentials over plain remote http, bounded
sizes, and timeouts on connect, read and the whole call."""

from __future__ import annotations

import gzip
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import respx
import trustme

from locus_async import (
    BearerToken,
    CertificateError,
    LocusClient,
    RequestTimeout,
    ResponseDecodeError,
    RetryPolicy,
    Timeouts,
    TransportError,
    UsageError,
)
from locus_async.simulator import Simulator
from tests import reference_examples as ex

BASE = "https://api.locusenergy.com"
ONCE = RetryPolicy(attempts=1)


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, trustme.CA]]:
    """The simulator over HTTPS on loopback, with a certificate from a throwaway CA."""
    import uvicorn

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    pem = tmp_path / "server.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
    config = uvicorn.Config(
        Simulator().app, host="127.0.0.1", port=0, ssl_certfile=str(pem), ssl_keyfile=str(pem),
        lifespan="off", log_level="critical",
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"https://127.0.0.1:{port}", ca
    server.should_exit = True
    thread.join(5)


@pytest.mark.asyncio
async def test_tls_is_verified_by_default(tls_server: tuple[str, trustme.CA]) -> None:
    """An untrusted certificate is refused; trusting its CA explicitly works."""
    url, ca = tls_server
    async with LocusClient(auth=BearerToken("tok-123456"), base_url=url, retry=ONCE) as client:
        with pytest.raises(
            TransportError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"
        ):
            await client.sites.get(3393714)
    async with LocusClient(auth=BearerToken("tok-123456"), base_url=url) as client:
        with pytest.raises(CertificateError, match="certificate verify failed"):
            await client.sites.get(3393714)  # the default policy: 6 attempts for the rest
        assert (client.stats.requests, client.stats.retries) == (1, 0)  # never retried
    context = ssl.create_default_context()
    ca.configure_trust(context)
    sim_auth = Simulator.environment(url)
    client = LocusClient.from_env(sim_auth, verify=context)
    async with client:
        assert (await client.sites.get(3393714)).id == 3393714


def test_plain_http_to_a_remote_host_is_refused() -> None:
    """Credentials would travel in clear: refused unless explicitly allowed; loopback is fine."""
    with pytest.raises(UsageError, match="in clear"):
        LocusClient(auth=BearerToken("tok-123456"), base_url="http://api.locusenergy.com")
    LocusClient(
        auth=BearerToken("tok-123456"),
        base_url="http://api.locusenergy.com",
        allow_insecure_http=True,
    )
    LocusClient(auth=BearerToken("tok-123456"), base_url="http://127.0.0.1:8080")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("response", "words"),
    [
        (
            httpx.Response(200, content=b"[" + b"0," * 600_000 + b"0]"),
            "over the 1048576-byte limit",
        ),
        (
            httpx.Response(200, headers={"content-length": "5000000"}, content=b"x" * 5_000_000),
            "limit",
        ),
        (
            httpx.Response(
                200, headers={"content-encoding": "gzip"}, content=gzip.compress(b" " * 50_000_000)
            ),
            "exceeds the 1048576-byte limit",
        ),
    ],
    ids=["large body", "declared too large", "gzip bomb (50 MB in 49 KB)"],
)
async def test_response_size_is_bounded(response: httpx.Response, words: str) -> None:
    """Bodies over the limit (after decompression) are refused, not held in memory."""
    with respx.mock(base_url=BASE) as router:
        router.get("/v3/sites/1").mock(return_value=response)
        async with LocusClient(
            auth=BearerToken("tok-123456"), max_response_bytes=2**20, retry=ONCE
        ) as client:
            with pytest.raises(ResponseDecodeError, match=words):
                await client.sites.get(1)


@pytest.mark.asyncio
async def test_request_size_is_bounded() -> None:
    """A URL over 8 KiB is refused before anything is sent."""
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        route = router.get(url__regex=".*").mock(
            return_value=httpx.Response(200, json=ex.COMPONENTS)
        )
        async with LocusClient(auth=BearerToken("tok-123456")) as client:
            with pytest.raises(UsageError, match="8192"):
                await client.partners.components(1, notes="x" * 9000)
    assert route.call_count == 0


@pytest.mark.asyncio
async def test_connect_timeout_is_a_timeout_that_never_reached_the_server() -> None:
    """A connect timeout maps to RequestTimeout marked as never sent (safe to retry anything)."""
    with respx.mock(base_url=BASE) as router:
        router.get("/v3/sites/1").mock(side_effect=httpx.ConnectTimeout("connect timed out"))
        async with LocusClient(auth=BearerToken("tok-123456"), retry=ONCE) as client:
            with pytest.raises(RequestTimeout) as caught:
                await client.sites.get(1)
    assert caught.value.request_sent is False
    assert isinstance(caught.value, TransportError)


def _raw_server(handle: Callable[[socket.socket], None]) -> tuple[str, Callable[[], None]]:
    """A loopback TCP server calling ``handle`` on each connection, in a thread."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:  # the accept timeout (a socket.timeout), or the listener closed
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()

    def close() -> None:
        stop.set()
        listener.close()

    return f"http://127.0.0.1:{listener.getsockname()[1]}", close


@pytest.mark.asyncio
async def test_read_timeout_against_a_silent_server() -> None:
    """A server that accepts and never answers: the read timeout fires (a ReadTimeout, not
    the connection closing, which only happens when the test ends)."""
    answered = threading.Event()

    def silent(conn: socket.socket) -> None:
        answered.wait(120)
        conn.close()

    url, close = _raw_server(silent)
    try:
        async with LocusClient(
            auth=BearerToken("tok-123456"), base_url=url, retry=ONCE, timeouts=Timeouts(read=0.3)
        ) as client:
            with pytest.raises(RequestTimeout, match="ReadTimeout"):
                await client.sites.get(1)
            assert not answered.is_set()
    finally:
        answered.set()
        close()


@pytest.mark.asyncio
async def test_whole_call_deadline_against_a_trickling_server() -> None:
    """Each byte arrives within the read timeout, but the whole answer takes too long (the
    trickle would take 11 s; the 0.5 s deadline ends it, named in the error)."""

    def trickle(conn: socket.socket) -> None:
        conn.recv(65536)
        body = b'{"statusCode": 200, "id": 1}' + b" " * 200
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % len(body)
        )
        try:
            for byte in body:
                conn.sendall(bytes([byte]))
                time.sleep(0.05)
        except OSError:
            pass
        conn.close()

    url, close = _raw_server(trickle)
    try:
        timeouts = Timeouts(read=1.0, total=0.5)
        async with LocusClient(
            auth=BearerToken("tok-123456"), base_url=url, retry=ONCE, timeouts=timeouts
        ) as client:
            with pytest.raises(RequestTimeout, match=r"no complete response within 0\.5 s"):
                await client.sites.get(1)
    finally:
        close()
