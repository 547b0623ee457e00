"""Each family's real-looking answers -> typed actions on the screen; malformed ones -> the
same action with a note, or an ActionParseError written for the model to act on."""

from __future__ import annotations

import pytest

from qvl_agent.actions import (
    Answer,
    Click,
    DoubleClick,
    Drag,
    Key,
    LeftClick,
    LongPress,
    MouseMove,
    Open,
    RightClick,
    Scroll,
    Swipe,
    SystemButton,
    Terminate,
    TypeText,
    Wait,
)
from qvl_agent.families import get_family
from qvl_agent.families.ui_tars import render
from qvl_agent.geometry import Monitor
from qvl_agent.parsing import ActionParseError

UI_TARS = get_family("ui-tars-1.5")
GUI_OWL = get_family("gui-owl")
QWEN = get_family("qwen2.5-vl")
# UI-TARS sees a 1920x1080 screen at 1932x1092: (966, 546) is the screen's (960, 540).
DESKTOP = UI_TARS.frame(Monitor(width=1920, height=1080))
PHONE = UI_TARS.frame(Monitor(width=1080, height=2400))  # 1092x2408
CENTRE = (960, 540)


def ui_tars(text: str, space: str = "computer"):
    return UI_TARS.parse(text, DESKTOP if space == "computer" else PHONE, space)


# -- UI-TARS-1.5: every form of a click lands on the same pixel ------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Thought: The OK button is in the middle.\nAction: click(start_box='(966,546)')",  # README
        "Thought: x\nAction: click(start_box='<|box_start|>(966,546)<|box_end|>')",  # OSWorld
        "Thought: x\nAction: click(point='<point>966 546</point>')",  # prompt.py's own form
        "Thought: x\nAction: click(start_point='<point>966 546</point>')",
        "Thought: x\nAction: left_single(start_box='(966, 546)')",
        "Thought: x\nAction: click(start_box='[966, 546, 966, 546]')",  # UI-TARS-desktop's box form
        "Thought: x\nAction: click(start_box='(966.0,546.0)')",
        # malformed variants models produce
        "Thought: x\nAction: click(start_box=(966,546))",  # missing quotes
        "Thought: x\nAction:   click( start_box = '(966,546)' )",  # extra spaces
        "Thought: x\nAction: click(start_box='(966,546)'",  # cut off before ')'
        "Thought: x\nAction: click('(966,546)')",  # a positional value
        "Action: click(start_box='(966,546)')",  # no thought (GROUNDING prompt)
        "click(start_box='(966,546)')",  # no "Action:" label
        'Thought: x\nAction: click(start_box="(966,546)")',  # double quotes
    ],
)
def test_ui_tars_click_forms_land_on_the_same_pixel(text):
    parsed = ui_tars(text)
    assert isinstance(parsed.action, LeftClick)
    assert parsed.action.coordinate.model == (966, 546)
    assert parsed.action.coordinate.screen == CENTRE


def test_ui_tars_box_is_clicked_at_its_centre_and_kept():
    parsed = ui_tars("Thought: the field\nAction: click(start_box='(900,500,1032,592)')")
    assert parsed.action.coordinate.screen == CENTRE
    assert parsed.box == (900, 500, 1032, 592)
    assert "box" in parsed.notes[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Thought: open it\nAction: left_double(point='<point>966 546</point>')",
            DoubleClick(coordinate={"model": (966, 546), "screen": CENTRE}),
        ),
        (
            "Thought: menu\nAction: right_single(start_box='(966,546)')",
            RightClick(coordinate={"model": (966, 546), "screen": CENTRE}),
        ),
        (
            "Thought: hover\nAction: hover(start_box='(966,546)')",
            MouseMove(coordinate={"model": (966, 546), "screen": CENTRE}),
        ),
        (
            "Thought: move the file\nAction: drag(start_box='(0,0)', end_box='(966,546)')",
            Drag(
                coordinate={"model": (0, 0), "screen": (0, 0)},
                coordinate2={"model": (966, 546), "screen": CENTRE},
            ),
        ),
        (
            "Thought: move\nAction: drag(start_point='<point>0 0</point>', "
            "end_point='<point>966 546</point>')",
            Drag(
                coordinate={"model": (0, 0), "screen": (0, 0)},
                coordinate2={"model": (966, 546), "screen": CENTRE},
            ),
        ),
        ("Thought: copy\nAction: hotkey(key='ctrl c')", Key(keys=["ctrl", "c"])),
        ("Thought: save\nAction: hotkey(key='ctrl shift s')", Key(keys=["ctrl", "shift", "s"])),
        ("Thought: enter\nAction: press(key='enter')", Key(keys=["enter"])),
        ("Thought: type\nAction: type(content='hello world')", TypeText(text="hello world")),
        # the prompt's escapes, an unescaped quote, a submitting newline, unicode
        (
            "Thought: t\nAction: type(content='It\\'s \\\"quoted\\\"\\n')",
            TypeText(text='It\'s "quoted"\n'),
        ),
        ("Thought: t\nAction: type(content='it's mine')", TypeText(text="it's mine")),
        ("Thought: t\nAction: type(content='héllo 世界')", TypeText(text="héllo 世界")),
        (
            "Thought: t\nAction: type(content='line one\nline two')",
            TypeText(text="line one\nline two"),
        ),
        (
            "Thought: more\nAction: scroll(start_box='(966,546)', direction='down')",
            Scroll(pixels=-250, coordinate={"model": (966, 546), "screen": CENTRE}),
        ),
        (
            "Thought: back up\nAction: scroll(point='<point>966 546</point>', direction='up')",
            Scroll(pixels=250, coordinate={"model": (966, 546), "screen": CENTRE}),
        ),
        ("Thought: anywhere\nAction: scroll(direction='down')", Scroll(pixels=-250)),
        ("Thought: loading\nAction: wait()", Wait(time=5)),
        ("Thought: done\nAction: finished()", Terminate(status="success")),
        (
            "Thought: done\nAction: finished(content='The total is 42.')",
            Answer(text="The total is 42."),
        ),
        ("Thought: stuck\nAction: call_user()", Terminate(status="failure")),
    ],
)
def test_ui_tars_desktop_actions(text, expected):
    assert ui_tars(text).action == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Thought: tap\nAction: click(point='<point>546 1204</point>')",
            Click(coordinate={"model": (546, 1204), "screen": (540, 1200)}),
        ),
        (
            "Thought: hold\nAction: long_press(start_box='(546,1204)')",
            LongPress(coordinate={"model": (546, 1204), "screen": (540, 1200)}),
        ),
        ("Thought: open\nAction: open_app(app_name='Settings')", Open(text="Settings")),
        ("Thought: home\nAction: press_home()", SystemButton(button="Home")),
        ("Thought: back\nAction: press_back()", SystemButton(button="Back")),
        ("Thought: type\nAction: type(content='buy milk\\n')", TypeText(text="buy milk\n")),
        (
            "Thought: fling\nAction: drag(start_point='<point>546 1806</point>', "
            "end_point='<point>546 602</point>')",
            Swipe(
                coordinate={"model": (546, 1806), "screen": (540, 1800)},
                coordinate2={"model": (546, 602), "screen": (540, 600)},
            ),
        ),
        # scroll: the finger moves 200 screen pixels from the point, the way named
        (
            "Thought: more\nAction: scroll(point='<point>546 1204</point>', direction='up')",
            Swipe(
                coordinate={"model": (546, 1204), "screen": (540, 1200)},
                coordinate2={"model": (546, 1003), "screen": (540, 1000)},
            ),
        ),
        (
            "Thought: more\nAction: scroll(direction='left')",
            Swipe(
                coordinate={"model": (546, 1204), "screen": (540, 1200)},
                coordinate2={"model": (344, 1204), "screen": (340, 1200)},
            ),
        ),
        ("Thought: done\nAction: finished(content='3 contacts')", Answer(text="3 contacts")),
    ],
)
def test_ui_tars_phone_actions(text, expected):
    assert ui_tars(text, "mobile").action == expected


def test_ui_tars_thought_is_kept_and_several_actions_say_so():
    parsed = ui_tars(
        "Thought: First the field, then the text.\nAction: click(start_box='(966,546)')"
        "\n\ntype(content='abc')"
    )
    assert parsed.thought == "First the field, then the text."
    assert isinstance(parsed.action, LeftClick)
    assert parsed.notes == ["the answer held 2 actions; only the first was used"]
    # A second "Action:" label separates actions too; prose "Action:" inside a thought does not
    # count as the label.
    parsed = ui_tars(
        "Thought: plan. Action: click the box\nAction: hotkey(key='esc')\nAction: wait()"
    )
    assert parsed.thought == "plan. Action: click the box" and parsed.action == Key(keys=["esc"])


@pytest.mark.parametrize(
    ("text", "space", "message"),
    [
        ("I think I should click the OK button.", "computer", "no 'Action: ...' line"),
        ("Thought: hmm\nAction: I would click OK", "computer", "expected an action like click"),
        (
            "Thought: x\nAction: frobnicate(start_box='(1,2)')",
            "computer",
            "unknown action frobnicate",
        ),
        ("Thought: x\nAction: open_app(app_name='Files')", "computer", "unknown action open_app"),
        (
            "Thought: x\nAction: left_double(start_box='(1,2)')",
            "mobile",
            "unknown action left_double",
        ),
        ("Thought: x\nAction: click()", "computer", "click needs start_box"),
        ("Thought: x\nAction: click(start_box='here')", "computer", "must be a point like"),
        ("Thought: x\nAction: click(start_box='(1,2,3)')", "computer", "two numbers"),
        ("Thought: x\nAction: click(start_box='(5000,546)')", "computer", "outside the screenshot"),
        ("Thought: x\nAction: drag(start_box='(1,2)')", "computer", "end_box"),
        (
            "Thought: x\nAction: scroll(start_box='(1,2)', direction='sideways')",
            "computer",
            "direction",
        ),
        (
            "Thought: x\nAction: scroll(start_box='(1,2)', direction='left')",
            "computer",
            "up or down",
        ),
        ("Thought: x\nAction: hotkey(key='')", "computer", "needs key="),
        ("Thought: x\nAction: click((1,2), (3,4))", "computer", "second value without a name"),
    ],
)
def test_ui_tars_unusable_answers_say_what_to_change(text, space, message):
    with pytest.raises(ActionParseError, match=message):
        ui_tars(text, space)


def test_the_retry_turn_shows_the_family_format():
    feedback = UI_TARS.feedback("no 'Action: ...' line in the answer", "computer")
    assert feedback.startswith("Your last answer could not be used: no 'Action: ...' line")
    assert "Thought: ...\nAction: ...\n" in feedback and "<point>" in feedback


@pytest.mark.parametrize(
    "action",
    [
        LeftClick(coordinate={"model": (966, 546), "screen": CENTRE}),
        DoubleClick(coordinate={"model": (10, 20), "screen": (10, 20)}),
        RightClick(coordinate={"model": (10, 20), "screen": (10, 20)}),
        Drag(
            coordinate={"model": (1, 2), "screen": (1, 2)},
            coordinate2={"model": (3, 4), "screen": (3, 4)},
        ),
        Key(keys=["ctrl", "c"]),
        TypeText(text='It\'s "x"\nsecond \\ line'),
        Scroll(pixels=-250, coordinate={"model": (966, 546), "screen": CENTRE}),
        Wait(time=5),
        Answer(text="done: 'yes'"),
        Terminate(status="success"),
        Terminate(status="failure"),
    ],
)
def test_rendered_history_actions_read_back_as_themselves(action):
    """Ground-truth steps are written into UI-TARS's history in its own grammar."""
    assert ui_tars(f"Action: {render(action)}").action == action


# -- GUI-Owl ----------------------------------------------------------------------------------

# The cookbook's saved answer (end2end_usage.ipynb), in the phone's mobile_use.
OWL = (
    "<thinking>\nObservation: The home screen shows the Settings icon.\nThought: To reach "
    "airplane mode I open Settings.\nAction: Tap the Settings icon.\n\n</thinking>\n"
    '<tool_call>\n{"name": "mobile_use", "arguments": {"action": "click", "coordinate": '
    '[546, 1204]}}\n</tool_call>\n<conclusion>\nOpened the "Settings" app\n</conclusion>'
)


def owl(text: str):
    return GUI_OWL.parse(text, GUI_OWL.frame(Monitor(width=1080, height=2400)), "mobile")


def test_gui_owl_answer_gives_action_thinking_and_conclusion():
    parsed = owl(OWL)
    assert parsed.action == Click(coordinate={"model": (546, 1204), "screen": (540, 1200)})
    assert parsed.thought.startswith("Observation: The home screen") and parsed.thought.endswith(
        "Tap the Settings icon."
    )
    assert parsed.summary == 'Opened the "Settings" app'
    assert parsed.notes == []


@pytest.mark.parametrize(
    ("text", "expected", "summary"),
    [
        # Qwen3-style <think> tags, no conclusion
        (
            '<think>settings</think>\n<tool_call>\n{"name": "mobile_use", "arguments": {"action": '
            '"system_button", "button": "Back"}}\n</tool_call>',
            SystemButton(button="Back"),
            None,
        ),
        # "tap", as GUI-Owl sometimes says (its AndroidWorld agent reads it as click)
        (
            '<thinking>x</thinking><tool_call>{"name": "mobile_use", "arguments": '
            '{"action": "tap", "coordinate": [546, 1204]}}</tool_call>'
            "<conclusion>Tapped</conclusion>",
            Click(coordinate={"model": (546, 1204), "screen": (540, 1200)}),
            "Tapped",
        ),
        # a missing </tool_call> and an unclosed conclusion cut off by the token budget
        (
            '<thinking>t</thinking>\n<tool_call>\n{"name": "mobile_use", "arguments": '
            '{"action": "type", "text": "buy milk"}}\n<conclusion>\nTyped buy milk',
            TypeText(text="buy milk"),
            "Typed buy milk",
        ),
        (
            '<thinking>q</thinking>\n<tool_call>\n{"name": "mobile_use", "arguments": {"action": '
            '"answer", "text": "42"}}\n</tool_call>\n<conclusion>\nAnswered\n</conclusion>',
            Answer(text="42"),
            "Answered",
        ),
    ],
)
def test_gui_owl_variants(text, expected, summary):
    parsed = owl(text)
    assert parsed.action == expected and parsed.summary == summary


def test_gui_owl_without_a_tool_call_is_fed_back():
    with pytest.raises(ActionParseError, match="no tool call"):
        owl("<thinking>I am not sure what to do.</thinking>\n<conclusion>Nothing</conclusion>")
    with pytest.raises(ActionParseError, match="unknown action"):
        owl('<tool_call>{"name": "mobile_use", "arguments": {"action": "fly"}}</tool_call>')


# -- Qwen2.5-VL: prose before the call is the thought ------------------------------------------


def test_qwen_prose_before_the_call_is_the_thought_and_the_action_is_unchanged():
    frame = QWEN.frame(Monitor(width=1920, height=1080), max_pixels=1280 * 28 * 28)
    text = (
        'The Settings button is at the top right.\n<tool_call>\n{"name": "computer_use", '
        '"arguments": {"action": "left_click", "coordinate": [658, 364]}}\n</tool_call>'
    )
    parsed = QWEN.parse(text, frame, "computer")
    assert parsed.thought == "The Settings button is at the top right."
    assert parsed.action == LeftClick(coordinate={"model": (658, 364), "screen": (960, 540)})
    bare = QWEN.parse(text.split("\n", 1)[1], frame, "computer")
    assert bare.thought is None and bare.action == parsed.action
