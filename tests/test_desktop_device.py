"""The desktop device on a real Xvfb with the sandbox app: what the user would see."""

import os
import subprocess
import sys

import pytest

from qvl_agent.actions import (
    DoubleClick, Key, LeftClick, LeftClickDrag, MiddleClick, MouseMove, Point, RightClick, Scroll,
    TypeText,
)
from qvl_agent.devices.base import DeviceError
from qvl_agent.devices.desktop import DesktopDevice
from tests.desktop_fixtures import SCREEN_SIZES

HARD_TEXT = "héllo 世界 <\"';$(x)>"


def at(x: int, y: int) -> Point:
    return Point(model=(0, 0), screen=(x, y))


@pytest.fixture
def device(sandbox):
    desktop = DesktopDevice(display=sandbox.display)
    yield desktop
    desktop.close()


@pytest.mark.parametrize("sandbox", SCREEN_SIZES, indirect=True)
def test_screenshot_shows_the_app_at_the_monitor_size(sandbox, device):
    shot = device.screenshot()
    width, height = sandbox.state()["screen"]
    assert shot.image.size == (width, height) == (device.monitor.width, device.monitor.height)
    # The app's header bar is a fixed blue in every theme.
    assert shot.image.getpixel((width // 2, 10)) == (0x1F, 0x6F, 0xEB)
    x, y = sandbox.centre("entry")
    assert shot.image.getpixel((x, y)) == (255, 255, 255)


@pytest.mark.parametrize("sandbox", SCREEN_SIZES, indirect=True)
def test_a_click_on_submit_counts(sandbox, device):
    device.execute(LeftClick(coordinate=at(*sandbox.centre("submit"))))
    sandbox.wait_until(lambda s: s["clicks"]["submit"] == 1, what="the Submit click")


def test_typing_leaves_exactly_the_text_and_runs_nothing(sandbox, device, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    device.execute(LeftClick(coordinate=at(*sandbox.centre("entry"))))
    device.execute(TypeText(text=HARD_TEXT))
    sandbox.wait_until(lambda s: s["entry"] == HARD_TEXT, what="the typed text")
    assert not (tmp_path / "x").exists() and sorted(os.listdir(tmp_path)) == ["state.json"]


def test_newlines_reach_a_multiline_field(sandbox, device):
    # (A tab in the text is refused: tests/test_desktop_layouts.py, qvl_agent/typed_text.py.)
    device.execute(LeftClick(coordinate=at(*sandbox.centre("text"))))
    device.execute(TypeText(text="first line\nsecond line"))
    sandbox.wait_until(lambda s: s["text"] == "first line\nsecond line", what="the notes text")


def test_key_chords_select_and_delete(sandbox, device):
    device.execute(LeftClick(coordinate=at(*sandbox.centre("entry"))))
    device.execute(TypeText(text="delete me"))
    sandbox.wait_until(lambda s: s["entry"] == "delete me")
    device.execute(Key(keys=["ctrl", "a"]))
    device.execute(Key(keys=["BackSpace"]))
    sandbox.wait_until(lambda s: s["entry"] == "", what="the field to be cleared")


def test_unknown_keys_are_refused_not_ignored(device):
    with pytest.raises(DeviceError, match="unknown key 'volumeup'"):
        device.execute(Key(keys=["volumeup"]))


def test_pad_sees_double_right_and_middle_clicks(sandbox, device):
    pad = sandbox.centre("pad")
    device.execute(DoubleClick(coordinate=at(*pad)))
    device.execute(RightClick(coordinate=at(*pad)))
    device.execute(MiddleClick(coordinate=at(*pad)))
    sandbox.wait_until(lambda s: (s["pad"]["double"], s["pad"]["right"], s["pad"]["middle"]) == (1, 1, 1),
                       what="the pad's click counts")


def test_drag_moves_the_block(sandbox, device):
    start = sandbox.state()["pad"]["block"]
    device.execute(MouseMove(coordinate=at(*start)))
    device.execute(LeftClickDrag(coordinate=at(start[0] + 150, start[1] + 60)))
    state = sandbox.wait_until(lambda s: s["pad"]["last_drag"] is not None, what="the drag")
    assert abs(state["pad"]["block"][0] - (start[0] + 150)) <= 2
    assert abs(state["pad"]["block"][1] - (start[1] + 60)) <= 2


def test_scroll_down_then_up_moves_the_list(sandbox, device):
    items = sandbox.centre("list")
    device.execute(Scroll(pixels=-250, coordinate=at(*items)))
    sandbox.wait_until(lambda s: s["list_top"] > 0, what="the list to scroll down")
    scrolled = sandbox.settle()["list_top"]  # every notch has landed
    device.execute(Scroll(pixels=100, coordinate=at(*items)))
    sandbox.wait_until(lambda s: s["list_top"] < scrolled, what="the list to scroll back up")


def test_a_point_off_the_monitor_is_refused_and_nothing_is_clicked(sandbox, device):
    width, height = sandbox.state()["screen"]
    with pytest.raises(DeviceError, match="outside monitor"):
        device.execute(LeftClick(coordinate=at(width + 5, 10)))
    assert sandbox.state()["clicks"] == {"settings": 0, "submit": 0, "ok": 0}


def test_a_corner_target_keeps_the_fail_safe_usable(sandbox, device):
    # Clicking the exact corner would park the pointer where the fail-safe fires on the next
    # call; the device moves it one pixel in, so the run can go on.
    device.execute(MouseMove(coordinate=at(0, 0)))
    device.execute(LeftClick(coordinate=at(*sandbox.centre("ok"))))
    sandbox.wait_until(lambda s: s["clicks"]["ok"] == 1)


def test_the_fail_safe_stops_the_agent(sandbox, device):
    import pyautogui

    pyautogui.moveTo(0, 0, _pause=False)  # a human slams the pointer into the corner
    with pytest.raises(DeviceError, match="fail-safe"):
        device.execute(LeftClick(coordinate=at(*sandbox.centre("ok"))))
    pyautogui.FAILSAFE = False
    pyautogui.moveTo(100, 100)
    pyautogui.FAILSAFE = True


@pytest.mark.parametrize("display", [None, ":321"])
def test_no_display_is_a_clear_error(display):
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    if display:
        env["DISPLAY"] = display
    code = "from qvl_agent.devices.desktop import DesktopDevice\nDesktopDevice()"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("qvl_agent.devices.base.DeviceError")
    assert ("DISPLAY is not set" in last) if display is None else (":321" in last)


def test_a_missing_monitor_lists_the_ones_there(sandbox):
    with pytest.raises(DeviceError, match="monitor 2 does not exist"):
        DesktopDevice(monitor=2, display=sandbox.display)


def test_text_with_more_unusual_characters_than_spare_keycodes(sandbox, device):
    # ~40 distinct characters outside the keymap: typed in chunks of spare keycodes.
    text = "Zürich → 東京, São Paulo; Ελληνικά и русский язык — ½ € ß ñ ø å æ œ ĳ ŧ ð þ"
    device.execute(LeftClick(coordinate=at(*sandbox.centre("text"))))
    device.execute(TypeText(text=text))
    sandbox.wait_until(lambda s: s["text"] == text, timeout=15, what="the multilingual text")


def test_windows_line_ends_are_one_line_break(sandbox, device):
    device.execute(LeftClick(coordinate=at(*sandbox.centre("text"))))
    device.execute(TypeText(text="a\r\nb\rc"))
    sandbox.wait_until(lambda s: s["text"] == "a\nb\nc", what="one break per line end")


@pytest.mark.parametrize("text", ["e\bf", "bell\x07", "del\x7f"])
def test_control_characters_are_refused_not_pressed(sandbox, device, text):
    device.execute(LeftClick(coordinate=at(*sandbox.centre("entry"))))
    with pytest.raises(DeviceError, match="control characters"):
        device.execute(TypeText(text=text))
    assert sandbox.settle()["entry"] == ""
