"""``SolarNetCore``: the simulated SolarNetwork SolarUser server, composed of its parts (state,
SNWS2 auth, routes, and the handlers of nodes, metadata, datum records, instructions, tokens
and events), synchronous and I/O-free.
"""

from __future__ import annotations

from locus_async.simulator.solarnet.routes import Router

__all__ = ["SolarNetCore"]


class SolarNetCore(Router):
    """All state of one simulated SolarNetwork deployment."""
