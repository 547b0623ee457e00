"""The rendered prompt is byte-identical to the format Qwen2.5-VL was trained on."""

import json
from pathlib import Path

from qvl_agent.actions import SPACE_ACTIONS
from qvl_agent.geometry import Frame, Monitor
from qvl_agent.prompts import build_prompt, system_text, user_text

GOLDEN = Path(__file__).parent / "golden"
OPEN_FILE_MANAGER = '{"name": "mobile_use", "arguments": {"action": "open", "text": "File Manager"}}'


def test_mobile_prompt_matches_golden_file():
    # The cookbook's saved example: a 1080x2400 phone, one step of history.
    frame = Frame.fit(Monitor(width=1080, height=2400))
    prompt = build_prompt(
        "Open the file manager app and view the au_uu_SzH3yR2.mp3 file in MUSIC Folder",
        "mobile", frame, [OPEN_FILE_MANAGER],
    )
    assert prompt.chat_text() == (GOLDEN / "mobile_use_1080x2400.txt").read_text(encoding="utf-8")


def test_computer_prompt_matches_golden_file():
    frame = Frame.fit(Monitor(width=1920, height=1080), max_pixels=1280 * 28 * 28)
    prompt = build_prompt("Open the settings dialog and enable dark mode", "computer", frame)
    assert prompt.chat_text() == (
        GOLDEN / "computer_use_1920x1080_max1003520.txt"
    ).read_text(encoding="utf-8")


def test_system_prompt_states_the_resized_size_not_the_screen_size():
    frame = Frame.fit(Monitor(width=1920, height=1080), max_pixels=1280 * 28 * 28)
    text = system_text("computer", frame)
    assert "The screen's resolution is 1316x728." in text
    assert "1920x1080" not in text


def _tool_line(text: str) -> dict:
    return json.loads(text.split("<tools>\n")[1].split("\n</tools>")[0])


def test_tool_json_has_the_v0_0_15_fields_in_order():
    frame = Frame.fit(Monitor(width=1080, height=2400))
    for space, name in (("computer", "computer_use"), ("mobile", "mobile_use")):
        tool = _tool_line(system_text(space, frame))
        assert tool["type"] == "function"
        function = tool["function"]
        assert list(function) == ["name_for_human", "name", "description", "parameters", "args_format"]
        assert function["name_for_human"] == function["name"] == name
        assert function["args_format"] == "Format the arguments as a JSON object."
        enum = function["parameters"]["properties"]["action"]["enum"]
        # Every trained action is one we parse (we also accept "answer").
        assert set(enum) == set(SPACE_ACTIONS[space]) - {"answer"}


def test_history_is_text_with_numbered_steps_and_one_image():
    text = user_text("Do it", [OPEN_FILE_MANAGER, OPEN_FILE_MANAGER])
    assert text.endswith(f"Step 1: {OPEN_FILE_MANAGER}; Step 2: {OPEN_FILE_MANAGER}; ")
    frame = Frame.fit(Monitor(width=800, height=600))
    chat = build_prompt("Do it", "computer", frame, [OPEN_FILE_MANAGER]).chat_text()
    assert chat.count("<|image_pad|>") == 1


def test_goal_with_braces_is_kept_verbatim():
    assert "{history} and {goal}" in user_text("type {history} and {goal}", [])


def test_retry_turn_carries_the_bad_answer_and_the_error():
    frame = Frame.fit(Monitor(width=800, height=600))
    prompt = build_prompt("Do it", "computer", frame).with_retry("nonsense", 'no "action"', "computer")
    chat = prompt.chat_text()
    assert "<|im_start|>assistant\nnonsense<|im_end|>" in chat
    assert 'no "action"' in chat and chat.count("<|image_pad|>") == 1
    assert chat.endswith("<|im_start|>assistant\n")
