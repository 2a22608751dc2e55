"""The blocking clients of ``locus_async.sync``."""
