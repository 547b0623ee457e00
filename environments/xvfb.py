"""Start a virtual X display (Xvfb) for tests, the demo and benchmarks."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from environments.processes import BackgroundProcess, stop_process


class XvfbError(RuntimeError):
    pass


class VirtualDisplay(BackgroundProcess):
    """``with VirtualDisplay(1920, 1080) as display: ...`` sets nothing globally;
    use ``display.name`` (e.g. ``":99"``) as DISPLAY for the processes that need it."""

    def __init__(self, width: int, height: int, depth: int = 24) -> None:
        self.width, self.height, self.depth = width, height, depth
        self.number: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        if self.number is None:
            raise XvfbError("the virtual display is not started")
        return f":{self.number}"

    def start(self, timeout: float = 10.0) -> VirtualDisplay:
        if shutil.which("Xvfb") is None:
            raise XvfbError(
                "Xvfb is not installed; on Debian/Ubuntu: apt-get install -y xvfb"
            )
        _ensure_xauthority()
        for number in range(90, 200):
            if Path(f"/tmp/.X{number}-lock").exists() or Path(f"/tmp/.X11-unix/X{number}").exists():
                continue
            process = subprocess.Popen(
                ["Xvfb", f":{number}", "-screen", "0", f"{self.width}x{self.height}x{self.depth}",
                 "-nolisten", "tcp", "-dpi", "96"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if _wait_for_socket(number, process, timeout):
                self.number, self._process = number, process
                return self
            process.kill()
            process.wait()
        raise XvfbError("could not start Xvfb on any display :90-:199")

    def stop(self) -> None:
        stop_process(self._process)
        self._process = None


def _wait_for_socket(number: int, process: subprocess.Popen[bytes], timeout: float) -> bool:
    socket = Path(f"/tmp/.X11-unix/X{number}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False  # lost a race for this display number
        if socket.exists() and _accepts_clients(number):
            return True
        time.sleep(0.05)
    return False


def _accepts_clients(number: int) -> bool:
    try:
        from Xlib.display import Display

        from qvl_agent.devices.desktop import quiet_xlib

        with quiet_xlib():
            Display(f":{number}").close()
        return True
    except Exception:  # not ready yet: Xlib raises several connection error types
        return False


def _ensure_xauthority() -> None:
    # pyautogui's Xlib connection wants the file to exist, even empty (no auth on Xvfb).
    path = Path(os.environ.get("XAUTHORITY", Path.home() / ".Xauthority"))
    if not path.exists():
        path.touch()
