"""The docs site builds with ``mkdocs build --strict`` (broken links, missing pages and
API reference targets that do not import are errors)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    """The build succeeds, and the API reference holds the clients' documented methods."""
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    clients = (tmp_path / "reference" / "clients" / "index.html").read_text("utf-8")
    for name in ("LocusClient", "SolarNetClient", "SyncIterator", "from_env", "with_options"):
        assert name in clients, name
    assert (tmp_path / "guides" / "sync-client" / "index.html").exists()
