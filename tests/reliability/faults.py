"""The fault matrix, shared by its test and by benchmarks/bench_reliability.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pyarrow.parquet as pq

from locus_async import LocusClient, RetryPolicy, Timeouts
from locus_async.locus.backfill import Backfill, BackfillSpec
from locus_async.simulator import DEFAULT_ACCOUNT, Faults, Simulator

COMPONENTS = (54369, 54370, 54380, 54400, 54410)
START, END, TZ = datetime(2024, 9, 15), datetime(2024, 11, 14), "America/Los_Angeles"
FIELDS = ("W_avg", "Wh_sum")

#: The issue's rates; each alone, then all together.
RATES: dict[str, dict[str, float]] = {
    "5xx 10%": {"server_errors": 0.10},
    "HTML 502 5%": {"html_errors": 0.05},
    "dropped bodies 5%": {"drops": 0.05},
    "spurious 429 10%": {"rate_limits": 0.10},
    "revoked tokens 2%": {"revocations": 0.02},
    "slow 1% vs timeout": {"slow": 0.01},
}
RATES["all together"] = {k: v for rates in list(RATES.values()) for k, v in rates.items()}
#: Faults are seeded: with these seeds each one demonstrably fires at its rate in this
#: workload (150 windows), so no run passes without meeting its fault.
SEEDS = dict.fromkeys(RATES, 1) | {"revoked tokens 2%": 2, "slow 1% vs timeout": 5}
#: 2-day windows instead of 31: 150 requests instead of 11, so a 1% fault has a chance.
LIMITS = {"5min": timedelta(days=2)}

#: Small real waits: after a client timeout the server still holds the one slot, so the
#: credential-wide pause must really wait (the test switch would make it zero).
POLICY = RetryPolicy(initial=0.01, maximum=0.25, rate_limit_initial=0.02)
TIMEOUTS = Timeouts(read=0.3, total=5)
SLOW_SECONDS = 0.6


@attrs.frozen
class MatrixResult:
    fault: str
    injected: int
    rows: int
    missing: int
    duplicated: int
    wrong: int
    requests: int
    retries: int
    rate_limited: int
    token_grants: int


def _truth(sim: Simulator) -> dict[tuple[int, datetime], tuple[Any, ...]]:
    rows = {}
    for component in COMPONENTS:
        for row in sim.ground_truth(
            "components", component, fields=list(FIELDS), start=START, end=END, tz=TZ, gran="5min"
        ):
            rows[(row["id"], row["ts"].astimezone(UTC))] = tuple(row[f] for f in FIELDS)
    return rows


async def run_fault(name: str, out: Path) -> MatrixResult:
    """One backfill through one fault mix over loopback sockets, compared row by row."""
    rates = RATES[name]
    sim = Simulator(faults=Faults(seed=SEEDS[name], slow_seconds=SLOW_SECONDS, **rates))
    auth = DEFAULT_ACCOUNT.provider()
    spec = BackfillSpec(
        fields=FIELDS, start=START, end=END, tz=TZ, gran="5min", components=COMPONENTS
    )
    with sim.serve() as server:
        async with LocusClient(
            auth=auth, base_url=server.url, retry=POLICY, timeouts=TIMEOUTS, limits=LIMITS
        ) as client:
            result = await Backfill(client, spec, out).run()
    assert result.complete, result.failures
    table = pq.read_table(out)
    got: dict[tuple[int, datetime], tuple[Any, ...]] = {}
    duplicated = 0
    columns = [table.column(c).to_pylist() for c in ("id", "ts", *FIELDS)]
    for ident, stamp, *values in zip(*columns, strict=True):
        key = (ident, stamp)
        if key in got:
            duplicated += 1
        got[key] = tuple(values)
    truth = _truth(sim)
    return MatrixResult(
        fault=name,
        injected=sum(sim.stats.faults.values()),
        rows=table.num_rows,
        missing=len(truth.keys() - got.keys()),
        duplicated=duplicated,
        wrong=sum(1 for key, values in got.items() if key in truth and truth[key] != values),
        requests=result.requests,
        retries=result.retries,
        rate_limited=result.rate_limited,
        token_grants=result.token_grants,
    )
