"""``locus-async solarnetwork ...`` (alias ``sn``): whoami, nodes, metadata, instructions."""

from __future__ import annotations

import io
import json

import pytest

from locus_async.cli import main
from locus_async.simulator import SolarNetSimulator

SECRET = "demo-sn-secret"


@pytest.fixture
def cli_sim() -> SolarNetSimulator:
    return SolarNetSimulator(instruction_step=0.01)


def _run(
    sim: SolarNetSimulator, *argv: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    environment = env if env is not None else SolarNetSimulator.environment("http://localhost")
    code = main(list(argv), env=environment, stdout=out, stderr=err, transport=sim.transport())
    assert SECRET not in out.getvalue() + err.getvalue()
    return code, out.getvalue(), err.getvalue()


def test_whoami_and_nodes(cli_sim: SolarNetSimulator) -> None:
    """`sn whoami` names the token and host; `sn nodes` lists the account's nodes."""
    assert _run(cli_sim, "sn", "whoami") == (
        0,
        "token demo-sn-token (User) accepted by http://localhost\n",
        "",
    )
    code, out, _ = _run(cli_sim, "solarnetwork", "nodes", "--format", "table")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["id", "name", "time_zone", "country", "created"]
    assert [line.split()[0] for line in lines[1:]] == ["177", "178", "179"]
    code, out, _ = _run(cli_sim, "sn", "nodes", "--archived", "--json")
    assert code == 0
    assert [n["id"] for n in json.loads(out)] == [180]


def test_metadata_get_set_delete(cli_sim: SolarNetSimulator) -> None:
    """`sn meta get/set/delete` read, merge (with tags) and remove a node's metadata."""
    code, out, _ = _run(cli_sim, "sn", "meta", "get", "--node", "177")
    assert code == 0
    assert json.loads(out)["m"]["hardware"] == "raspberry-pi"
    code, out, _ = _run(
        cli_sim,
        "sn",
        "meta",
        "set",
        "--node",
        "177",
        "--m",
        "floors=2",
        "--m",
        "label=barn north",
        "--tag",
        "cli",
    )
    doc = json.loads(out)
    assert code == 0
    assert doc["m"]["floors"] == 2
    assert doc["m"]["label"] == "barn north"
    assert doc["t"] == ["green", "special", "cli"]
    code, out, _ = _run(
        cli_sim, "sn", "meta", "set", "--user", "--doc", '{"m": {"x": 1}}', "--replace"
    )
    assert code == 0
    assert json.loads(out)["m"] == {"x": 1}
    assert _run(cli_sim, "sn", "meta", "delete", "--node", "178")[0] == 0
    assert json.loads(_run(cli_sim, "sn", "meta", "get", "--node", "178")[1]) == {}
    code, _, err = _run(cli_sim, "sn", "meta", "set", "--node", "177")
    assert code == 2
    assert "nothing to set" in err
    code, _, err = _run(cli_sim, "sn", "meta", "set", "--node", "177", "--doc", "{bad")
    assert code == 2
    assert "--doc is not JSON" in err


def test_instruction_exec_list_and_cancel(cli_sim: SolarNetSimulator) -> None:
    """`sn instr exec` waits for Completed (exit 0), `list` shows it, `cancel` declines a queued one."""
    code, out, _ = _run(
        cli_sim,
        "sn",
        "instr",
        "exec",
        "177",
        "SetControlParameter",
        "--param",
        "/switch/1=1",
        "--wait",
        "5",
        "--json",
    )
    assert code == 0
    assert json.loads(out)[0]["state"] == "Completed"
    assert cli_sim.world.nodes[177].controls["/switch/1"] == "1"
    code, out, _ = _run(
        cli_sim,
        "sn",
        "instr",
        "exec",
        "177",
        "SetControlParameter",
        "--param",
        "/missing=1",
        "--wait",
        "5",
        "--format",
        "table",
    )
    assert code == 1
    assert "Declined" in out
    assert "not available" in out
    code, out, _ = _run(cli_sim, "sn", "instr", "exec", "179", "Signal", "--wait", "0")
    assert code == 4
    assert "Queued" in out
    queued = max(cli_sim.world.instructions)
    code, out, _ = _run(cli_sim, "sn", "instr", "list", "177", "179", "--state", "Queued", "--json")
    assert code == 0
    assert [i["id"] for i in json.loads(out)] == [queued]
    code, out, err = _run(cli_sim, "sn", "instr", "cancel", str(queued))
    assert code == 0
    assert "Declined" in out
    assert "cancelled (was Queued)" in err
    code, _, err = _run(cli_sim, "sn", "instr", "cancel", str(queued - 2))
    assert code == 1
    assert "can no longer be cancelled" in err


def test_deferred_add(cli_sim: SolarNetSimulator) -> None:
    """`sn instr add --at` queues an instruction deferred to that UTC instant."""
    code, out, _ = _run(
        cli_sim, "sn", "instr", "add", "177", "Signal", "--at", "2099-01-01T00:00:00Z", "--json"
    )
    assert code == 0
    (queued,) = json.loads(out)
    assert queued["state"] == "Queued"
    assert cli_sim.world.instructions[queued["id"]].execution_at == 4070908800.0


def test_errors_and_exit_codes(
    cli_sim: SolarNetSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """No credentials exit 2, a wrong secret 3 (never echoed), each with one line."""
    code, _, err = _run(cli_sim, "sn", "whoami", env={})
    assert code == 2
    assert "SN_TOKEN and SN_SECRET" in err
    wrong = {**SolarNetSimulator.environment("http://localhost"), "SN_SECRET": "not-it-at-all"}
    code, _, err = _run(cli_sim, "sn", "whoami", env=wrong)
    assert code == 3
    assert "Invalid signature" in err
    assert "not-it-at-all" not in err
    code, _, err = _run(cli_sim, "sn", "meta", "get", "--node", "300")
    assert code == 1
    assert err.startswith("locus-async: PermissionDenied: HTTP 403")
    code, _, err = _run(cli_sim, "sn", "instr", "exec", "177", "Signal", "--wait", "90")
    assert code == 2
    assert "between 0 and 60" in err
    code, _, _ = _run(cli_sim, "sn", "instr", "exec", "177", "Signal", "--param", "novalue")
    assert code == 2
    assert "'novalue' is not NAME=VALUE" in capsys.readouterr().err


def test_debug_logs_never_show_the_secret(
    cli_sim: SolarNetSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """At -vv, neither the wrong nor the right secret appears in the logs or stderr."""
    caplog.set_level("DEBUG")
    wrong = {**SolarNetSimulator.environment("http://localhost"), "SN_SECRET": "leaky-secret-1"}
    code, _, err = _run(cli_sim, "sn", "whoami", "-vv", env=wrong)
    assert code == 3
    logged = "\n".join(r.getMessage() for r in caplog.records) + err
    assert "leaky-secret-1" not in logged
    assert "demo-sn-secret" not in logged
