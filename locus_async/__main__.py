"""``python -m locus_async``: the locus-async command line."""

from .cli import main

raise SystemExit(main())
