"""``locus-async demo``: the whole library at work on a simulated fleet, offline.

Owns: starting the simulator on loopback, backfilling every meter and inverter of
partner 111 (a month of 5min across the US fall-back, a year of daily), the summary and
the daily-energy chart. Must never: need credentials or a network beyond loopback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

from locus_async._shell.store import open_store
from locus_async.locus.auth import PasswordGrant
from locus_async.locus.backfill import Backfill, BackfillProgress, BackfillResult, BackfillSpec
from locus_async.locus.client import LocusClient

__all__ = ["run_demo"]

PARTNER = 111
TZ = "America/Los_Angeles"
FIELDS = ("W_avg", "Wh_sum")
_BLOCKS = " ▁▂▃▄▅▆▇█"


class _Progress(Protocol):
    def __call__(self, progress: BackfillProgress) -> None: ...

    def close(self) -> None: ...


def _specs() -> list[tuple[str, BackfillSpec]]:
    common: dict[str, Any] = {
        "fields": FIELDS,
        "tz": TZ,
        "partner_components": (PARTNER,),
        "node_types": ("METER", "INVERTER"),
    }
    return [
        (
            "5min",
            BackfillSpec(
                start="2024-10-15T00:00:00", end="2024-11-15T00:00:00", gran="5min", **common
            ),
        ),
        (
            "daily",
            BackfillSpec(
                start="2024-01-01T00:00:00", end="2025-01-01T00:00:00", gran="daily", **common
            ),
        ),
    ]


def _daily_energy(out: Path, meters: set[int]) -> list[tuple[date, float]]:
    """kWh per local day, summed over the partner's meters, from the daily Parquet files."""
    from zoneinfo import ZoneInfo

    import pyarrow.parquet as pq

    table = pq.read_table(out)
    zone = ZoneInfo(TZ)
    totals: dict[date, float] = {}
    for ident, stamp, energy in zip(
        table.column("id").to_pylist(),
        table.column("ts").to_pylist(),
        table.column("Wh_sum").to_pylist(),
        strict=True,
    ):
        if ident in meters and energy is not None:
            day = stamp.astimezone(zone).date()
            totals[day] = totals.get(day, 0.0) + energy / 1000.0
    return sorted(totals.items())


def _terminal_chart(days: list[tuple[date, float]]) -> list[str]:
    """Monthly bars and a weekly sparkline, in plain text."""
    if not days:
        return ["(no energy data)"]
    months: dict[str, float] = {}
    for day, kwh in days:
        months[day.strftime("%Y-%m")] = months.get(day.strftime("%Y-%m"), 0.0) + kwh
    top = max(months.values()) or 1.0
    lines = [
        f"Daily energy of partner {PARTNER}'s meters, {days[0][0]} to {days[-1][0]} ({TZ})",
        "",
    ]
    for month, kwh in months.items():
        bar = "█" * round(40 * kwh / top)
        lines.append(f"  {month}  {bar:<40}  {kwh / 1000:7.1f} MWh")
    weeks = [
        sum(k for _, k in days[i : i + 7]) / len(days[i : i + 7]) for i in range(0, len(days), 7)
    ]
    high = max(weeks) or 1.0
    spark = "".join(_BLOCKS[min(8, round(8 * w / high))] for w in weeks)
    peak_day, peak = max(days, key=lambda d: d[1])
    lines += [
        "",
        f"  weekly average: {spark}",
        f"  peak day: {peak_day} ({peak:,.0f} kWh)",
    ]
    return lines


def _png_chart(days: list[tuple[date, float]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axis = plt.subplots(figsize=(10, 4))
    axis.plot([d for d, _ in days], [k for _, k in days], linewidth=1)
    axis.set_title(f"Daily energy, partner {PARTNER} meters ({TZ})")
    axis.set_ylabel("kWh")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


async def run_demo(
    out: Callable[[str], None],
    err: Callable[[str], None],
    directory: str,
    *,
    latency: float = 0.02,
    as_json: bool = False,
    progress: Callable[[str], _Progress] | None = None,
) -> int:
    """Serve the simulator on loopback, backfill the fleet, summarise, chart. Exit code."""
    from locus_async.simulator import DEFAULT_ACCOUNT, Faults, Simulator

    open_store(directory, label="--out")  # checked before anything starts
    root = Path(directory)
    sim = Simulator(faults=Faults(latency=latency, jitter=latency / 2))
    auth = PasswordGrant(
        client_id=DEFAULT_ACCOUNT.client_id,
        client_secret=DEFAULT_ACCOUNT.client_secret,
        username=DEFAULT_ACCOUNT.username or "",
        password=DEFAULT_ACCOUNT.password or "",
    )
    results: list[tuple[str, BackfillResult]] = []
    started = datetime.now()
    with sim.serve() as server:
        err(
            f"Simulated Locus API on {server.url} "
            f"(one request at a time, {latency * 1000:.0f} ms latency)"
        )
        async with LocusClient(auth=auth, base_url=server.url) as client:
            components = await client.partners.components(PARTNER)
            meters = {c.id for c in components if c.node_type == "METER"}
            err(
                f"Partner {PARTNER}: {len(components)} components; "
                "backfilling its meters and inverters"
            )
            for label, spec in _specs():
                bar = progress(label) if progress is not None else None
                try:
                    result = await Backfill(client, spec, root / label, progress=bar).run()
                finally:
                    if bar is not None:
                        bar.close()
                results.append((label, result))
            busy = client.stats.utilisation(client.limiter.capacity)
            grants = sum(client.stats.token_grants.values())
    wall = (datetime.now() - started).total_seconds()
    days = _daily_energy(root / "daily", meters)
    png = root / "daily_energy.png"
    has_png = _png_chart(days, png)
    summary = {
        "output": str(root),
        "backfills": {label: r.summary() for label, r in results},
        "rows": sum(r.rows for _, r in results),
        "requests": sum(r.requests for _, r in results),
        "rate_limited": sum(r.rate_limited for _, r in results),
        "token_refreshes": max(0, grants - 1),
        "slot_busy": round(busy, 3),
        "server_max_in_flight": sim.stats.max_in_flight,
        "wall_seconds": round(wall, 2),
        "chart": str(png) if has_png else None,
    }
    if as_json:
        out(json.dumps(summary, indent=2))
    else:
        out("")
        for label, r in results:
            out(
                f"{label:>5}: {r.entities} components x "
                f"{r.windows_total // max(1, r.entities)} windows, "
                f"{r.windows_done} written ({r.windows_skipped} already done), {r.rows:,} rows"
            )
        out(
            f"total: {summary['rows']:,} rows in {summary['requests']} requests, "
            f"{summary['rate_limited']} x 429, {summary['token_refreshes']} token refreshes, "
            f"the one allowed slot busy {busy:.0%} of the time (server saw at most "
            f"{sim.stats.max_in_flight} request in flight), {wall:.1f} s wall"
        )
        out(
            f"Parquet dataset: {root / '5min'} and {root / 'daily'} "
            "(pyarrow.parquet.read_table(dir))"
        )
        out("")
        for line in _terminal_chart(days):
            out(line)
        if has_png:
            out(f"\nchart: {png}")
    failed = any(not r.complete for _, r in results)
    return 4 if failed else 0
