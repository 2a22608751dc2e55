"""Each provider's pure core owns its endpoint paths; nothing else spells them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from locus_async.locus._core.endpoints import ENDPOINTS, data_path, entity_path
from locus_async.solarnetwork._core import endpoints as sn

PACKAGE = Path(__file__).resolve().parents[2] / "locus_async"


def test_locus_paths_come_from_the_documented_table() -> None:
    """Documented endpoints build their path; an undocumented one is refused."""
    assert (
        entity_path("partners", 111, "/sites/dataavailable") == "/partners/111/sites/dataavailable"
    )
    assert entity_path("components", 54369) == "/components/54369"
    assert data_path("sites", 3393714) == "/v3/sites/3393714/data"
    assert "/data" in ENDPOINTS["components"]
    with pytest.raises(ValueError, match="no documented endpoint"):
        entity_path("clients", 1, "/alerts")
    with pytest.raises(ValueError, match="no documented endpoint"):
        entity_path("partners", 1)  # a partner itself has no endpoint


def test_solarnetwork_path_builders_escape_their_segments() -> None:
    """Path parameters are escaped as one segment."""
    assert sn.stream_metadata("a/b c") == "/datum/stream/meta/node/a%2Fb%20c"
    assert sn.node_metadata(177) == "/nodes/meta/177"
    assert sn.node_certificate(177) == "/nodes/cert/177"
    assert sn.token_generate("ReadNodeData") == "/user/auth-tokens/generate/ReadNodeData"


@pytest.mark.parametrize("provider", ["locus", "solarnetwork"])
def test_resources_spell_no_path_of_their_own(provider: str) -> None:
    """Every path-like string literal in a resource module is an entry of the pure core's
    table (Locus: "/sites", "/alerts"...); SolarNetwork resources have none at all."""
    files = sorted((PACKAGE / provider).glob("resources*.py")) + sorted(
        (PACKAGE / provider).glob("resources/*.py")
    )
    assert files
    allowed = set().union(*ENDPOINTS.values()) if provider == "locus" else set()
    literal = re.compile(r"""["'](/[A-Za-z][A-Za-z/{}._-]*)["']""")
    offenders = [
        f"{f.name}: {m.group(1)}"
        for f in files
        for m in literal.finditer(f.read_text())
        if m.group(1) not in allowed
    ]
    assert offenders == []
