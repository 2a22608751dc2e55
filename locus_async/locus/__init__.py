"""The Locus Energy v3 API: the client and its resources, models, token providers, the
time-series engine and backfills. Its pure code (endpoint paths, query checks, the
window planner, the series parser, token and error decoding) lives in ``locus._core``.
"""
