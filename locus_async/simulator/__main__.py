from locus_async.simulator import main

raise SystemExit(main())
