"""Locus v3's pure core: endpoint paths and envelopes, query checks, the DST-safe window
planner, the column-wise series parser, token and error decoding. No await, no clock, no
network: tests need no event loop."""
