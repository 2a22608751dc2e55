"""The public path of Backfill and BackfillSpec.

The code lives in ``locus_async.locus.backfill``; this module keeps the import path users know.
"""

from locus_async.locus.backfill import *  # noqa: F403
