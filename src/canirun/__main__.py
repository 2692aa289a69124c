"""``python -m canirun``."""

from canirun.cli import main

raise SystemExit(main())
