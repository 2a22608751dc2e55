"""The simulated Locus v3 server, cut along its tables: ``state`` (accounts, limits, the
fleet), ``auth`` (the token endpoint), ``routes`` (every documented endpoint to its
handler), and one handler module per family (``entities``, ``data``, ``alerts``), composed
in ``core``."""

from locus_async.simulator.locus.core import SimulatorCore
from locus_async.simulator.locus.state import (
    CLIENT_CREDENTIALS_ACCOUNT,
    DEFAULT_ACCOUNT,
    LIMITS,
    Account,
)

__all__ = ["CLIENT_CREDENTIALS_ACCOUNT", "DEFAULT_ACCOUNT", "LIMITS", "Account", "SimulatorCore"]
