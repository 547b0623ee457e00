"""An Android phone or emulator over ADB, through the adb server and adbutils.

* Screenshots: the first one times the raw framebuffer dump (``screencap``: no PNG
  encoding on the phone, 2-3x faster on real devices) and ``screencap -p``, and the run
  keeps the faster; PNG is also the fallback when raw does not decode. A capture that fails
  or does not decode raises CaptureError. adbutils' own ``screenshot()`` returns a black
  image on failure unless told otherwise, so it is not used.
* The screenshot's size is the screen in its current rotation, which is also the frame
  ``input tap`` takes coordinates in, so rotation needs no separate bookkeeping.
* Every command is an argument list (adbutils quotes each argument for the device shell);
  model text never becomes shell syntax.
* Text: printable ASCII through ``input text``; anything else through ADBKeyboard's
  base64 broadcast, or a clear error saying what to install. A tab is refused, as on the
  desktop (:mod:`qvl_agent.typed_text`).
* A phone that stops answering gets a bounded number of reconnects; then DeviceError.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from qvl_agent.actions import Action, Click, Key, LongPress, Open, Swipe, SystemButton, TypeText
from qvl_agent.devices import adb_commands as cmd
from qvl_agent.devices.base import CaptureError, DeviceError, Observation, perform_device_independent
from qvl_agent.geometry import Monitor
from qvl_agent.typed_text import tab_refusal

T = TypeVar("T")
SWIPE_MILLISECONDS = 500
RECONNECT_ATTEMPTS = 3
RECONNECT_PAUSE = 1.0
# Labels a model says -> packages, for apps whose package name does not contain the label.
KNOWN_APPS = {
    "settings": "com.android.settings",
    "chrome": "com.android.chrome",
    "camera": "com.android.camera2",
    "clock": "com.google.android.deskclock",
    "contacts": "com.google.android.contacts",
    "phone": "com.google.android.dialer",
    "messages": "com.google.android.apps.messaging",
    "gmail": "com.google.android.gm",
    "maps": "com.google.android.apps.maps",
    "files": "com.google.android.documentsui",
    "calendar": "com.google.android.calendar",
    "play store": "com.android.vending",
    "youtube": "com.google.android.youtube",
    "photos": "com.google.android.apps.photos",
    "calculator": "com.google.android.calculator",
}


def adb_client(host: str | None = None, port: int | None = None, timeout: float = 20.0) -> Any:
    """An AdbClient built from explicit values, falling back to ANDROID_ADB_SERVER_HOST/PORT
    as they are *now* (adbutils' module-level client read them once, at import)."""
    import adbutils

    host = host or os.environ.get("ANDROID_ADB_SERVER_HOST") or "127.0.0.1"
    port = port or int(os.environ.get("ANDROID_ADB_SERVER_PORT") or 5037)
    return adbutils.AdbClient(host=host, port=port, socket_timeout=timeout)


def list_devices(client: Any) -> list[dict[str, str]]:
    """Every device the adb server knows, with its state (device, offline, unauthorized)."""
    try:
        infos = client.list(extended=True)
    except Exception as error:
        raise DeviceError(f"cannot reach the adb server: {error} (is `adb start-server` running?)") from None
    return [{"serial": info.serial, "state": info.state, **_tags(info)} for info in infos]


def screen_size(client: Any, serial: str) -> str:
    """``WxH`` as the phone reports it in its natural orientation (``wm size``)."""
    try:
        output = client.device(serial=serial).shell(["wm", "size"], timeout=10)
    except Exception as error:
        return f"? ({error})"
    sizes = re.findall(r"(Physical|Override) size: (\d+x\d+)", output)
    return dict(sizes).get("Override") or dict(sizes).get("Physical") or "?"


def _connection_errors() -> tuple[type[BaseException], ...]:
    """What a phone that stops answering raises through adbutils."""
    from adbutils import AdbError

    return (AdbError, ConnectionError, OSError, EOFError, TimeoutError)


def _never_sent(error: Exception) -> bool:
    """adb refused to open the transport: the phone is gone, the command was not sent."""
    message = str(error).lower()
    return any(word in message for word in ("offline", "not found", "connecting", "no devices"))


def _tags(info: Any) -> dict[str, str]:
    tags = getattr(info, "tags", None) or {}
    return {key: value for key, value in tags.items() if key in ("model", "product", "device")}


class AndroidDevice:
    space = "mobile"

    def __init__(self, serial: str | None = None, client: Any = None) -> None:
        self.client = client or adb_client()
        self.serial = self._choose(serial)
        self.name = f"android:{self.serial}"
        self._device = self.client.device(serial=self.serial)
        # "auto": the first screenshot measures raw and PNG capture and keeps the faster.
        self._capture_mode = "auto"
        self.capture_timings_ms: dict[str, float] = {}
        self._ime_checked = False
        self._previous_ime: str | None = None

    def _choose(self, serial: str | None) -> str:
        devices = list_devices(self.client)
        ready = [d["serial"] for d in devices if d["state"] == "device"]
        if serial is not None:
            if serial in ready:
                return serial
            known = {d["serial"]: d["state"] for d in devices}
            if serial in known:
                raise DeviceError(f"device {serial} is {known[serial]}, not ready")
            raise DeviceError(
                f"no device {serial!r}; adb lists: {', '.join(known) or 'none'}"
            )
        if len(ready) == 1:
            return ready[0]
        if not ready:
            raise DeviceError("no Android device is connected (adb devices lists none ready)")
        raise DeviceError(f"several devices are connected ({', '.join(ready)}); pick one with android:SERIAL")

    # -- seeing ----------------------------------------------------------------------------

    def screenshot(self) -> Observation:
        started = time.perf_counter()
        image = self._reliably(self._capture, "take a screenshot")
        width, height = image.size
        return Observation(image=image, monitor=Monitor(width=width, height=height),
                           capture_ms=(time.perf_counter() - started) * 1000)

    def _choose_capture_mode(self):
        """First capture: time the raw dump and the PNG once each, keep the faster for the
        run (raw wins on phones, where PNG encoding is slow; PNG when raw fails)."""
        timings = {}
        images = {}
        for mode in ("raw", "png"):
            self._capture_mode = mode
            started = time.perf_counter()
            try:
                images[mode] = self._capture()
            except CaptureError:
                continue
            timings[mode] = time.perf_counter() - started
        if not images:
            self._capture_mode = "auto"
            raise CaptureError("neither a raw nor a PNG screencap worked")
        self._capture_mode = min(timings, key=timings.get)
        self.capture_timings_ms = {mode: round(t * 1000, 1) for mode, t in timings.items()}
        return images[self._capture_mode]

    def _shell_bytes(self, command: list[str]) -> bytes:
        """A command's whole output as bytes. adbutils' own reader joins 4 KiB pieces one by
        one (quadratic: seconds for a 10 MB raw frame); this reads 1 MiB at a time."""
        connection = self._device.shell(command, stream=True, timeout=30)
        pieces = []
        try:
            while piece := connection.conn.recv(1 << 20):
                pieces.append(piece)
        finally:
            connection.close()
        return b"".join(pieces)

    def _capture(self):
        if self._capture_mode == "auto":
            return self._choose_capture_mode()
        raw_error = None
        if self._capture_mode == "raw":
            try:
                return cmd.decode_raw(self._shell_bytes(["screencap"]))
            except cmd.CaptureDecodeError as error:
                raw_error = error
        try:
            image = cmd.decode_png(self._shell_bytes(["screencap", "-p"]))
        except cmd.CaptureDecodeError as error:
            detail = f"{error}" + (f"; raw capture: {raw_error}" if raw_error else "")
            raise CaptureError(detail) from None
        if raw_error is not None:
            self._capture_mode = "png"  # raw is not something this phone gives; PNG from now on
        return image

    # -- acting ----------------------------------------------------------------------------

    def execute(self, action: Action) -> None:
        if isinstance(action, Click):
            self._act(cmd.tap(*self._point(action.coordinate)))
        elif isinstance(action, LongPress):
            x, y = self._point(action.coordinate)
            self._act(cmd.swipe(x, y, x, y, round(action.time * 1000)))
        elif isinstance(action, Swipe):
            self._act(cmd.swipe(*self._point(action.coordinate), *self._point(action.coordinate2),
                                SWIPE_MILLISECONDS))
        elif isinstance(action, TypeText):
            self._type(action.text)
        elif isinstance(action, Key):
            try:
                commands = [cmd.keyevent(key) for key in action.keys]
            except ValueError as error:
                raise DeviceError(str(error)) from None
            for command in commands:
                self._act(command)
        elif isinstance(action, SystemButton):
            self._act(cmd.keyevent(cmd.SYSTEM_BUTTONS[action.button]))
        elif isinstance(action, Open):
            self._open(action.text)
        elif not perform_device_independent(action):
            raise DeviceError(f"a phone cannot perform {action.action!r} (a desktop action)")

    @staticmethod
    def _point(point) -> tuple[int, int]:
        if point.screen is None:
            raise DeviceError("the action's coordinate was not resolved to the screen")
        return point.screen

    def _type(self, text: str) -> None:
        if (refused := tab_refusal(text, self.space)) is not None:
            raise DeviceError(refused)
        if not cmd.needs_ime(text):
            for command in cmd.ascii_text_commands(text):
                self._act(command)
            return
        self._ensure_ime()
        output = self._act(cmd.ime_text(text))
        if "Broadcast completed" not in output:
            raise DeviceError(f"ADBKeyboard did not take the text: {output.strip()}")

    def _ensure_ime(self) -> None:
        if self._ime_checked:
            return
        packages = self._query(["pm", "list", "packages", cmd.ADB_KEYBOARD_PACKAGE])
        if f"package:{cmd.ADB_KEYBOARD_PACKAGE}" not in packages.split():
            raise DeviceError(
                "typing non-ASCII text needs the ADBKeyboard IME on the phone: install "
                "ADBKeyboard.apk (github.com/senzhk/ADBKeyBoard) with `adb install`, then retry"
            )
        current = self._query(["settings", "get", "secure", "default_input_method"]).strip()
        if current != cmd.ADB_KEYBOARD_IME:
            self._act(["ime", "enable", cmd.ADB_KEYBOARD_IME])
            self._act(["ime", "set", cmd.ADB_KEYBOARD_IME])
            self._previous_ime = current  # put back by close()
        self._ime_checked = True

    def _open(self, label: str) -> None:
        package = self._package_for(label)
        output = self._act(cmd.launch(package))
        if "Events injected: 1" not in output:
            raise DeviceError(f"could not open {label!r} ({package}): {output.strip()}")

    def _package_for(self, label: str) -> str:
        listed = self._query(["pm", "list", "packages"])
        packages = [line.removeprefix("package:").strip() for line in listed.splitlines() if line.startswith("package:")]
        wanted = label.strip().lower()
        if KNOWN_APPS.get(wanted) in packages:
            return KNOWN_APPS[wanted]
        if wanted in packages:
            return wanted
        squashed = wanted.replace(" ", "")
        by_last_part = [p for p in packages if p.rsplit(".", 1)[-1].lower() == squashed]
        containing = [p for p in packages if squashed in p.lower()]
        for candidates in (by_last_part, containing):
            if len(candidates) == 1:
                return candidates[0]
        raise DeviceError(f"no app called {label!r} on the phone")

    def _query(self, command: list[str]) -> str:
        """A command that changes nothing on the phone: retried after a reconnect."""
        return self._reliably(lambda: self._device.shell(command, timeout=60), f"run {command[0]}")

    def _reliably(self, operation: Callable[[], T], what: str) -> T:
        """``operation`` retried after reconnects whatever the failure (it changes nothing)."""
        try:
            return self._with_reconnect(operation, may_retry=lambda error: True)
        except _connection_errors() as error:
            raise DeviceError(
                f"device {self.serial} stopped answering ({error}); could not {what} after "
                f"{RECONNECT_ATTEMPTS} reconnects"
            ) from None

    def _act(self, command: list[str]) -> str:
        """A command with an effect. Retried after a reconnect only when adb refused to reach
        the phone at all (so the command was never sent); a failure after sending is not
        retried, since a repeat could tap twice."""
        try:
            return self._with_reconnect(lambda: self._device.shell(command, timeout=60), may_retry=_never_sent)
        except _connection_errors() as error:
            raise self._lost(command, error, sent=not _never_sent(error)) from None

    def _lost(self, command: list[str], error: Exception, sent: bool) -> DeviceError:
        what = " ".join(command[:2])
        if sent:
            return DeviceError(f"device {self.serial} stopped answering during {what} ({error}); "
                               "the action may or may not have happened")
        return DeviceError(f"device {self.serial} is unreachable ({error}); {what} was not performed "
                           f"after {RECONNECT_ATTEMPTS} reconnects")

    # -- connection --------------------------------------------------------------------------

    def _with_reconnect(self, operation: Callable[[], T], may_retry: Callable[[Exception], bool]) -> T:
        """Run ``operation``; when the phone stops answering with an error ``may_retry``
        accepts, reconnect and try again, at most RECONNECT_ATTEMPTS times; else re-raise."""
        for attempt in range(1 + RECONNECT_ATTEMPTS):
            try:
                return operation()
            except _connection_errors() as error:
                if attempt == RECONNECT_ATTEMPTS or not may_retry(error):
                    raise
                time.sleep(RECONNECT_PAUSE)
                self._reconnect()
        raise AssertionError("unreachable")

    def _reconnect(self) -> None:
        if ":" in self.serial:  # a network device (emulator over TCP, `adb connect`)
            try:
                self.client.connect(self.serial, timeout=5)
            except Exception:  # reported by the next attempt
                pass

    def close(self) -> None:
        """Give the phone its own keyboard back if we switched it to ADBKeyboard."""
        if self._previous_ime:
            try:
                self._device.shell(["ime", "set", self._previous_ime], timeout=10)
            except Exception:  # the phone may be gone; nothing else to undo
                pass
            self._previous_ime = None
