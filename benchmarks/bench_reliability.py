"""Figures for the reliability suite: the fault matrix, run exactly as its test runs it.

For each fault (the issue's rates, alone and all together) a 60-day 5min backfill of 5
components through the simulator over loopback sockets: rows, faults injected, and how
the client absorbed them (retries, 429s, token grants), plus the exactness counts.

    python benchmarks/bench_reliability.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import machine, table

from locus_async import set_testing
from tests.reliability.faults import RATES, run_fault


async def main() -> None:
    set_testing(False)
    rows = []
    for fault in RATES:
        with tempfile.TemporaryDirectory() as out:
            r = await run_fault(fault, Path(out) / "out")
        rows.append(
            (
                r.fault,
                r.injected,
                f"{r.rows:,}",
                r.missing,
                r.duplicated,
                r.wrong,
                r.requests,
                r.retries,
                r.rate_limited,
                r.token_grants,
            )
        )
    print(f"Machine: {machine()}\n")
    print(
        table(
            [
                "fault",
                "injected",
                "rows",
                "missing",
                "duplicated",
                "wrong",
                "requests",
                "retries",
                "429s",
                "token grants",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    anyio.run(main)
