"""Fixtures that start a virtual X display (Xvfb) and the sandbox desktop app on it.

One Xvfb per screen size for the whole session; a fresh app per test. Xvfb missing is a
failure, not a skip: CI installs it (.ci/run).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from environments.desktop_sim.session import SandboxProcess
from environments.xvfb import VirtualDisplay

SCREEN_SIZES = [(1920, 1080), (1366, 768)]


@pytest.fixture(scope="session")
def displays() -> Iterator[dict[tuple[int, int], VirtualDisplay]]:
    started: dict[tuple[int, int], VirtualDisplay] = {}

    yield started
    for display in started.values():
        display.stop()


def _display(displays: dict, size: tuple[int, int]) -> VirtualDisplay:
    if size not in displays:
        displays[size] = VirtualDisplay(*size).start()
    return displays[size]


@pytest.fixture
def sandbox(request, displays, tmp_path, monkeypatch) -> Iterator[SandboxProcess]:
    """The sandbox app on a virtual screen; parametrise indirectly with (width, height)."""
    size = getattr(request, "param", SCREEN_SIZES[0])
    display = _display(displays, size)
    monkeypatch.setenv("DISPLAY", display.name)
    with SandboxProcess(display.name, tmp_path / "state.json") as app:
        yield app
