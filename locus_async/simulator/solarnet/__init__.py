"""The simulated SolarNetwork SolarUser server, cut along its tables: ``state`` (the world,
the envelope, shared parameter helpers), ``auth`` (SNWS2 as the server verifies it, and
the rate rule), ``routes`` (every documented method and path to its handler), and one
handler module per family (``nodes``, ``metadata``, ``datum``, ``instructions``,
``tokens``), composed in ``core``."""

from locus_async.simulator.solarnet.core import SolarNetCore
from locus_async.simulator.solarnet.state import RateRule

__all__ = ["RateRule", "SolarNetCore"]
