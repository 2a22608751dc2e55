"""Secrets never leak: not in reprs, exception messages, log records (DEBUG included, every
logger), checkpoints, output files or CLI output."""

from __future__ import annotations

import io
import logging
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import respx

from locus_async import (
    AuthenticationError,
    BearerToken,
    ClientCredentialsGrant,
    LocusClient,
    PasswordGrant,
    RefreshTokenGrant,
    RetryPolicy,
    Token,
)
from locus_async.cli import main
from locus_async.locus.backfill import Backfill, BackfillSpec
from locus_async.simulator import Account, Faults, Simulator

SECRET = "sekr1t-client-9c4b"
PASSWORD = "pa55-user-71d0"
ACCOUNT = Account(
    client_id="leak-test", client_secret=SECRET, username="leak@locus.example", password=PASSWORD
)
BASE = "https://api.locusenergy.com"
#: Seeds at which token revocations demonstrably fire in these workloads.
SEED_BACKFILL, SEED_CLI = 2, 2


def _secrets(sim: Simulator) -> list[str]:
    found = [SECRET, PASSWORD, *sim.core.issued_tokens]
    assert len(found) >= 4, "the run should have issued tokens to look for"
    return found


def _scan(texts: list[str], secrets: list[str]) -> list[tuple[int, str]]:
    return [(i, s) for i, text in enumerate(texts) for s in secrets if s in text]


def test_reprs_never_show_secrets() -> None:
    """Providers, the client, tokens and simulator accounts print *** for secrets."""
    objects: list[object] = [
        PasswordGrant(client_id="c", client_secret=SECRET, username="u", password=PASSWORD),
        RefreshTokenGrant(client_id="c", client_secret=SECRET, refresh_token="refresh-" + PASSWORD),
        ClientCredentialsGrant(client_id="c", client_secret=SECRET),
        BearerToken(SECRET),
        Token(
            access_token=SECRET,
            issued_at=datetime(2024, 1, 1),
            expires_in=1,
            refresh_token=PASSWORD,
        ),
        ACCOUNT,
    ]
    objects.append(LocusClient(auth=objects[0]))  # type: ignore[arg-type]
    for obj in objects:
        assert _scan([repr(obj), str(obj)], [SECRET, PASSWORD]) == [], repr(obj)


@pytest.mark.asyncio
async def test_a_server_echoing_the_password_never_reaches_the_exception() -> None:
    """Token-endpoint errors that quote what they were sent are redacted."""
    with respx.mock(base_url=BASE) as router:
        router.post("/oauth/token").mock(
            return_value=httpx.Response(
                401, json={"message": f"bad password {PASSWORD} for secret {SECRET}"}
            )
        )
        auth = PasswordGrant(client_id="c", client_secret=SECRET, username="u", password=PASSWORD)
        async with LocusClient(auth=auth) as client:
            with pytest.raises(AuthenticationError) as caught:
                await client.sites.get(1)
    assert (
        _scan([str(caught.value), repr(caught.value), caught.value.message], [SECRET, PASSWORD])
        == []
    )
    assert "***" in caught.value.message


@pytest.mark.asyncio
async def test_whole_backfill_with_debug_logging_leaks_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A faulty backfill (revoked tokens, refreshes, 429s, 5xx, dropped bodies) with every
    logger at DEBUG: no secret or token in any log record, the checkpoint or the output."""
    caplog.set_level(logging.DEBUG)
    sim = Simulator(
        accounts=[ACCOUNT],
        token_lifetime=900,
        faults=Faults(
            seed=SEED_BACKFILL, server_errors=0.1, rate_limits=0.1, revocations=0.15, drops=0.05
        ),
    )
    auth = PasswordGrant(
        client_id=ACCOUNT.client_id,
        client_secret=SECRET,
        username=ACCOUNT.username or "",
        password=PASSWORD,
    )
    spec = BackfillSpec(
        fields=("W_avg", "Wh_sum"),
        start="2024-01-01",
        end="2024-09-01",
        tz="UTC",
        gran="hourly",
        components=(54369, 54370, 54380),
    )
    with sim.serve() as server:
        async with LocusClient(
            auth=auth, base_url=server.url, retry=RetryPolicy(attempts=8)
        ) as client:
            result = await Backfill(client, spec, tmp_path / "out").run()
    assert result.complete
    assert sim.stats.grants["refresh_token"] >= 1  # refreshes did happen and were logged
    records = [r.getMessage() for r in caplog.records] + [repr(r.args) for r in caplog.records]
    assert any("httpcore" in r.name or "httpx" in r.name for r in caplog.records)
    files = [p.read_bytes().decode("latin-1") for p in tmp_path.rglob("*") if p.is_file()]  # noqa: ASYNC240
    assert _scan(records + files, _secrets(sim)) == []


def test_cli_output_and_debug_logs_leak_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The CLI with -vv through revoked tokens, a backfill then a sync and a sync --plan:
    stdout, stderr and files hold no secret."""
    sim = Simulator(
        accounts=[ACCOUNT], faults=Faults(seed=SEED_CLI, revocations=0.25, rate_limits=0.1)
    )
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["backfill", "--component", "54369", "--fields", "Wh_sum", "--start", "2023-01-01", "--end",
         "2024-07-01", "--tz", "UTC", "--gran", "hourly", "--out", str(tmp_path / "out"), "-vv", "--json"],
        env=Simulator.environment("http://localhost", ACCOUNT), stdout=out, stderr=err, transport=sim.transport(),
    )  # fmt: skip
    assert code == 0, err.getvalue()
    sim.faults = Faults()  # the seed above is for the backfill's requests
    for extra in ([], ["--plan"]):
        code = main(
            ["sync", "--out", str(tmp_path / "out"), "-vv", "--json", *extra],
            env=Simulator.environment("http://localhost", ACCOUNT), stdout=out, stderr=err,
            transport=sim.transport(),
        )  # fmt: skip
        assert code == 0, err.getvalue()
    captured = capfd.readouterr()
    logging.getLogger().handlers.clear()
    assert sim.stats.faults["revocations"] >= 1
    texts = [out.getvalue(), err.getvalue(), captured.out, captured.err]
    texts += [p.read_bytes().decode("latin-1") for p in tmp_path.rglob("*") if p.is_file()]
    assert "DEBUG" in err.getvalue()
    assert _scan(texts, _secrets(sim)) == []
