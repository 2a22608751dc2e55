"""The async shell both providers run on: transport, session, limiters, retries, stats,
the shared client lifecycle and the output directory. The only layer that awaits.

``transport`` is the one module that speaks httpx; everything above it speaks our own
``Request``/``Response`` (``locus_async._core.http``).
"""
