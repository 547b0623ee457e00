"""The think-act loop on a still screenshot: what it executes, when it stops, what it records."""

import os
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image

from qvl_agent.actions import LeftClick, TypeText
from qvl_agent.agent import Agent, AgentConfig
from qvl_agent.devices.base import CaptureError, DeviceError
from qvl_agent.devices.still import StillImageDevice
from qvl_agent.models.scripted import ScriptedModel
from qvl_agent.trajectory import STEPS_FILE, read_run
from tests.agent_helpers import tool_call, write_script

FAST = AgentConfig(settle_seconds=0, max_pixels=1280 * 28 * 28)
CLICK = tool_call(action="left_click", coordinate=[658, 364])
DONE = tool_call(action="terminate", status="success")


@pytest.fixture
def screen():
    return StillImageDevice(Image.new("RGB", (1920, 1080), (200, 200, 200)))


def test_a_click_lands_on_the_screen_pixel_and_every_step_is_recorded(screen, tmp_path):
    model = ScriptedModel([CLICK, tool_call(action="type", text="héllo"), DONE])
    result = Agent(model, screen, FAST).run("Click the middle", record=tmp_path / "run")

    assert result.status == "success" and result.steps == 3
    assert screen.performed == [
        LeftClick(coordinate={"model": (658, 364), "screen": (960, 540)}),
        TypeText(text="héllo"),
    ]
    run = read_run(tmp_path / "run")
    assert run.complete and run.meta.outcome.status == "success"
    assert [s.outcome for s in run.steps] == ["executed", "executed", "final"]
    first = run.steps[0]
    assert first.response == CLICK
    assert first.action.coordinate.screen == (960, 540)
    assert first.frame.resized_size == (1316, 728) and first.frame.screen_size == (1920, 1080)
    assert Image.open(tmp_path / "run" / first.screenshot).size == (1920, 1080)
    assert {"capture", "resize", "prompt", "model", "parse", "execute", "total"} <= set(first.timings)
    assert run.meta.config["max_pixels"] == 1280 * 28 * 28
    # History reaches the model as text, in model coordinates.
    assert 'Step 1: {"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [658, 364]}}; ' in model.prompts[1].chat_text()


def test_garbage_answers_stop_the_run_with_nothing_executed(screen, tmp_path):
    model = ScriptedModel(["I am not sure.", "<tool_call>{oops", '{"action": "teleport"}'])
    result = Agent(model, screen, FAST).run("Click", record=tmp_path / "run")

    assert result.status == "parse_error"
    assert "3 answers" in result.reason and "teleport" in result.reason
    assert screen.performed == []
    step = read_run(tmp_path / "run").steps[0]
    assert step.outcome == "parse_error" and step.action is None
    assert [a.response for a in step.attempts] == ["I am not sure.", "<tool_call>{oops", '{"action": "teleport"}']
    assert all(a.error for a in step.attempts)


def test_a_parse_error_is_fed_back_and_a_corrected_answer_is_executed(screen, tmp_path):
    model = ScriptedModel(['<tool_call>{"name": "computer_use", "arguments": {"action": "mouse_move"}}</tool_call>', CLICK, DONE])
    result = Agent(model, screen, FAST).run("Click", record=tmp_path / "run")

    assert result.status == "success"
    assert len(screen.performed) == 1
    assert 'needs "coordinate"' in model.prompts[1].chat_text()
    step = read_run(tmp_path / "run").steps[0]
    assert len(step.attempts) == 2 and step.outcome == "executed"


def test_step_budget(screen, tmp_path):
    result = Agent(ScriptedModel([CLICK] * 5), screen, FAST.model_copy(update={"max_steps": 3})).run(
        "Click forever", record=tmp_path / "run")
    assert result.status == "budget" and result.steps == 3 and len(screen.performed) == 3


def test_time_budget(screen, tmp_path):
    config = FAST.model_copy(update={"max_seconds": 0.2, "settle_seconds": 0.15})
    result = Agent(ScriptedModel([CLICK] * 10), screen, config).run("Click", record=tmp_path / "run")
    assert result.status == "budget" and "time budget" in result.reason
    assert 1 <= result.steps < 10


def test_dry_run_touches_nothing(screen, tmp_path):
    config = FAST.model_copy(update={"dry_run": True})
    result = Agent(ScriptedModel([CLICK, DONE]), screen, config).run("Click", record=tmp_path / "run")
    assert result.status == "success" and screen.performed == []
    assert [s.outcome for s in read_run(tmp_path / "run").steps] == ["dry_run", "final"]


def test_declined_confirmation_stops_before_acting(screen, tmp_path):
    asked = []
    agent = Agent(ScriptedModel([CLICK]), screen, FAST, confirm=lambda action: asked.append(action) or False)
    result = agent.run("Click", record=tmp_path / "run")
    assert result.status == "declined" and screen.performed == [] and len(asked) == 1


class BrokenScreen(StillImageDevice):
    def __init__(self, fail_capture_at=None, fail_action=False):
        super().__init__(Image.new("RGB", (800, 600)))
        self.captures = 0
        self.fail_capture_at = fail_capture_at
        self.fail_action = fail_action

    def screenshot(self):
        self.captures += 1
        if self.captures == self.fail_capture_at:
            raise CaptureError("screencap returned no image")
        return super().screenshot()

    def execute(self, action):
        if self.fail_action:
            raise DeviceError("device offline")
        super().execute(action)


def test_a_failed_screenshot_is_never_acted_on(tmp_path):
    device = BrokenScreen(fail_capture_at=2)
    model = ScriptedModel([tool_call(action="left_click", coordinate=[10, 10])] * 3)
    result = Agent(model, device, FAST).run("Click", record=tmp_path / "run")
    assert result.status == "capture_error" and "nothing was done" in result.reason
    assert len(device.performed) == 1 and model.calls == 1
    assert len(read_run(tmp_path / "run").steps) == 1


def test_a_device_error_ends_the_run_with_the_step_recorded(tmp_path):
    device = BrokenScreen(fail_action=True)
    result = Agent(ScriptedModel([tool_call(action="left_click", coordinate=[10, 10])]), device, FAST).run(
        "Click", record=tmp_path / "run")
    assert result.status == "device_error" and "device offline" in result.reason
    step = read_run(tmp_path / "run").steps[0]
    assert step.outcome == "device_error" and step.error == "device offline"


def test_a_model_that_fails_ends_the_run_cleanly(screen, tmp_path):
    result = Agent(ScriptedModel([CLICK]), screen, FAST).run("Click", record=tmp_path / "run")
    assert result.status == "model_error" and "no response left" in result.reason
    run = read_run(tmp_path / "run")
    assert run.meta.outcome.status == "model_error" and len(run.steps) == 2


def test_the_run_directory_must_be_new(screen, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "something").write_text("x")
    with pytest.raises(FileExistsError):
        Agent(ScriptedModel([DONE]), screen, FAST).run("x", record=tmp_path / "run")


def test_a_run_killed_mid_step_leaves_a_readable_trajectory(tmp_path):
    Image.new("RGB", (1366, 768), "white").save(tmp_path / "screen.png")
    script = write_script(tmp_path / "script.jsonl", [tool_call(action="left_click", coordinate=[100, 100])] * 200)
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "qvl_agent", "run", "Click many times", "--device", f"image:{tmp_path / 'screen.png'}",
         "--model", f"scripted:{script}", "--max-steps", "200", "--settle", "0.05", "--record", str(run_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    steps_file = run_dir / STEPS_FILE
    while time.monotonic() < deadline:
        if steps_file.exists() and steps_file.read_text().count("\n") >= 3:
            break
        assert process.poll() is None, process.stderr.read().decode()
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    run = read_run(run_dir)
    assert not run.complete  # no outcome: the run was killed
    assert len(run.steps) >= 3
    assert [s.index for s in run.steps] == list(range(1, len(run.steps) + 1))
    assert all((run_dir / s.screenshot).is_file() for s in run.steps)


def test_a_torn_last_line_is_ignored(screen, tmp_path):
    Agent(ScriptedModel([CLICK, DONE]), screen, FAST).run("Click", record=tmp_path / "run")
    with open(tmp_path / "run" / STEPS_FILE, "a", encoding="utf-8") as file:
        file.write('{"index": 3, "started_at": 1.0, "screensh')
    run = read_run(tmp_path / "run")
    assert len(run.steps) == 2 and run.skipped_lines == 1
