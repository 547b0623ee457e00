"""Every family's rendered prompt is byte-equal to what its published source produces.

Each golden file in tests/golden was written by the transcribed source code
(tests/reference_prompts.py) and is checked two ways: the transcription still produces it,
and qvl-agent's family produces it too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qvl_agent.actions import Click, LeftClick, Point, TypeText
from qvl_agent.families import Turn, get_family
from qvl_agent.geometry import Monitor
from qvl_agent.prompts import template
from tests import reference_prompts as ref

GOLDEN = Path(__file__).parent / "golden"
DESKTOP = Monitor(width=1920, height=1080)
PHONE = Monitor(width=1080, height=2400)
README_MAX = 1280 * 28 * 28

# Earlier UI-TARS answers as decoded (the <|box_start|> tokens are special and gone), in the
# forms the model writes.
UI_TARS_ANSWERS = [
    "Thought: The settings button is at the top right.\nAction: click(start_box='(1780,62)')",
    "Thought: A dialog opened.\nAction: click(point='<point>880 430</point>')",
    "Thought: I need the name field.\nAction: click(start_box='(960,512)')",
    "Thought: Type the name.\nAction: type(content='Ada\\n')",
    "Thought: Scroll to see more.\nAction: scroll(start_box='(966, 700)', direction='down')",
    "Thought: Save it.\nAction: hotkey(key='ctrl s')",
]
GUI_OWL_CONCLUSIONS = ['Opened the "Settings" app', "Tapped the Network &\ninternet entry"]
OPEN_FILE_MANAGER = (
    '{"name": "mobile_use", "arguments": {"action": "open", "text": "File Manager"}}'
)
GOAL = "Open the settings dialog and enable dark mode"
PHONE_GOAL = "Turn on airplane mode"


def _frame(family: str, monitor: Monitor, max_pixels: int | None = None):
    return get_family(family).frame(monitor, max_pixels=max_pixels)


def _ui_tars_turns(count: int) -> list[Turn]:
    click = LeftClick(coordinate=Point(model=(1, 2), screen=(1, 2)))
    return [
        Turn(action=click, response=answer, image=f"screenshot {i}")
        for i, answer in enumerate(UI_TARS_ANSWERS[:count])
    ]


def _ours(family: str, space: str, monitor: Monitor, goal: str, turns=(), max_pixels=None):
    frame = _frame(family, monitor, max_pixels)
    return get_family(family).prompt(
        goal, space, frame, list(turns), get_family(family).history_images
    )


def _ui_tars_reference(template_text, goal, answers, monitor=DESKTOP):
    return ref.render_chat(ref.ui_tars_messages(template_text, goal, answers)[0])


# golden file -> (the sources' rendering, qvl-agent's rendering)
CASES = {
    "computer_use_1920x1080_max1003520.txt": (
        lambda: ref.render_chat(ref.qwen_computer_use_messages(GOAL, 1316, 728)),
        lambda: _ours("qwen2.5-vl", "computer", DESKTOP, GOAL, max_pixels=README_MAX).chat_text(),
    ),
    "mobile_use_1080x2400.txt": (
        lambda: ref.render_chat(
            ref.qwen_mobile_use_messages(
                "Open the file manager app and view the au_uu_SzH3yR2.mp3 file in MUSIC Folder",
                [OPEN_FILE_MANAGER],
                1092,
                2408,
            )
        ),
        lambda: (
            get_family("qwen2.5-vl")
            .prompt(
                "Open the file manager app and view the au_uu_SzH3yR2.mp3 file in MUSIC Folder",
                "mobile",
                _frame("qwen2.5-vl", PHONE),
                [
                    Turn(
                        action=__import__("qvl_agent.actions", fromlist=["Open"]).Open(
                            text="File Manager"
                        )
                    )
                ],
                1,
            )
            .chat_text()
        ),
    ),
    "ui_tars_computer_1920x1080.txt": (
        lambda: _ui_tars_reference(ref.COMPUTER_USE_DOUBAO, GOAL, []),
        lambda: _ours("ui-tars-1.5", "computer", DESKTOP, GOAL).chat_text(),
    ),
    "ui_tars_computer_1920x1080_6_steps.txt": (
        lambda: _ui_tars_reference(ref.COMPUTER_USE_DOUBAO, GOAL, UI_TARS_ANSWERS),
        lambda: _ours("ui-tars-1.5", "computer", DESKTOP, GOAL, _ui_tars_turns(6)).chat_text(),
    ),
    "ui_tars_mobile_1080x2400_1_step.txt": (
        lambda: _ui_tars_reference(ref.MOBILE_USE_DOUBAO, PHONE_GOAL, UI_TARS_ANSWERS[:1]),
        lambda: _ours("ui-tars-1.5", "mobile", PHONE, PHONE_GOAL, _ui_tars_turns(1)).chat_text(),
    ),
    "ui_tars_grounding.txt": (
        lambda: ref.render_chat(
            [
                {
                    "role": "system",
                    "content": [{"type": "text", "text": "You are a helpful assistant."}],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "text",
                            "text": ref.GROUNDING_DOUBAO.format(instruction="the Export button"),
                        },
                        {"type": "image"},
                    ],
                },
            ]
        ),
        lambda: (
            get_family("ui-tars-1.5")
            .ground.prompt("the Export button", _frame("ui-tars-1.5", DESKTOP))
            .chat_text()
        ),
    ),
    "gui_owl_mobile_1080x2400_2_steps.txt": (
        lambda: ref.render_chat(
            ref.gui_owl_mobile_messages(
                PHONE_GOAL,
                [c.replace("\n", "").replace('"', "") for c in GUI_OWL_CONCLUSIONS],
                1092,
                2408,
            )
        ),
        lambda: _ours(
            "gui-owl",
            "mobile",
            PHONE,
            PHONE_GOAL,
            [
                Turn(action=Click(coordinate=Point(model=(5, 5))), summary=c)
                for c in GUI_OWL_CONCLUSIONS
            ],
        ).chat_text(),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_prompt_is_what_the_source_produces_and_what_we_render(name):
    golden = (GOLDEN / name).read_text(encoding="utf-8")
    reference, ours = CASES[name]
    assert reference() == golden
    assert ours() == golden


def test_ui_tars_history_keeps_five_screenshots_and_every_answer():
    frame = _frame("ui-tars-1.5", DESKTOP)
    prompt = get_family("ui-tars-1.5").prompt(GOAL, "computer", frame, _ui_tars_turns(6), 5)
    # The two oldest answers stay, without their screenshots; the last four have theirs.
    assert prompt.earlier_images == [f"screenshot {i}" for i in range(2, 6)]
    assert (
        prompt.image_count()
        == 5
        == ref.ui_tars_messages(ref.COMPUTER_USE_DOUBAO, GOAL, UI_TARS_ANSWERS)[1]
    )
    assert prompt.images("now") == [*prompt.earlier_images, "now"]
    assert [m.role for m in prompt.messages[2:5]] == ["assistant", "assistant", "user"]
    # The box tokens the decoder dropped are back, as the model wrote them.
    assert "Action: click(start_box='<|box_start|>(1780,62)<|box_end|>')" in prompt.chat_text()
    # One screenshot allowed (a server taking one image): the answers stay, as text.
    single = get_family("ui-tars-1.5").prompt(GOAL, "computer", frame, _ui_tars_turns(6), 1)
    assert single.image_count() == 1 and single.earlier_images == []
    assert sum(m.role == "assistant" for m in single.messages) == 6


def test_ui_tars_templates_are_the_published_strings():
    filled = (
        template("ui-tars-1.5/computer.txt")
        .replace("{language}", "English")
        .replace("{instruction}", "X")
    )
    assert filled == ref.COMPUTER_USE_DOUBAO.format(language="English", instruction="X")
    assert template("ui-tars-1.5/mobile.txt") == ref.MOBILE_USE_DOUBAO
    assert template("ui-tars-1.5/grounding.txt") == ref.GROUNDING_DOUBAO


def test_gui_owl_system_turn_is_the_tool_without_the_v0_0_15_fields():
    prompt = _ours("gui-owl", "mobile", PHONE, PHONE_GOAL)
    tool = json.loads(prompt.messages[0].text.split("<tools>\n")[1].split("\n</tools>")[0])
    assert list(tool["function"]) == ["name", "description", "parameters"]
    assert "The screen's resolution is 1092x2408." in tool["function"]["description"]
    # GUI-Owl's schema is the Qwen cookbook's mobile_use, action for action.
    assert tool["function"]["parameters"] == ref.MOBILE_USE_PARAMETERS


def test_computer_use_with_history_takes_the_mobile_cookbook_wording():
    frame = _frame("qwen2.5-vl", DESKTOP, README_MAX)
    typed = TypeText(text="Ada")
    prompt = get_family("qwen2.5-vl").prompt(GOAL, "computer", frame, [Turn(action=typed)], 1)
    assert prompt.messages[1].text == (
        f"The user query:  {GOAL}\nTask progress (You have done the following operation on the "
        'current device): Step 1: {"name": "computer_use", "arguments": {"action": "type", '
        '"text": "Ada"}}; '
    )
