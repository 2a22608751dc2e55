"""The ``locus-async`` command line: ``app`` holds the root parser, dispatch and exit
codes; each part's commands live in their own module (``locus``, ``solarnetwork``,
``simulate``), with ``common`` and ``progress`` shared."""

from locus_async.cli.app import main

__all__ = ["main"]
