"""``LOCUS_AUTH=cognito`` on the command line: moto's Cognito signs in, the strict simulator
on a socket serves, and check, the listings and an exact backfill work; every refusal is
one line and exit 3."""

from __future__ import annotations

import io
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from locus_async.cli import main
from locus_async.simulator import ServedSimulator, Simulator
from tests.cli.test_cli import BACKFILL, _dataset, _truth
from tests.cognito.conftest import PARTNER, PASSWORD, Pool


def _env(pool: Pool, api: ServedSimulator | str, username: str, **extra: str) -> dict[str, str]:
    """The variables of a Cognito sign-in of ``username`` to the API at ``api``."""
    return {
        "LOCUS_AUTH": "cognito",
        "LOCUS_BASE_URL": api if isinstance(api, str) else api.url,
        "LOCUS_COGNITO_ENDPOINT": pool.endpoint,
        "LOCUS_COGNITO_CLIENT_ID": pool.client_id,
        "LOCUS_USERNAME": username,
        "LOCUS_PASSWORD": PASSWORD,
        **extra,
    }


def _run(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, env=env, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_check_names_the_sign_in_and_the_partner_it_reached(
    pool: Pool, served: ServedSimulator, strict_sim: Simulator, user: str
) -> None:
    """check says it signed in with Cognito, as whom (no password, no token), and counts
    the partner the sign-in names without --partner."""
    with strict_sim.sync_client() as oauth:
        sites, components = oauth.partners.sites(PARTNER), oauth.partners.components(PARTNER)
    code, out, err = _run(["check"], _env(pool, served, user))
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"credentials accepted: Cognito sign-in for {user} (Cognito app client "
        f"{pool.client_id} at {pool.endpoint})",
        f"host: {served.url}",
        "allowance: 1 request at a time (the API's documented); observed 0 x 429 in 4 requests",
        f"partner {PARTNER} (the sign-in's): {len(sites)} sites, 2 clients, "
        f"{len(components)} components",
    ]
    code, out, _ = _run(["check", "--json"], _env(pool, served, user))
    summary = json.loads(out)
    assert (summary["sign_in"], summary["signed_in_partner"]) == ("cognito", PARTNER)
    assert PASSWORD not in out


def test_listings_default_to_the_sign_in_partner(
    pool: Pool, served: ServedSimulator, strict_sim: Simulator, user: str
) -> None:
    """``sites`` without --partner lists the signed-in partner's sites; with the OAuth
    password grant it asks for --partner."""
    code, out, _ = _run(["sites", "--format", "json"], _env(pool, served, user))
    assert code == 0
    with strict_sim.sync_client() as oauth:
        expected = {s.id for s in oauth.partners.sites(PARTNER)}
    assert {row["id"] for row in json.loads(out)} == expected
    code, _, err = _run(["sites"], Simulator.environment(served.url))
    assert code == 2
    assert err.strip() == (
        "locus-async: error: this sign-in (password) does not say which partner it belongs "
        "to: pass --partner (a Cognito sign-in carries it as custom:partnerId)"
    )


@pytest.mark.parametrize(
    ("status", "password", "text"),
    [
        ("confirmed", "Not-the-password-9!", "HTTP 400 [NotAuthorizedException]: wrong username or password"),
        ("unconfirmed", PASSWORD, "HTTP 400 [UserNotConfirmedException]: the user has not been confirmed yet"),
        ("new_password", PASSWORD, "authentication failed: the sign-in asks for NEW_PASSWORD_REQUIRED"),
        ("unknown", PASSWORD, "HTTP 400 [UserNotFoundException]: no such user"),
    ],
)  # fmt: skip
def test_each_refusal_is_one_line_and_exit_3(
    pool: Pool, served: ServedSimulator, status: str, password: str, text: str
) -> None:
    """Each Cognito refusal: its own one-line message, exit 3, no password, no traceback."""
    username = "Jane Smith" if status == "unknown" else pool.user(status=status)
    env = _env(pool, served, username, LOCUS_PASSWORD=password)
    code, out, err = _run(["check"], env)
    assert code == 3
    assert err.startswith("locus-async: authentication failed: ")
    assert text in err
    assert err.count("\n") == 1
    assert password not in out + err
    assert "Traceback" not in err


def test_backfill_with_a_cognito_login_is_exact(
    pool: Pool, served: ServedSimulator, strict_sim: Simulator, user: str, tmp_path: Path
) -> None:
    """``LOCUS_AUTH=cognito locus-async backfill`` over a socket: the dataset equals the
    ground truth, with one sign-in and no 429."""
    out = tmp_path / "ds"
    code, stdout, err = _run([*BACKFILL, "--out", str(out), "-q"], _env(pool, served, user))
    assert code == 0, err
    assert _dataset(out) == _truth(strict_sim)
    assert strict_sim.stats.grants["cognito"] == 1
    assert strict_sim.stats.by_status[429] == 0
    assert PASSWORD not in stdout + err


@pytest.mark.sockets
def test_simulate_trusts_the_pool_it_is_given(pool: Pool, user: str) -> None:
    """``simulate --cognito-issuer ... --cognito-client-id ... --cognito-jwks ...`` reads
    the pool's keys, says so, and serves a Cognito-signed-in client; a lone
    --cognito-issuer is refused, exit 2, before anything listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    flags = ["--cognito-issuer", pool.issuer, "--cognito-client-id", pool.client_id]
    argv = [sys.executable, "-m", "locus_async", "simulate", "--port", str(port)]
    argv += [*flags, "--cognito-jwks", pool.jwks_url, "--latency", "0"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        assert lines[2].strip() == (
            f"also accepts the IdTokens of {pool.issuer} for app client {pool.client_id}"
        )
        env = _env(pool, f"http://127.0.0.1:{port}", user)
        code, out, err = _run(["sites", "--format", "json"], env)
        assert (code, err) == (0, "")
        assert 3393714 in {row["id"] for row in json.loads(out)}
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
    code, _, err = _run(["simulate", "--cognito-issuer", pool.issuer], {})
    assert code == 2
    assert err.strip() == (
        "locus-async: error: give --cognito-issuer and --cognito-client-id together"
    )
