"""Fixtures: the real adb server on a free port, and the simulated phone connected to it.

The server is the adb binary adbutils ships (or ADB, if set); it never touches port 5037.
Tests drive the phone only through that server with the unmodified adbutils client.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from environments.processes import stop_process

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def adb_binary() -> str:
    import adbutils

    bundled = Path(adbutils.__file__).parent / "binaries" / "adb"
    return os.environ.get("ADB") or str(bundled)


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


@pytest.fixture(scope="session")
def adb_server() -> Iterator[int]:
    """The real adb server, on its own port; yields the port."""
    import adbutils

    port = free_port()
    process = subprocess.Popen([adb_binary(), "-P", str(port), "server", "nodaemon"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = adbutils.AdbClient(host="127.0.0.1", port=port, socket_timeout=5)

    def answers() -> bool:
        try:
            return client.server_version() > 0
        except Exception:
            return False

    wait_for(answers, 20, "the adb server")
    yield port
    subprocess.run([adb_binary(), "-P", str(port), "kill-server"], capture_output=True, timeout=20)
    stop_process(process)


class SimPhone:
    def __init__(self, client: Any, serial: str, state_path: Path, process: subprocess.Popen) -> None:
        self.client, self.serial, self.state_path, self.process = client, serial, state_path, process
        self.control_path = state_path.with_suffix(".control.json")

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


@pytest.fixture
def phone(request, adb_server: int, tmp_path: Path, monkeypatch) -> Iterator[SimPhone]:
    """A fresh simulated phone, connected; ``@pytest.mark.parametrize("phone", [{"adbkeyboard": True}], indirect=True)``."""
    import adbutils

    options = getattr(request, "param", {}) or {}
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(adb_server))
    monkeypatch.setenv("ADBUTILS_ADB_PATH", "/bin/false")  # never start a server on 5037
    port = free_port()
    state_path = tmp_path / "phone.json"
    command = [sys.executable, "-m", "environments.android_sim", "--port", str(port), "--state", str(state_path)]
    if options.get("adbkeyboard"):
        command.append("--adbkeyboard")
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    client = adbutils.AdbClient(host="127.0.0.1", port=adb_server, socket_timeout=10)
    serial = f"127.0.0.1:{port}"

    def listening() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_for(listening, 20, "the simulated phone to listen")
    client.connect(serial, timeout=10)
    wait_for(lambda: any(d.serial == serial and d.state == "device" for d in client.list()), 20,
             "adb to list the phone")
    yield SimPhone(client, serial, state_path, process)
    try:
        client.disconnect(serial)
    except Exception:
        pass
    stop_process(process)
