"""Fixtures: the real adb server on a free port, and the simulated phone connected to it.

Tests drive the phone only through that server with the unmodified adbutils client.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from environments.android_sim.session import AdbServer, SimulatedPhone


@pytest.fixture(scope="session")
def adb_server() -> Iterator[AdbServer]:
    """The real adb server on its own port."""
    with AdbServer() as server:
        yield server


@pytest.fixture
def phone(request, adb_server: AdbServer, tmp_path, monkeypatch) -> Iterator[SimulatedPhone]:
    """A fresh simulated phone, connected;
    ``@pytest.mark.parametrize("phone", [{"adbkeyboard": True, "size": (720, 1600)}], indirect=True)``."""
    options = getattr(request, "param", {}) or {}
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(adb_server.port))
    monkeypatch.setenv("ADBUTILS_ADB_PATH", "/bin/false")  # never start a server on 5037
    with SimulatedPhone(adb_server, tmp_path / "phone.json", adbkeyboard=bool(options.get("adbkeyboard")),
                        size=options.get("size", (1080, 2400))) as phone:
        yield phone
