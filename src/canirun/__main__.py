"""``python -m canirun``."""

from canirun.entry import main

raise SystemExit(main())
