"""``qvl-agent serve`` as a child process, started, waited for and stopped (tests, benches)."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from environments.processes import BackgroundProcess, stop_process

ROOT = Path(__file__).resolve().parents[1]


class ModelServer(BackgroundProcess):
    """``with ModelServer(["--model", path]) as server: server.url``

    Without a ``--port`` the server picks a free one and reports it on its first line; the
    child imports qvl_agent from this checkout; its stderr (the request log) goes to
    ``log_path``.
    """

    def __init__(
        self,
        arguments: list[str],
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.arguments = arguments if "--port" in arguments else [*arguments, "--port", "0"]
        self.env = {**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)}
        self.log_path = log_path
        self._log: IO | None = None
        self.timeout = timeout
        self.url = ""
        self.process: subprocess.Popen | None = None

    def start(self) -> ModelServer:
        self._log = open(self.log_path, "w") if self.log_path is not None else None  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "qvl_agent", "serve", *self.arguments],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self._log or subprocess.DEVNULL,
            text=True,
        )
        line = self._first_line()
        if not line.startswith("serving "):
            self.stop()
            raise RuntimeError(
                f"qvl-agent serve did not start (exit {self.process.returncode}): {line!r}"
            )
        self.url = line.rsplit(" ", 1)[1]
        return self

    def _first_line(self) -> str:
        """The server's first stdout line ("serving NAME at URL"), or "" if it died or hung."""
        assert self.process is not None and self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + self.timeout
            while time.monotonic() < deadline and self.process.poll() is None:
                if selector.select(timeout=0.2):
                    return self.process.stdout.readline().strip()
        return ""

    def stop(self) -> None:
        stop_process(self.process)
        if self._log is not None:
            self._log.close()
