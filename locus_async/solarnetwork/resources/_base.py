"""What every SolarNetwork resource group shares: its requester and converter."""

from __future__ import annotations

from typing import Any

from locus_async.solarnetwork.requester import Requester

__all__ = ["Resource"]


class Resource:
    """A group of endpoints (``client.nodes``, ``client.instructions``...)."""

    def __init__(self, requester: Requester) -> None:
        self._requester = requester

    @property
    def _converter(self) -> Any:
        return self._requester.converter
