"""A sandbox Tk desktop app for a virtual X display (Xvfb).

Start it with ``python -m environments.desktop_sim --state FILE [--geometry WxH+X+Y]``.
It writes its state (button counters, field contents, dark mode, ...) and every widget's
absolute screen box to the JSON state file whenever something changes, so tests and task
checks can see what a user would see and compute where to click.
"""

from environments.desktop_sim.app import SandboxApp, main, read_state

__all__ = ["SandboxApp", "main", "read_state"]
