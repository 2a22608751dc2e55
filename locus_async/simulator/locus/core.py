"""``SimulatorCore``: the simulated Locus v3 server, composed of its parts (state, auth,
routes, and the handlers of entities, data and alerts), synchronous and I/O-free.
"""

from __future__ import annotations

from locus_async.simulator.locus.alerts import AlertHandlers
from locus_async.simulator.locus.data import DataHandlers
from locus_async.simulator.locus.entities import EntityHandlers
from locus_async.simulator.locus.routes import Router

__all__ = ["SimulatorCore"]


class SimulatorCore(Router, EntityHandlers, DataHandlers, AlertHandlers):
    """All state of one simulated Locus deployment."""
