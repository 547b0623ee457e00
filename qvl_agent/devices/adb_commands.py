"""Android shell commands as argument lists, and screencap decoding. Pure functions.

Every command is a list of arguments; adbutils quotes each one for the device's shell, so
model text never becomes shell syntax. Facts: shared/reference/devices.md section 2.
"""

from __future__ import annotations

import base64
import io
import re
import struct

from PIL import Image, UnidentifiedImageError

ADB_KEYBOARD_PACKAGE = "com.android.adbkeyboard"
ADB_KEYBOARD_IME = "com.android.adbkeyboard/.AdbIME"
SYSTEM_BUTTONS = {
    "Back": "KEYCODE_BACK",
    "Home": "KEYCODE_HOME",
    "Menu": "KEYCODE_APP_SWITCH",
    "Enter": "KEYCODE_ENTER",
}
# Common names a model uses that are not KEYCODE_<NAME.upper()>.
KEY_ALIASES = {
    "back": "BACK", "home": "HOME", "enter": "ENTER", "return": "ENTER", "delete": "DEL",
    "backspace": "DEL", "menu": "MENU", "recent": "APP_SWITCH", "recents": "APP_SWITCH",
    "app_switch": "APP_SWITCH", "volume up": "VOLUME_UP", "volume down": "VOLUME_DOWN",
    "space": "SPACE", "tab": "TAB", "search": "SEARCH", "escape": "ESCAPE", "esc": "ESCAPE",
}
KEY_NAME = re.compile(r"^[A-Z0-9_]+$")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RGBA_8888 = 1
# `input text` handles printable ASCII only; longer texts go in chunks (adb's 64 KiB limit
# on a request, and the device's argument length).
TEXT_CHUNK = 200


class CaptureDecodeError(ValueError):
    pass


def tap(x: int, y: int) -> list[str]:
    return ["input", "tap", str(x), str(y)]


def swipe(x1: int, y1: int, x2: int, y2: int, milliseconds: int) -> list[str]:
    return ["input", "swipe", str(x1), str(y1), str(x2), str(y2), str(max(1, milliseconds))]


def keyevent(name: str) -> list[str]:
    return ["input", "keyevent", keycode(name)]


def keycode(name: str) -> str:
    """``volume_up`` -> ``KEYCODE_VOLUME_UP``; ``"4"`` stays a number; anything else is refused."""
    text = name.strip()
    if text.isdigit():
        return text
    text = KEY_ALIASES.get(text.lower(), text)
    text = text.upper().replace(" ", "_").removeprefix("KEYCODE_")
    if not KEY_NAME.match(text):
        raise ValueError(f"not an Android key name: {name!r} (examples: volume_up, home, back, enter)")
    return f"KEYCODE_{text}"


def launch(package: str) -> list[str]:
    return ["monkey", "-p", package, "-c", "android.intent.category.LAUNCHER", "1"]


def needs_ime(text: str) -> bool:
    """True when ``input text`` cannot type ``text`` (it handles printable ASCII and we
    send newlines and tabs as key events)."""
    return any(not (" " <= char <= "~" or char in "\n\t") for char in text)


def ascii_text_commands(text: str) -> list[list[str]]:
    """Commands that type ``text`` (printable ASCII, newlines, tabs) with ``input text``.

    ``input text`` turns ``%s`` into a space, so a ``%`` followed by ``s`` ends one chunk
    and the ``s`` starts the next; newlines and tabs become ENTER and TAB key events.
    """
    commands: list[list[str]] = []
    for part in re.split(r"([\n\t])", text):
        if part == "\n":
            commands.append(keyevent("ENTER"))
        elif part == "\t":
            commands.append(keyevent("TAB"))
        elif part:
            for chunk in _chunks(part):
                commands.append(["input", "text", chunk])
    return commands


def _chunks(text: str) -> list[str]:
    chunks: list[str] = []
    current = ""
    for char in text:
        if (char == "s" and current.endswith("%")) or len(current) >= TEXT_CHUNK:
            chunks.append(current)
            current = ""
        current += char
    if current:
        chunks.append(current)
    return chunks


def ime_text(text: str) -> list[str]:
    """ADBKeyboard's broadcast: UTF-8 as base64, so nothing in the text needs escaping."""
    encoded = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return ["am", "broadcast", "-a", "ADB_INPUT_B64", "--es", "msg", encoded, "-p", ADB_KEYBOARD_PACKAGE]


def decode_raw(data: bytes) -> Image.Image:
    """``screencap`` without ``-p``: a 12- or 16-byte header (w, h, format[, colorspace])
    then RGBA rows."""
    if len(data) < 12:
        raise CaptureDecodeError(f"raw screencap too short ({len(data)} bytes)")
    width, height, pixel_format = struct.unpack_from("<III", data)
    header = len(data) - width * height * 4
    if width == 0 or height == 0 or header not in (12, 16):
        raise CaptureDecodeError(
            f"raw screencap of {len(data)} bytes does not hold {width}x{height} RGBA pixels"
        )
    if pixel_format != RGBA_8888:
        raise CaptureDecodeError(f"raw screencap pixel format {pixel_format}, expected RGBA_8888")
    pixels = memoryview(data)[header:]
    return Image.frombuffer("RGBA", (width, height), pixels, "raw", "RGBA", 0, 1).convert("RGB")


def decode_png(data: bytes) -> Image.Image:
    """``screencap -p``; text before the PNG (stderr warnings merged into the stream by
    adbd's ``shell:`` service) is skipped, anything undecodable is an error."""
    start = data.find(PNG_SIGNATURE)
    if start == -1:
        preview = data[:80].decode("utf-8", "replace").strip()
        raise CaptureDecodeError(f"screencap returned no PNG ({len(data)} bytes: {preview!r})")
    try:
        image = Image.open(io.BytesIO(data[start:]))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise CaptureDecodeError(f"screencap PNG is damaged: {error}") from None
    return image.convert("RGB")
