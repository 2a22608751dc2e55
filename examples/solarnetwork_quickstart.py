"""SolarNetwork against its simulator, in process, no network: the README's SolarNetwork
example, runnable.

python examples/solarnetwork_quickstart.py
"""

from __future__ import annotations

import anyio

from locus_async.simulator import SolarNetSimulator


async def main() -> None:
    sim = SolarNetSimulator(instruction_step=0.05)  # a simulated node takes 50 ms per state
    async with sim.client() as sn:  # a SolarNetClient with the simulator's demo token
        who = await sn.whoami()
        print(f"signed in as {who.token} ({who.token_type})")
        async for node, meta in sn.nodes_with_metadata():
            print(f"  node {node.id:>4} {node.name or '':<10} metadata: {meta.m if meta else None}")
        await sn.node_metadata.add(177, {"m": {"hardware": "raspberry-pi"}, "t": ["pi"]})
        done = await sn.instructions.queue_and_wait(
            177, "SetControlParameter", {"/switch/1": "1"}, max_wait=10, poll_interval=0.05
        )
        print(f"instruction {done.id}: {done.state}")
        declined = await sn.instructions.queue_and_wait(
            177, "SetControlParameter", {"/no/such/switch": "1"}, poll_interval=0.05
        )
        print(f"instruction {declined.id}: {declined.state} {declined.result_parameters}")
    verified = sim.stats.counters["signatures_verified"]
    print(f"the simulator verified {verified} signatures of {sim.stats.requests} requests")


if __name__ == "__main__":
    anyio.run(main)
