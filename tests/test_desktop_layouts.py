"""The desktop types and presses exactly what the model said, whichever keyboard layout is
active: a real Xvfb with ``setxkbmap -layout us,ru`` and the Russian group locked (what a
user with a layout switcher has after switching), the sandbox app, real XTEST input."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from environments.desktop_sim.session import SandboxProcess
from environments.xvfb import VirtualDisplay
from qvl_agent.actions import Key, LeftClick, Point, TypeText
from qvl_agent.devices.base import DeviceError
from qvl_agent.devices.desktop import DesktopDevice, quiet_xlib
from qvl_agent.devices.xkb_state import KeyboardState
from qvl_agent.geometry import Frame, Monitor
from qvl_agent.trajectory import read_run
from tests.agent_helpers import tool_call, write_script

ROOT = Path(__file__).resolve().parent.parent
SIZE = (1366, 768)
SHELL_LINE = "echo hi > /tmp/out.txt"
RUSSIAN = 1  # the second layout group


@pytest.fixture(scope="module")
def russian_display() -> Iterator[VirtualDisplay]:
    """An Xvfb with layouts us,ru and the Russian group locked. A client stays connected
    throughout: when its last client leaves, an X server resets its keymap."""
    from Xlib.display import Display

    with VirtualDisplay(*SIZE) as display:
        with quiet_xlib():
            keeper = Display(display.name)
        try:
            subprocess.run(["setxkbmap", "-display", display.name, "-layout", "us,ru"],
                           check=True, timeout=30)
            keyboard = KeyboardState(keeper)
            keyboard.lock_group(RUSSIAN)
            keeper.sync()
            assert keyboard.read()[0] == RUSSIAN
            yield display
        finally:
            keeper.close()


@pytest.fixture
def app(russian_display, tmp_path, monkeypatch) -> Iterator[SandboxProcess]:
    monkeypatch.setenv("DISPLAY", russian_display.name)
    with SandboxProcess(russian_display.name, tmp_path / "state.json") as sandbox:
        yield sandbox


@pytest.fixture
def device(app) -> Iterator[DesktopDevice]:
    desktop = DesktopDevice(display=app.display)
    yield desktop
    desktop.close()


def at(x: int, y: int) -> Point:
    return Point(model=(0, 0), screen=(x, y))


def test_the_russian_group_is_what_a_plain_key_press_types(app, device):
    # The key of "e" pressed as it is (pyautogui's way) types the Russian letter: the
    # layout these tests need is really active.
    device.execute(LeftClick(coordinate=at(*app.centre("entry"))))
    device._gui.press("e")
    app.wait_until(lambda s: s["entry"] == "у", what="a Cyrillic letter")


@pytest.mark.parametrize("field", ["entry", "text"])
def test_type_types_exactly_the_text_with_the_russian_group_active(app, device, field):
    text = SHELL_LINE + " ; Привет, мир! <ÄÖ> ~`|\\"
    device.execute(LeftClick(coordinate=at(*app.centre(field))))
    device.execute(TypeText(text=text))
    app.wait_until(lambda s: s[field] == text, timeout=10, what="the typed text")


def test_chords_and_enter_with_the_russian_group_active(app, device):
    device.execute(LeftClick(coordinate=at(*app.centre("entry"))))
    device.execute(TypeText(text="delete me"))
    app.wait_until(lambda s: s["entry"] == "delete me")
    device.execute(Key(keys=["ctrl", "a"]))  # select all: the key of "a", not of "ф"
    device.execute(Key(keys=["BackSpace"]))
    app.wait_until(lambda s: s["entry"] == "", what="the field to be cleared")

    device.execute(LeftClick(coordinate=at(*app.centre("text"))))
    device.execute(TypeText(text="one"))
    device.execute(Key(keys=["Return"]))
    device.execute(TypeText(text="two"))
    app.wait_until(lambda s: s["text"] == "one\ntwo", what="a line break from Enter")


def test_caps_lock_does_not_change_the_typed_text(app, device):
    device.execute(LeftClick(coordinate=at(*app.centre("entry"))))
    device.execute(Key(keys=["capslock"]))
    try:
        text = "Hello World, Привет, Ωμέγα, Äß"
        device.execute(TypeText(text=text))
        app.wait_until(lambda s: s["entry"] == text, what="the typed text")
    finally:
        device.execute(Key(keys=["capslock"]))


def test_a_tab_in_the_text_is_refused_and_nothing_is_typed(app, device):
    device.execute(LeftClick(coordinate=at(*app.centre("text"))))
    with pytest.raises(DeviceError, match="holds a tab"):
        device.execute(TypeText(text="first\tsecond"))
    assert app.settle()["text"] == ""
    device.execute(TypeText(text="first"))  # what the model is told to do instead
    device.execute(Key(keys=["tab"]))  # the notes box takes a tab: Tab inserts it
    app.wait_until(lambda s: s["text"] == "first\t", what="a tab from the Tab key")


def run_cli(script: Path, record: Path, display: str, **env: str):
    return subprocess.run(
        [sys.executable, "-m", "qvl_agent", "run", "Type a command", "--device", "desktop",
         "--model", f"scripted:{script}", "--settle", "0.2", "--record", str(record)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "DISPLAY": display, **env},
    )


def test_a_run_types_the_command_and_normalises_keys_with_the_russian_group_active(
    app, tmp_path
):
    frame = Frame.fit(Monitor(width=SIZE[0], height=SIZE[1]))
    entry = list(frame.to_model(*app.centre("entry")))
    script = write_script(tmp_path / "script.jsonl", [
        tool_call(action="left_click", coordinate=entry),
        tool_call(action="type", text="draft"),
        tool_call(action="key", keys=["ctrl", "A"]),  # Ctrl+A, not Ctrl+Shift+A
        tool_call(action="type", text="x"),  # replaces the selection
        tool_call(action="key", keys=["ctrl+a"]),  # one item with a plus: a chord
        tool_call(action="type", text=f"{SHELL_LINE}\tnext"),  # refused, fed back
        tool_call(action="type", text=SHELL_LINE),  # the model's second answer
        tool_call(action="key", keys=["volumeup"]),  # unknown on a desktop: fed back
        tool_call(action="terminate", status="success"),
    ])
    result = run_cli(script, tmp_path / "run", app.display)
    assert result.returncode == 0, result.stderr
    app.wait_until(lambda s: s["entry"] == SHELL_LINE, what="the command in the field")

    steps = read_run(tmp_path / "run").steps
    assert [step.outcome for step in steps] == ["executed"] * 6 + ["final"]
    assert steps[2].action == Key(keys=["ctrl", "a"])
    assert steps[4].action == Key(keys=["ctrl", "a"])
    tab, unknown = steps[5].attempts[0].error, steps[6].attempts[0].error
    assert "holds a tab" in tab and '"keys": ["tab"]' in tab
    assert "unknown key 'volumeup'" in unknown and "pagedown" in unknown


def test_wayland_is_refused_with_one_line_unless_allowed(app, tmp_path):
    script = write_script(tmp_path / "script.jsonl",
                          [tool_call(action="terminate", status="success")])
    for env in ({"WAYLAND_DISPLAY": "wayland-0"}, {"XDG_SESSION_TYPE": "wayland"}):
        refused = run_cli(script, tmp_path / "refused", app.display, **env)
        assert refused.returncode == 2
        (line,) = refused.stderr.strip().splitlines()
        assert "Wayland session" in line and "QVL_AGENT_ALLOW_XWAYLAND=1" in line
        assert not (tmp_path / "refused").exists()
    allowed = run_cli(script, tmp_path / "allowed", app.display,
                      WAYLAND_DISPLAY="wayland-0", QVL_AGENT_ALLOW_XWAYLAND="1")
    assert allowed.returncode == 0, allowed.stderr
