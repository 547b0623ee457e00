"""The desktop: mss screenshots of one monitor, pyautogui input, XTEST typing on X11.

Facts this module is built on (see shared/reference/devices.md):

* pyautogui opens its X display at import time, so it is imported only after the display
  is known to be reachable; a missing display is a DeviceError, not a KeyError.
* ``pyautogui.write`` drops non-ASCII characters and types ``<`` as ``>`` under X11, and
  ``xdotool type`` loses remapped characters in a race with the app; text and key chords go
  through :mod:`qvl_agent.devices.x11_typing`, which types any character exactly, in
  whichever keyboard layout group is active (pyautogui's keycodes are group 1's).
* Key names are made canonical by :mod:`qvl_agent.keys` (the parser has done it already for
  a model's answer); pyautogui silently ignores names it does not know: we check first.
* Under Wayland, mss sees only XWayland windows and XTEST reaches only X11 apps: the device
  refuses to start there (``QVL_AGENT_ALLOW_XWAYLAND=1`` overrides, for XWayland-only use).
* The fail-safe stays on (a human slams the pointer into a corner to stop the agent). It
  fires when the pointer *sits* on a corner pixel before a call, so the agent never moves
  the pointer onto one itself: a target on an exact corner is moved one pixel inward.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

from PIL import Image

from qvl_agent.actions import (
    Action, DoubleClick, Drag, Key, LeftClick, LeftClickDrag, MiddleClick, MouseMove, Point,
    RightClick, Scroll, TypeText,
)
from qvl_agent.devices.base import CaptureError, DeviceError, Observation, perform_device_independent
from qvl_agent.devices.x11_typing import X11Typer
from qvl_agent.geometry import Monitor
from qvl_agent.keys import UnknownKey, chord
from qvl_agent.typed_text import tab_refusal

# One wheel notch per this many "pixels" of a scroll action (a notch scrolls ~3 lines).
PIXELS_PER_NOTCH = 50
DRAG_SECONDS = 0.3

# Set to 1 to run under Wayland anyway, when every app to automate runs under XWayland.
ALLOW_XWAYLAND_ENV = "QVL_AGENT_ALLOW_XWAYLAND"


class DesktopDevice:
    """Monitor ``monitor`` (1 = the first) of this machine's display."""

    space = "computer"

    def __init__(self, monitor: int = 1, display: str | None = None) -> None:
        _refuse_wayland()
        self.display = _reachable_display(display)
        self._gui = _bind_pyautogui(self.display)
        import mss

        make = getattr(mss, "MSS", None) or mss.mss
        kwargs = {"display": self.display} if self.display else {}
        try:
            self._grabber = make(**kwargs)
        except Exception as error:  # mss raises its own ScreenShotError and OSErrors
            raise DeviceError(f"cannot open the screen for capture: {error}") from None
        monitors = self._grabber.monitors[1:]
        if not 1 <= monitor <= len(monitors):
            self._grabber.close()
            raise DeviceError(
                f"monitor {monitor} does not exist; this display has {len(monitors)}: "
                + ", ".join(f"{i}={m['width']}x{m['height']}+{m['left']}+{m['top']}"
                            for i, m in enumerate(monitors, start=1))
            )
        found = monitors[monitor - 1]
        self._region = {key: found[key] for key in ("left", "top", "width", "height")}
        self.monitor = Monitor(**self._region)
        # pyautogui.write loses characters on X11; XTEST with our own keymap handling does not.
        with quiet_xlib():
            self._typer = X11Typer(self.display) if sys.platform.startswith("linux") and self.display else None
        self.name = f"desktop:{self.display or 'local'}:{monitor}"

    # -- seeing ----------------------------------------------------------------------------

    def screenshot(self) -> Observation:
        started = time.perf_counter()
        try:
            shot = self._grabber.grab(self._region)
        except Exception as error:
            raise CaptureError(f"screen capture failed: {error}") from None
        if shot.size != (self.monitor.width, self.monitor.height):
            raise CaptureError(
                f"screen capture returned {shot.size[0]}x{shot.size[1]}, expected "
                f"{self.monitor.width}x{self.monitor.height}"
            )
        # BGRA bytes -> RGB (the alpha byte is undefined and dropped).
        image = Image.frombytes("RGB", shot.size, shot.bgra, "raw", "BGRX")
        return Observation(image=image, monitor=self.monitor,
                           capture_ms=(time.perf_counter() - started) * 1000)

    # -- acting ----------------------------------------------------------------------------

    def execute(self, action: Action) -> None:
        gui = self._gui
        try:
            if isinstance(action, (LeftClick, RightClick, MiddleClick, DoubleClick)):
                where = self._target(action.coordinate) if action.coordinate else (None, None)
                if isinstance(action, DoubleClick):
                    gui.doubleClick(*where)
                else:
                    button = {"left_click": "left", "right_click": "right", "middle_click": "middle"}
                    gui.click(*where, button=button[action.action])
            elif isinstance(action, MouseMove):
                gui.moveTo(*self._target(action.coordinate))
            elif isinstance(action, LeftClickDrag):
                gui.dragTo(*self._target(action.coordinate), duration=DRAG_SECONDS, button="left")
            elif isinstance(action, Drag):
                start, end = self._target(action.coordinate), self._target(action.coordinate2)
                gui.moveTo(*start)
                gui.dragTo(*end, duration=DRAG_SECONDS, button="left")
            elif isinstance(action, Scroll):
                where = self._target(action.coordinate) if action.coordinate else (None, None)
                notches = max(1, round(abs(action.pixels) / PIXELS_PER_NOTCH))
                gui.scroll(notches if action.pixels > 0 else -notches, *where)
            elif isinstance(action, Key):
                self._press(action.keys)
            elif isinstance(action, TypeText):
                self._type(action.text)
            elif not perform_device_independent(action):
                raise DeviceError(f"the desktop cannot perform {action.action!r} (a phone action)")
        except gui.FailSafeException:
            raise DeviceError(
                "fail-safe triggered: the pointer was moved to a screen corner; run stopped"
            ) from None

    def _target(self, point: Point) -> tuple[int, int]:
        """The absolute pixel to act on: on this monitor, never an exact screen corner."""
        if point.screen is None:
            raise DeviceError("the action's coordinate was not resolved to the screen")
        x, y = point.screen
        m = self.monitor
        if not (m.left <= x < m.left + m.width and m.top <= y < m.top + m.height):
            raise DeviceError(
                f"({x}, {y}) is outside monitor {m.width}x{m.height}+{m.left}+{m.top}; not clicked"
            )
        width, height = self._gui.size()
        x = min(max(x, 1), width - 2) if (x in (0, width - 1) and y in (0, height - 1)) else x
        return x, y

    def _press(self, keys: list[str]) -> None:
        """Press a chord; on X11 through the typer, in the active layout group."""
        try:
            names = chord(keys)
        except UnknownKey as error:
            raise DeviceError(str(error)) from None
        if self._typer is not None:
            try:
                self._typer.press_chord(names)
            except ValueError as error:
                raise DeviceError(str(error)) from None
            return
        for name in names:
            if not self._gui.isValidKey(name):
                raise DeviceError(f"unknown key {name!r} on this desktop")
        self._gui.hotkey(*names)

    def _type(self, text: str) -> None:
        if (refused := tab_refusal(text, self.space)) is not None:
            raise DeviceError(refused)
        # Windows line ends are one line break; other control characters are keys, not text.
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        control = sorted({repr(c) for c in text if (ord(c) < 32 and c != "\n") or ord(c) == 127})
        if control:
            raise DeviceError(f"text holds control characters {', '.join(control)}; use the key action for keys")
        if not text:
            return
        if self._typer is not None:
            self._typer.type(text)
            return
        if not text.isascii():
            raise DeviceError("typing non-ASCII text is supported on X11 only")
        self._gui.write(text)

    def close(self) -> None:
        self._grabber.close()
        if self._typer is not None:
            self._typer.close()


@contextlib.contextmanager
def quiet_xlib() -> Iterator[None]:
    """python-xlib prints "no xauthority details available" to stdout whenever the
    Xauthority file is empty (normal under Xvfb); keep that out of the user's output."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def _refuse_wayland() -> None:
    """Under Wayland the screenshots would miss native windows and the input would miss
    native apps: acting blind. One line says so, unless the user opts in."""
    if not sys.platform.startswith("linux") or os.environ.get(ALLOW_XWAYLAND_ENV) == "1":
        return
    session = os.environ.get("XDG_SESSION_TYPE", "").lower()
    if session == "wayland" or os.environ.get("WAYLAND_DISPLAY"):
        raise DeviceError(
            "this is a Wayland session: screenshots would show only XWayland windows and "
            "input would reach only X11 apps, so the agent would act blind; log in to an X11 "
            f"session (e.g. 'GNOME on Xorg'), or set {ALLOW_XWAYLAND_ENV}=1 if every app "
            "to automate runs under XWayland"
        )


def _reachable_display(display: str | None) -> str | None:
    """The X display to use, checked to accept connections; None off Linux."""
    if not sys.platform.startswith("linux"):
        return display
    name = display or os.environ.get("DISPLAY")
    if not name:
        raise DeviceError(
            "no X display: DISPLAY is not set. Run inside a desktop session, or start a "
            f"virtual one (Xvfb is in Debian's xvfb package): {VIRTUAL_DISPLAY_HINT}"
        )
    try:
        from Xlib.display import Display

        with quiet_xlib():
            Display(name).close()
    except Exception as error:  # Xlib has several connection error types
        raise DeviceError(f"cannot connect to X display {name!r} ({error}): "
                          f"{_display_advice(str(error))}") from None
    return name


# A virtual screen and the variable that points at it, as one line a shell runs as given.
VIRTUAL_DISPLAY_HINT = "Xvfb :99 -screen 0 1920x1080x24 & export DISPLAY=:99"


def _display_advice(error: str) -> str:
    """What to do about an X connection error (the variable, the server or the permission)."""
    if "authoriz" in error.lower() or "protocol" in error.lower():
        return ("the X server refused this user: run as the desktop's user, or set XAUTHORITY "
                "to that user's ~/.Xauthority")
    return ("set DISPLAY to the display of a running X server (`echo $DISPLAY` in a terminal "
            f"of that desktop, usually :0), or start a virtual one: {VIRTUAL_DISPLAY_HINT}")


def _bind_pyautogui(display: str | None) -> Any:
    """Import pyautogui for ``display`` (it connects at import) and point it there."""
    if display:
        os.environ["DISPLAY"] = display
    _ensure_xauthority()
    with quiet_xlib():
        import pyautogui

    pyautogui.PAUSE = 0  # its default sleeps 0.1 s after every call
    pyautogui.FAILSAFE = True
    if sys.platform.startswith("linux") and display:
        from pyautogui import _pyautogui_x11 as x11
        from Xlib.display import Display

        if x11._display.get_display_name() != display:
            # pyautogui keeps the display it met at import; a new one (another Xvfb) needs a
            # new connection and new fail-safe corners.
            with quiet_xlib():
                x11._display = Display(display)
    width, height = pyautogui.size()
    pyautogui.FAILSAFE_POINTS = [(0, 0), (0, height - 1), (width - 1, 0), (width - 1, height - 1)]
    return pyautogui


def _ensure_xauthority() -> None:
    # The Xlib that pyautogui uses wants the file to exist, even empty.
    path = os.environ.get("XAUTHORITY") or os.path.expanduser("~/.Xauthority")
    if not os.path.exists(path):
        open(path, "a").close()
