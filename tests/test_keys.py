"""Key names a model writes become the one key they mean; an unknown key and a tab inside
``type`` are errors fed back to the model, the same on the desktop and on the phone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from qvl_agent.actions import Key, TypeText
from qvl_agent.devices.base import DeviceError
from qvl_agent.geometry import Frame, Monitor
from qvl_agent.keys import UnknownKey, chord
from qvl_agent.parsing import ActionParseError, parse
from qvl_agent.trajectory import read_run
from tests.agent_helpers import tool_call
from tests.test_android import as_app, model_point, run_agent

ROOT = Path(__file__).resolve().parent.parent
SCREEN = Frame.fit(Monitor(width=1920, height=1080))
PHONE = Frame.fit(Monitor(width=1080, height=2400))


def desktop_keys(keys) -> list[str]:
    return parse(tool_call(action="key", keys=keys), SCREEN, "computer").action.keys


@pytest.mark.parametrize(
    ("said", "pressed"),
    [
        (["ctrl", "A"], ["ctrl", "a"]),  # not Ctrl+Shift+A
        (["CTRL", "SHIFT", "T"], ["ctrl", "shift", "t"]),
        (["A"], ["a"]),  # a letter names its key; Shift makes the capital
        (["ctrl+a"], ["ctrl", "a"]),  # one item holding a chord
        ("ctrl+shift+esc", ["ctrl", "shift", "esc"]),
        ("ctrl c", ["ctrl", "c"]),
        (["Control_L", "Alt_L", "Delete"], ["ctrlleft", "altleft", "delete"]),
        (["cmd", "space"], ["win", "space"]),
        (["super"], ["win"]),
        (["Win"], ["win"]),
        (["meta", "l"], ["win", "l"]),
        (["Escape"], ["esc"]),
        (["Return"], ["enter"]),
        (["KP_Enter"], ["enter"]),
        (["BackSpace"], ["backspace"]),
        (["PgUp"], ["pageup"]),
        (["Page Down"], ["pagedown"]),
        (["page_up"], ["pageup"]),
        (["ArrowLeft"], ["left"]),
        (["F5"], ["f5"]),
        (["ctrl", "+"], ["ctrl", "+"]),
        (["ctrl++"], ["ctrl", "+"]),
        (["ctrl", "plus"], ["ctrl", "+"]),
        ([" "], ["space"]),
        (["É"], ["é"]),
        (["/"], ["/"]),
    ],
)
def test_desktop_key_names_are_normalised(said, pressed):
    assert desktop_keys(said) == pressed


@pytest.mark.parametrize("keys", [["volumeup"], ["ctrl", "hyperspace"], [""], [], ["ctrl", 5]])
def test_an_unknown_desktop_key_is_an_error_for_the_model(keys):
    with pytest.raises(ActionParseError) as raised:
        desktop_keys(keys)
    assert "enter, esc, tab" in str(raised.value)  # it names keys there are


def test_phone_keys_keep_their_adb_names():
    said = tool_call("mobile", action="key", text="volume_up")
    assert parse(said, PHONE, "mobile").action == Key(keys=["volume_up"])


@pytest.mark.parametrize(
    ("space", "frame", "press"),
    [("computer", SCREEN, '"keys": ["tab"]'), ("mobile", PHONE, '"text": "tab"')],
)
def test_a_tab_in_type_is_an_error_for_the_model_in_both_spaces(space, frame, press):
    with pytest.raises(ActionParseError, match="holds a tab") as raised:
        parse(tool_call(space, action="type", text="name\temail"), frame, space)
    assert press in str(raised.value)
    typed = parse(tool_call(space, action="type", text="name\n"), frame, space)
    assert typed.action == TypeText(text="name\n")  # a newline stays: it presses Enter


def test_the_parse_command_shows_the_normalised_chord_and_the_refusals():
    def parse_cli(answer: str):
        return subprocess.run(
            [sys.executable, "-m", "qvl_agent", "parse", "--screen", "1920x1080"],
            input=answer, capture_output=True, text=True, timeout=60, cwd=ROOT,
        )

    shown = parse_cli(tool_call(action="key", keys=["ctrl", "A"]))
    assert shown.returncode == 0 and json.loads(shown.stdout)["keys"] == ["ctrl", "a"]
    for answer, message in ((tool_call(action="key", keys=["volumeup"]), "unknown key"),
                            (tool_call(action="type", text="a\tb"), "holds a tab")):
        refused = parse_cli(answer)
        assert refused.returncode == 2 and message in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1


def test_key_chords_are_what_the_module_documents():
    assert chord(["ctrl", "shift", "T"]) == ["ctrl", "shift", "t"]
    with pytest.raises(UnknownKey, match="unknown key 'volumeup'"):
        chord(["volumeup"])


@pytest.mark.parametrize("phone", [{"adbkeyboard": True}], indirect=True)
def test_on_the_phone_a_tab_is_fed_back_and_nothing_is_typed_blind(phone, tmp_path):
    notes = as_app(phone.state(), "com.example.notes")
    result, device = run_agent(phone, [
        tool_call("mobile", action="open", text="Notes"),
        tool_call("mobile", action="click", coordinate=model_point(notes, "field:note")),
        tool_call("mobile", action="type", text="héllo\twörld"),  # refused, fed back
        tool_call("mobile", action="type", text="héllo"),
        tool_call("mobile", action="terminate", status="success"),
    ], tmp_path)
    assert result.status == "success", result.reason
    assert phone.state()["fields"]["note"] == "héllo"
    step = read_run(tmp_path / "run").steps[2]
    assert "holds a tab" in step.attempts[0].error and step.action == TypeText(text="héllo")
    # Typed directly, the device refuses it too, on the ASCII and the IME path alike.
    for text in ("a\tb", "é\tb"):
        with pytest.raises(DeviceError, match="holds a tab"):
            device.execute(TypeText(text=text))
    assert phone.state()["fields"]["note"] == "héllo"
    device.close()
