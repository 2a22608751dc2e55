"""``python -m locus_async``: the locus-async command line."""

from locus_async.cli import main

raise SystemExit(main())
