"""Fixtures that start a virtual X display (Xvfb) and the sandbox desktop app."""
