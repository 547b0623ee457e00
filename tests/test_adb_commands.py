"""Android commands as argument lists, and screencap decoding."""

import base64
import io
import struct

import pytest
from PIL import Image

from qvl_agent.devices import adb_commands as cmd


@pytest.mark.parametrize(("name", "code"), [
    ("volume_up", "KEYCODE_VOLUME_UP"), ("KEYCODE_HOME", "KEYCODE_HOME"), ("back", "KEYCODE_BACK"),
    ("Enter", "KEYCODE_ENTER"), ("backspace", "KEYCODE_DEL"), ("4", "4"), ("camera", "KEYCODE_CAMERA"),
])
def test_key_names_become_keycodes(name, code):
    assert cmd.keycode(name) == code


@pytest.mark.parametrize("name", ["home; reboot", "$(id)", "", "a-b"])
def test_anything_that_is_not_a_key_name_is_refused(name):
    with pytest.raises(ValueError):
        cmd.keycode(name)


def test_ascii_text_is_one_argument_per_chunk_with_newlines_as_enter():
    commands = cmd.ascii_text_commands("it's \"5%\"; $(id)\nnext\tcell")
    assert commands == [
        ["input", "text", "it's \"5%\"; $(id)"],
        ["input", "keyevent", "KEYCODE_ENTER"],
        ["input", "text", "next"],
        ["input", "keyevent", "KEYCODE_TAB"],
        ["input", "text", "cell"],
    ]


def test_percent_s_is_split_so_android_does_not_turn_it_into_a_space():
    assert cmd.ascii_text_commands("100%sure") == [["input", "text", "100%"], ["input", "text", "sure"]]


def test_long_text_is_chunked():
    chunks = cmd.ascii_text_commands("x" * 450)
    assert [len(c[2]) for c in chunks] == [200, 200, 50]


@pytest.mark.parametrize(("text", "ime"), [("hello", False), ("a\nb", False), ("héllo", True), ("世界", True), ("\x07", True)])
def test_which_text_needs_the_ime(text, ime):
    assert cmd.needs_ime(text) is ime


def test_ime_broadcast_carries_base64_utf8():
    command = cmd.ime_text("héllo 世界 '\"; $(id)")
    assert command[:4] == ["am", "broadcast", "-a", "ADB_INPUT_B64"]
    assert base64.b64decode(command[command.index("msg") + 1]).decode() == "héllo 世界 '\"; $(id)"
    assert command[-2:] == ["-p", "com.android.adbkeyboard"]


def _raw(image: Image.Image, header: int) -> bytes:
    rgba = image.convert("RGBA").tobytes()
    fields = struct.pack("<III", image.width, image.height, 1) + (struct.pack("<I", 1) if header == 16 else b"")
    return fields + rgba


@pytest.mark.parametrize("header", [12, 16])
def test_raw_screencap_decodes_with_either_header(header):
    image = Image.new("RGB", (8, 6), (10, 20, 30))
    image.putpixel((7, 5), (255, 0, 0))
    decoded = cmd.decode_raw(_raw(image, header))
    assert decoded.size == (8, 6) and decoded.getpixel((7, 5)) == (255, 0, 0) and decoded.getpixel((0, 0)) == (10, 20, 30)


@pytest.mark.parametrize("data", [b"", b"\x00" * 11, struct.pack("<III", 100, 100, 1) + b"\x00" * 10,
                                  struct.pack("<III", 2, 2, 5) + b"\x00" * 16])
def test_a_bad_raw_screencap_is_an_error_not_an_image(data):
    with pytest.raises(cmd.CaptureDecodeError):
        cmd.decode_raw(data)


def test_png_after_a_stderr_warning_still_decodes():
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), (1, 2, 3)).save(buffer, "PNG")
    data = b"[Warning] Multiple displays were found, but no display id was specified!\n" + buffer.getvalue()
    assert cmd.decode_png(data).getpixel((0, 0)) == (1, 2, 3)


@pytest.mark.parametrize("data", [b"", b"screencap: permission denied", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20])
def test_no_png_or_a_damaged_one_is_an_error(data):
    with pytest.raises(cmd.CaptureDecodeError):
        cmd.decode_png(data)
