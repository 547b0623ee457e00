"""Start the sandbox app on an X display and watch its state (for tests, the demo, benches)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from environments.processes import BackgroundProcess, stop_process, wait_for

ROOT = Path(__file__).resolve().parents[2]


class SandboxError(RuntimeError):
    pass


class SandboxProcess(BackgroundProcess):
    """The app as a running process: ``with SandboxProcess(":99", state_file) as app: ...``."""

    def __init__(self, display: str, state_path: Path) -> None:
        self.display = display
        self.state_path = Path(state_path)
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> SandboxProcess:
        self.state_path.unlink(missing_ok=True)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "environments.desktop_sim", "--state", str(self.state_path)],
            env={**os.environ, "DISPLAY": self.display, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            self.wait_until(lambda state: state.get("ready") is True, timeout, "the app to show")
        except SandboxError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        stop_process(self._process)
        self._process = None

    def state(self) -> dict[str, Any]:
        """The last state the app wrote (replaced atomically, so never half-written)."""
        try:
            return json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}

    def wait_until(
        self, condition: Callable[[dict[str, Any]], bool], timeout: float = 5.0, what: str = "a state"
    ) -> dict[str, Any]:
        def satisfied() -> dict[str, Any] | None:
            if self._process is not None and self._process.poll() is not None:
                error = self._process.stderr.read().decode() if self._process.stderr else ""
                raise SandboxError(f"the sandbox app exited: {error.strip()}")
            state = self.state()
            return state if state and condition(state) else None

        try:
            return wait_for(satisfied, timeout, what)
        except TimeoutError:
            raise SandboxError(f"timed out waiting for {what}; last state: {self.state()}") from None

    def settle(self, quiet: float = 0.3, timeout: float = 5.0) -> dict[str, Any]:
        """The state once the app has written nothing new for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        last = self.state().get("seq")
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.02)
            seq = self.state().get("seq")
            if seq != last:
                last, quiet_since = seq, time.monotonic()
            elif time.monotonic() - quiet_since >= quiet:
                return self.state()
        raise SandboxError(f"the app kept changing for {timeout} s")

    def centre(self, widget: str, state: dict[str, Any] | None = None) -> tuple[int, int]:
        """Absolute screen pixel at the centre of a widget."""
        box = (state or self.state())["widgets"][widget]
        return box["x"] + box["w"] // 2, box["y"] + box["h"] // 2
