"""Worlds to run the agent in: a sandbox desktop app, a simulated phone, task suites."""
