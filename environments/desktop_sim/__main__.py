"""``python -m environments.desktop_sim --state FILE [--geometry WxH+X+Y]``."""

from environments.desktop_sim.app import main

raise SystemExit(main())
