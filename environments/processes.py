"""Helpers for the helper processes the environments start (Xvfb, sandbox apps, simulators)."""

from __future__ import annotations

import subprocess


def stop_process(process: subprocess.Popen | None, grace: float = 5.0) -> None:
    """Terminate ``process``, and kill it if it has not exited after ``grace`` seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
