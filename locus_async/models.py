"""The public path of the Locus v3 models.

The code lives in ``locus_async.locus.models``; this module keeps the import path users know.
"""

from locus_async.locus.models import *  # noqa: F403
