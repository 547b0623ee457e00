"""Helpers for the helper processes the environments start (Xvfb, sandbox apps, simulators)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Self, TypeVar

T = TypeVar("T")


class BackgroundProcess:
    """A helper process with ``start()`` (returning itself) and ``stop()``, usable as
    ``with Thing(...) as thing:``, which stops it however the block ends."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


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


def wait_for(condition: Callable[[], T], timeout: float, what: str, poll: float = 0.02) -> T:
    """The first truthy value of ``condition()``; TimeoutError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(poll)
