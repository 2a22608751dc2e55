"""The public path of LocusClient.

The code lives in ``locus_async.locus.client``; this module keeps the import path users know.
"""

from locus_async.locus.client import *  # noqa: F403
