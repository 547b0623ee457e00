"""Start the real adb server and the simulated phone, and connect them (tests, benches, demos)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from environments.processes import BackgroundProcess, stop_process, wait_for

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def adb_binary() -> str:
    """$ADB, or the adb that adbutils ships in its wheel."""
    import adbutils

    return os.environ.get("ADB") or str(Path(adbutils.__file__).parent / "binaries" / "adb")


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class AdbServer(BackgroundProcess):
    """The real adb server on its own port (never 5037): ``with AdbServer() as server``."""

    def __init__(self) -> None:
        self.port = free_port()
        self._process: subprocess.Popen | None = None

    def client(self, timeout: float = 10):
        import adbutils

        return adbutils.AdbClient(host="127.0.0.1", port=self.port, socket_timeout=timeout)

    def start(self) -> AdbServer:
        self._process = subprocess.Popen([adb_binary(), "-P", str(self.port), "server", "nodaemon"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # A plain socket first: adbutils answers a refused connection by running
        # `adb start-server` on the default port 5037, which must never happen here.
        wait_for(lambda: _listening(self.port), 20, "the adb server to listen")
        if self.client(timeout=5).server_version() <= 0:
            raise RuntimeError("the adb server answered without a version")
        return self

    def stop(self) -> None:
        subprocess.run([adb_binary(), "-P", str(self.port), "kill-server"], capture_output=True, timeout=20)
        stop_process(self._process)


class SimulatedPhone(BackgroundProcess):
    """The simulated phone as a process, connected to ``server``."""

    def __init__(self, server: AdbServer, state_path: Path, adbkeyboard: bool = False,
                 size: tuple[int, int] = (1080, 2400)) -> None:
        self.server = server
        self.size = size
        self.port = free_port()
        self.serial = f"127.0.0.1:{self.port}"
        self.state_path = Path(state_path)
        self.control_path = self.state_path.with_suffix(".control.json")
        self.adbkeyboard = adbkeyboard
        self.client = server.client()
        self._process: subprocess.Popen | None = None

    def start(self) -> SimulatedPhone:
        command = [sys.executable, "-m", "environments.android_sim", "--port", str(self.port),
                   "--state", str(self.state_path), "--size", "%dx%d" % self.size]
        command += ["--adbkeyboard"] if self.adbkeyboard else []
        self._process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        wait_for(lambda: _listening(self.port), 20, "the simulated phone to listen")
        self.client.connect(self.serial, timeout=10)
        wait_for(lambda: any(d.serial == self.serial and d.state == "device" for d in self.client.list()), 20,
                 "adb to list the phone")
        return self

    def stop(self) -> None:
        try:
            self.client.disconnect(self.serial)
        except Exception:  # the server may already be gone
            pass
        stop_process(self._process)

    def state(self) -> dict[str, Any]:
        return json.loads(self.state_path.read_text(encoding="utf-8"))

    def control(self, **switches: Any) -> None:
        self.control_path.write_text(json.dumps(switches), encoding="utf-8")

    def wait_until(self, condition, timeout: float = 5.0, what: str = "the phone's state") -> dict[str, Any]:
        """The phone's state once ``condition(state)`` holds."""
        def satisfied() -> dict[str, Any] | None:
            state = self.state()
            return state if condition(state) else None

        return wait_for(satisfied, timeout, what)
