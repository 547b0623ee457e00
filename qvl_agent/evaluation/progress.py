"""A progress bar with rate and ETA on stderr; plain lines every 10% when not a terminal."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


class Progress:
    WIDTH = 30

    def __init__(self, total: int, done: int = 0, label: str = "eval", stream: TextIO | None = None) -> None:
        self.total, self.done, self.label = total, done, label
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty()
        self._start_done = done
        self._started = time.perf_counter()
        self._last_decile = -1
        self._lock = threading.Lock()

    def advance(self, count: int = 1) -> None:
        with self._lock:
            self.done += count
            self._show()

    def line(self) -> str:
        elapsed = time.perf_counter() - self._started
        fresh = self.done - self._start_done
        rate = fresh / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else None
        filled = self.WIDTH * self.done // self.total if self.total else self.WIDTH
        eta = format_seconds(left) if left is not None else "?"
        return (f"{self.label} {self.done}/{self.total} [{'#' * filled}{'.' * (self.WIDTH - filled)}] "
                f"{rate:.1f}/s ETA {eta}")

    def _show(self) -> None:
        if self.interactive:
            self.stream.write("\r" + self.line())
            self.stream.flush()
            return
        decile = 10 * self.done // self.total if self.total else 10
        if decile != self._last_decile:
            self._last_decile = decile
            print(self.line(), file=self.stream, flush=True)

    def close(self) -> None:
        if self.interactive:
            self.stream.write("\n")
            self.stream.flush()
