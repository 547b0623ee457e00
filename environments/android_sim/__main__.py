"""``python -m environments.android_sim --port P --state FILE [options]``."""

from environments.android_sim.cli import main

raise SystemExit(main())
