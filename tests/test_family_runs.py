"""Whole runs in other families' formats: a scripted UI-TARS-1.5 on the real virtual desktop
(Xvfb + the sandbox app, real X input) and a scripted GUI-Owl on the simulated phone (the real
adb server), each landing on the right widgets, with the family's history fed back."""

from __future__ import annotations

import subprocess
import sys

from PIL import Image

from environments.tasks.android import ANDROID_TASKS, widget_centre
from qvl_agent.agent import Agent, AgentConfig
from qvl_agent.devices.android import AndroidDevice
from qvl_agent.devices.still import StillImageDevice
from qvl_agent.families import get_family
from qvl_agent.geometry import Monitor
from qvl_agent.models.scripted import ScriptedModel
from qvl_agent.trajectory import read_run
from tests.agent_helpers import write_script

UI_TARS = get_family("ui-tars-1.5")
GUI_OWL = get_family("gui-owl")


def test_a_scripted_ui_tars_drives_the_sandbox_desktop(sandbox, tmp_path):
    width, height = sandbox.state()["screen"]
    frame = UI_TARS.frame(Monitor(width=width, height=height))
    assert frame.resized_size != (width, height)  # 1932x1092: the mapping is exercised

    def at(widget):
        return frame.to_model(*sandbox.centre(widget))

    state = sandbox.state()
    block = state["pad"]["block"]
    entry, submit, listbox = at("entry"), at("submit"), at("list")
    start, end = frame.to_model(*block), frame.to_model(block[0] + 60, block[1] + 30)
    script = write_script(
        tmp_path / "ui_tars.jsonl",
        [
            f"Thought: First the name field.\nAction: click(start_box='<|box_start|>({entry[0]},"
            f"{entry[1]})<|box_end|>')",
            "Thought: Type the name.\nAction: type(content='Ada \\'Countess\\' Lovelace')",
            "Thought: Move the block.\nAction: drag("
            f"start_point='<point>{start[0]} {start[1]}</point>', "
            f"end_point='<point>{end[0]} {end[1]}</point>')",
            "Thought: See more of the list.\nAction: "
            f"scroll(start_box='({listbox[0]},{listbox[1]})', direction='down')",
            f"Thought: Submit.\nAction: click(point='<point>{submit[0]} {submit[1]}</point>')",
            "Thought: The form is submitted.\nAction: finished(content='Submitted once')",
        ],
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "qvl_agent",
            "run",
            "Fill in the name, move the block, submit",
            "--device",
            "desktop",
            "--model",
            f"scripted:{script}",
            "--family",
            "ui-tars-1.5",
            "--settle",
            "0.2",
            "--record",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    after = sandbox.settle()
    assert after["entry"] == "Ada 'Countess' Lovelace"
    assert after["clicks"] == {"settings": 0, "submit": 1, "ok": 0}
    drag = after["pad"]["last_drag"]
    assert (
        drag is not None
        and abs(drag["to"][0] - drag["from"][0] - 60) <= 2
        and abs(drag["to"][1] - drag["from"][1] - 30) <= 2
    )
    assert after["list_top"] > 0
    run = read_run(tmp_path / "run")
    assert run.meta.outcome.status == "answered" and run.meta.outcome.answer == "Submitted once"
    assert [s.action.action for s in run.steps] == [
        "left_click",
        "type",
        "drag",
        "scroll",
        "left_click",
        "answer",
    ]
    assert run.steps[0].thought == "First the name field."
    assert "thought: Move the block." in result.stderr


def test_ui_tars_history_sends_the_earlier_screenshots_and_answers(tmp_path):
    answers = [
        f"Thought: step {i}.\nAction: click(start_box='({10 * i},{10 * i})')" for i in range(7)
    ]
    model = ScriptedModel(answers + ["Action: finished()"])
    device = StillImageDevice(Image.new("RGB", (800, 600), "white"))
    Agent(model, device, AgentConfig(family="ui-tars-1.5", settle_seconds=0)).run(
        "Click around", record=tmp_path / "run"
    )
    last = model.prompts[-1]
    # Five screenshots (four earlier, the current one), each earlier one at the model's size;
    # all seven earlier answers, the oldest three without their screenshots.
    assert last.image_count() == 5 and len(last.earlier_images) == 4
    assert all(image.size == (812, 588) for image in last.earlier_images)
    assistant = [m.text for m in last.messages if m.role == "assistant"]
    assert assistant == [
        a.replace(
            f"start_box='({10 * i},{10 * i})'",
            f"start_box='<|box_start|>({10 * i},{10 * i})<|box_end|>'",
        )
        for i, a in enumerate(answers)
    ]
    assert [m.role for m in last.messages[:6]] == [
        "system",
        "user",
        "assistant",
        "assistant",
        "assistant",
        "user",
    ]
    # A server that takes one image: the answers stay, the screenshots go.
    model = ScriptedModel(answers[:3] + ["Action: finished()"])
    Agent(model, device, AgentConfig(family="ui-tars-1.5", history_images=1, settle_seconds=0)).run(
        "Click around", record=tmp_path / "run1"
    )
    assert model.prompts[-1].image_count() == 1 and model.prompts[-1].earlier_images == []


def test_a_scripted_gui_owl_drives_the_phone_with_its_conclusions_as_history(phone, tmp_path):
    state = phone.state()
    settings = {**state, "foreground": "com.android.settings"}
    frame = GUI_OWL.frame(Monitor(width=1080, height=2400))

    def tap(screen_state, widget):
        return list(frame.to_model(*widget_centre(screen_state, widget)))

    def answer(thinking, arguments, conclusion):
        import json

        call = json.dumps({"name": "mobile_use", "arguments": arguments})
        return (
            f"<thinking>\n{thinking}\n</thinking>\n<tool_call>\n{call}\n</tool_call>\n"
            f"<conclusion>\n{conclusion}\n</conclusion>"
        )

    model = ScriptedModel(
        [
            answer(
                "Settings is on the home screen.",
                {"action": "click", "coordinate": tap(state, "app:com.android.settings")},
                'Opened the "Settings" app',
            ),
            answer(
                "The airplane mode switch is off.",
                {"action": "click", "coordinate": tap(settings, "toggle:airplane_mode")},
                "Turned on airplane mode",
            ),
            answer("Airplane mode is on.", {"action": "terminate", "status": "success"}, "Done"),
        ]
    )
    device = AndroidDevice(phone.serial, client=phone.client)
    result = Agent(model, device, AgentConfig(family="gui-owl", settle_seconds=0)).run(
        ANDROID_TASKS["airplane_on"].goal, record=tmp_path / "run"
    )
    assert result.status == "success", result.reason
    assert ANDROID_TASKS["airplane_on"].check(phone.state())
    users = [prompt.messages[1].text for prompt in model.prompts]
    progress = "Task progress (You have done the following operation on the current device): "
    assert f"{progress}." in users[0]
    assert f"{progress}Step 1: Opened the Settings app; ." in users[1]
    assert (
        f"{progress}Step 1: Opened the Settings app; Step 2: Turned on airplane mode; ." in users[2]
    )
    run = read_run(tmp_path / "run")
    assert run.meta.config["family"] == "gui-owl"
    assert [s.summary for s in run.steps] == [
        'Opened the "Settings" app',
        "Turned on airplane mode",
        "Done",
    ]
    assert run.steps[1].thought == "The airplane mode switch is off."
