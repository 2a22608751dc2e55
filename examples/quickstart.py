"""A first look: the client against the simulator, in process, no network, no credentials.

python examples/quickstart.py
"""

from __future__ import annotations

from datetime import datetime

import anyio

from locus_async.simulator import Simulator


async def main() -> None:
    sim = Simulator()
    async with sim.client() as client:  # a LocusClient wired to the simulator in process
        sites = await client.partners.sites(111)
        print(f"partner 111 has {len(sites)} sites:")
        for site in sites:
            print(f"  {site.id:>8}  {site.name:<22} {site.location_timezone}")
        series = await client.components.data(
            54369,
            fields=["W_avg", "Wh_sum"],
            start=datetime(2024, 10, 1),
            end=datetime(2024, 12, 1),
            tz="America/Los_Angeles",
            gran="5min",
        )
        energy = sum(value or 0.0 for value in series.column("Wh_sum"))
        print(
            f"meter 54369: {len(series)} rows of 5min data (Oct-Nov 2024, across the DST change) "
            f"in {series.requests} requests; {energy / 1000:.1f} kWh"
        )
        print("client stats:", client.stats.snapshot())
    print("simulator saw at most", sim.stats.max_in_flight, "request(s) in flight at once")


if __name__ == "__main__":
    anyio.run(main)
