"""The README and the docs site, run."""
