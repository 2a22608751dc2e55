"""The public path of TimeSeries and WindowStream.

The code lives in ``locus_async.locus.timeseries``; this module keeps the import path users know.
"""

from locus_async.locus.timeseries import *  # noqa: F403
