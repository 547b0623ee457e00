"""Real model outputs -> typed actions; unusable ones -> errors the model can act on."""

import pytest

from qvl_agent.actions import (
    Answer, Click, Key, LeftClick, LeftClickDrag, LongPress, Open, Scroll, Swipe, SystemButton,
    Terminate, TypeText, Wait,
)
from qvl_agent.geometry import Frame, Monitor
from qvl_agent.parsing import ActionParseError, parse

DESKTOP = Frame.fit(Monitor(width=1920, height=1080), max_pixels=1280 * 28 * 28)  # 1316x728
PHONE = Frame.fit(Monitor(width=1080, height=2400))  # 1092x2408


def computer(arguments: str) -> str:
    return f'<tool_call>\n{{"name": "computer_use", "arguments": {arguments}}}\n</tool_call>'


def test_the_cookbook_answer_resolves_to_screen_pixels():
    parsed = parse(computer('{"action": "left_click", "coordinate": [658, 364]}'), DESKTOP, "computer")
    assert parsed.action == LeftClick(coordinate={"model": (658, 364), "screen": (960, 540)})
    assert parsed.notes == []


@pytest.mark.parametrize(
    "text",
    [
        # prose around the call, no closing tag
        'I need to click the button.\n<tool_call>\n{"name": "computer_use", "arguments": '
        '{"action": "left_click", "coordinate": [658, 364]}}',
        # a code fence instead of tags
        '```json\n{"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [658, 364]}}\n```',
        # single quotes and trailing commas
        "<tool_call>{'name': 'computer_use', 'arguments': {'action': 'left_click', 'coordinate': [658, 364],},}</tool_call>",
        # numbers as strings
        computer('{"action": "left_click", "coordinate": ["658", "364"]}'),
        # a coordinate written as a string
        computer('{"action": "left_click", "coordinate": "(658, 364)"}'),
        # a box where a point belongs: its centre
        computer('{"action": "left_click", "coordinate": [600, 300, 716, 428]}'),
        # a bare arguments object
        '{"action": "left_click", "coordinate": [658, 364]}',
        # OpenAI-style arguments as a JSON string
        computer('"{\\"action\\": \\"left_click\\", \\"coordinate\\": [658, 364]}"'),
    ],
)
def test_tolerated_forms_all_click_the_same_pixel(text):
    action = parse(text, DESKTOP, "computer").action
    assert isinstance(action, LeftClick)
    assert action.coordinate.screen == (960, 540)


def test_several_calls_use_the_first_and_say_so():
    text = computer('{"action": "key", "keys": ["ctrl", "s"]}') + computer('{"action": "wait", "time": 2}')
    parsed = parse(text, DESKTOP, "computer")
    assert parsed.action == Key(keys=["ctrl", "s"])
    assert "2 tool calls" in parsed.notes[0]


def test_a_box_is_noted():
    parsed = parse(computer('{"action": "left_click", "coordinate": [10, 20, 30, 40]}'), DESKTOP, "computer")
    assert parsed.action.coordinate.model == (20, 30)
    assert "centre" in parsed.notes[0]


def test_unicode_text_is_kept_exactly():
    text = computer('{"action": "type", "text": "héllo 世界 <\\"\';$(x)>\\nnext"}')
    assert parse(text, DESKTOP, "computer").action == TypeText(text="héllo 世界 <\"';$(x)>\nnext")


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"action": "key", "keys": "ctrl+c"}', Key(keys=["ctrl", "c"])),
        ('{"action": "scroll", "pixels": "-300"}', Scroll(pixels=-300)),
        ('{"action": "wait", "time": 2}', Wait(time=2)),
        ('{"action": "terminate", "status": "Success"}', Terminate(status="success")),
        ('{"action": "answer", "text": "42"}', Answer(text="42")),
    ],
)
def test_computer_actions(arguments, expected):
    assert parse(computer(arguments), DESKTOP, "computer").action == expected


def test_drag_resolves_its_end_point():
    action = parse(computer('{"action": "left_click_drag", "coordinate": [1316, 728]}'), DESKTOP, "computer").action
    assert isinstance(action, LeftClickDrag)
    assert action.coordinate.screen == (1919, 1079)


def mobile(arguments: str) -> str:
    return f'<tool_call>\n{{"name": "mobile_use", "arguments": {arguments}}}\n</tool_call>'


@pytest.mark.parametrize(
    ("arguments", "expected_type"),
    [
        ('{"action": "click", "coordinate": [935, 406]}', Click),
        ('{"action": "long_press", "coordinate": [935, 406], "time": 2}', LongPress),
        ('{"action": "swipe", "coordinate": [546, 1800], "coordinate2": [546, 600]}', Swipe),
        ('{"action": "system_button", "button": "Back"}', SystemButton),
        ('{"action": "open", "text": "Settings"}', Open),
        ('{"action": "type", "text": "hi"}', TypeText),
    ],
)
def test_mobile_actions(arguments, expected_type):
    assert isinstance(parse(mobile(arguments), PHONE, "mobile").action, expected_type)


def test_mobile_key_text_becomes_a_key():
    assert parse(mobile('{"action": "key", "text": "volume_up"}'), PHONE, "mobile").action == Key(keys=["volume_up"])


def test_swipe_keeps_both_points():
    action = parse(mobile('{"action": "swipe", "coordinate": [546, 1804], "coordinate2": [546, 602]}'), PHONE, "mobile").action
    assert action.coordinate.screen == (540, 1798)
    assert action.coordinate2.screen == (540, 600)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("I think the task is done.", "no tool call"),
        (computer('{"action": "fly_to", "coordinate": [1, 2]}'), 'unknown action "fly_to"'),
        (computer('{"action": "click", "coordinate": [1, 2]}'), 'unknown action "click" for computer_use'),
        (computer('{"action": "mouse_move"}'), 'needs "coordinate"'),
        (computer('{"action": "terminate"}'), 'needs "status"'),
        (computer('{"action": "left_click", "coordinate": ["left", "top"]}'), "must be a number"),
        (computer('{"action": "left_click", "coordinate": [1, 2, 3]}'), "two numbers"),
        (computer('{"action": "left_click", "coordinate": [2000, 300]}'), "outside the screenshot"),
        (computer('{"action": "left_click", "coordinate": [100, 300}'), "not valid JSON"),
        ('<tool_call>{"name": "browser", "arguments": {"action": "left_click"}}</tool_call>', 'unknown tool "browser"'),
        (computer('{"coordinate": [1, 2]}'), 'no "action"'),
        (computer('{"action": "wait", "time": -1}'), "time"),
    ],
)
def test_unusable_answers_raise_a_message_for_the_model(text, message):
    with pytest.raises(ActionParseError, match=message.replace("(", r"\(")):
        parse(text, DESKTOP, "computer")


def test_extra_arguments_are_ignored_with_a_note():
    parsed = parse(computer('{"action": "type", "text": "a", "coordinate": [1, 2]}'), DESKTOP, "computer")
    assert parsed.action == TypeText(text="a")
    assert "coordinate" in parsed.notes[0]


def test_text_that_looks_like_code_is_data():
    # The parser never evaluates anything: a "call" that is code is just not JSON.
    with pytest.raises(ActionParseError):
        parse('<tool_call>__import__("os").system("touch /tmp/pwned")</tool_call>', DESKTOP, "computer")
