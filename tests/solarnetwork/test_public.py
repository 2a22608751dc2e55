"""The SolarNetwork public surface: importable, re-exported where users look first."""

from __future__ import annotations

import locus_async
import locus_async.solarnetwork as sn
from locus_async import simulator


def test_every_public_name_exists() -> None:
    """Every name in solarnetwork.__all__ exists, once."""
    for name in sn.__all__:
        assert getattr(sn, name) is not None, name
    assert len(sn.__all__) == len(set(sn.__all__))


def test_the_package_root_re_exports_the_client_and_credentials() -> None:
    """The package root re-exports the client, credentials, signer and errors."""
    for name in ("SolarNetClient", "Snws2Credentials", "snws2_authorization", "InstructionTimeout"):
        assert name in locus_async.__all__
        assert getattr(locus_async, name) is getattr(sn, name)
    assert "ClockSkewError" in locus_async.__all__
    assert locus_async.ClockSkewError is locus_async.errors.ClockSkewError
    assert issubclass(locus_async.ClockSkewError, locus_async.AuthenticationError)
    assert issubclass(locus_async.InstructionTimeout, locus_async.LocusError)


def test_the_simulator_package_exports_the_solarnetwork_simulator() -> None:
    """The simulator package exports the SolarNetwork simulator and its world."""
    for name in ("SolarNetSimulator", "RateRule", "SnWorld", "SN_DEFAULT_TOKEN", "default_world"):
        assert name in simulator.__all__
        assert hasattr(simulator, name)


def test_unknown_keyword_arguments_name_the_client() -> None:
    """An unknown keyword is a TypeError naming SolarNetClient and the keyword."""
    import pytest

    with pytest.raises(
        TypeError,
        match=r"SolarNetClient\(\) got an unexpected keyword "
        r"argument 'max_concurency'",
    ):
        sn.SolarNetClient(credentials=None, max_concurency=2)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"LocusClient\(\) got an unexpected keyword"):
        locus_async.LocusClient(auth=locus_async.BearerToken("t-123456"), retries=3)  # type: ignore[call-arg]


def test_the_runnable_example(capsys) -> None:  # type: ignore[no-untyped-def]
    """The SolarNetwork quickstart example runs to the end against the simulator."""
    import runpy
    from pathlib import Path

    import anyio

    example = Path(__file__).resolve().parents[2] / "examples" / "solarnetwork_quickstart.py"
    module = runpy.run_path(str(example))
    anyio.run(module["main"])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "signed in as demo-sn-token (User)"
    assert out[1].split()[:3] == ["node", "177", "Home"]
    assert [line.split()[1] for line in out[1:4]] == ["177", "178", "179"]
    assert out[4].endswith("Completed")
    assert "Declined {'code': '5000'" in out[5]
    verified, requests = out[6].split()[3], out[6].split()[6]
    assert verified == requests
