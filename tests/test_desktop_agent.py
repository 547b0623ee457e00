"""The whole loop on a real virtual desktop: model answer -> parsed action -> X input -> app state."""

import json
import subprocess
import sys

import pytest

from environments.tasks.desktop import DESKTOP_TASKS, OracleModel
from qvl_agent.agent import Agent, AgentConfig
from qvl_agent.devices.desktop import DesktopDevice
from qvl_agent.geometry import Frame, Monitor
from qvl_agent.trajectory import read_run
from tests.agent_helpers import tool_call, write_script
from tests.desktop_fixtures import SCREEN_SIZES

README_MAX = 1280 * 28 * 28
CHECKPOINT_MAX = 12845056


@pytest.mark.parametrize("sandbox", SCREEN_SIZES, indirect=True)
@pytest.mark.parametrize("max_pixels", [README_MAX, CHECKPOINT_MAX])
def test_cli_with_a_scripted_model_clicks_the_submit_button(sandbox, max_pixels, tmp_path):
    width, height = sandbox.state()["screen"]
    frame = Frame.fit(Monitor(width=width, height=height), max_pixels=max_pixels)
    assert frame.resized_size != (width, height)  # the mapping is really exercised
    # What a model sees: the button's centre in the resized screenshot's pixels.
    model_x, model_y = frame.to_model(*sandbox.centre("submit"))
    script = write_script(tmp_path / "script.jsonl", [
        tool_call(action="left_click", coordinate=[model_x, model_y]),
        tool_call(action="terminate", status="success"),
    ])
    result = subprocess.run(
        [sys.executable, "-m", "qvl_agent", "run", "Click the Submit button", "--device", "desktop",
         "--model", f"scripted:{script}", "--max-pixels", str(max_pixels), "--settle", "0.2",
         "--record", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    sandbox.wait_until(lambda s: s["clicks"]["submit"] == 1, what="the Submit click")
    assert sandbox.settle()["clicks"] == {"settings": 0, "submit": 1, "ok": 0}

    step = read_run(tmp_path / "run").steps[0]
    box = sandbox.state()["widgets"]["submit"]
    x, y = step.action.coordinate.screen
    assert box["x"] <= x < box["x"] + box["w"] and box["y"] <= y < box["y"] + box["h"]
    assert f"left_click at ({x}, {y})" in result.stderr


@pytest.mark.parametrize("sandbox", SCREEN_SIZES, indirect=True)
@pytest.mark.parametrize("task_name", sorted(DESKTOP_TASKS))
def test_each_task_is_solved_through_the_loop(sandbox, task_name, tmp_path):
    task = DESKTOP_TASKS[task_name]
    device = DesktopDevice(display=sandbox.display)
    model = OracleModel(task, sandbox.settle)
    try:
        result = Agent(model, device, AgentConfig(max_steps=6, settle_seconds=0.1)).run(
            task.goal, record=tmp_path / "run")
    finally:
        device.close()
    assert result.status == "success", result.reason
    assert task.check(sandbox.settle())
    run = read_run(tmp_path / "run")
    assert run.meta.outcome.status == "success" and run.steps[-1].outcome == "final"


def test_typed_text_with_metacharacters_arrives_exactly(sandbox, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = "héllo 世界 <\"';$(x)>"
    frame = Frame.fit(Monitor(width=1920, height=1080))
    script = [tool_call(action="left_click", coordinate=list(frame.to_model(*sandbox.centre("entry")))),
              tool_call(action="type", text=text), tool_call(action="terminate", status="success")]
    device = DesktopDevice(display=sandbox.display)
    from qvl_agent.models.scripted import ScriptedModel
    result = Agent(ScriptedModel(script), device, AgentConfig(settle_seconds=0.1)).run("Type", record=tmp_path / "run")
    device.close()
    assert result.status == "success"
    assert sandbox.settle()["entry"] == text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "state.json"]  # $(x) ran nothing


def test_tiny_qwen_checkpoint_drives_the_loop_and_its_garbage_stops_the_run(sandbox, tiny_checkpoint, tmp_path):
    """The real transformers path end to end: from_pretrained, preprocessing, generate."""
    before = sandbox.settle()
    result = subprocess.run(
        [sys.executable, "-m", "qvl_agent", "run", "Open the settings dialog and enable dark mode",
         "--device", "desktop", "--model", str(tiny_checkpoint), "--max-pixels", str(README_MAX),
         "--max-new-tokens", "16", "--record", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1, result.stderr
    assert "parse_error" in result.stderr and "Traceback" not in result.stderr

    after = sandbox.settle()
    assert {k: after[k] for k in ("clicks", "entry", "text", "dark_mode", "settings_open")} == \
        {k: before[k] for k in ("clicks", "entry", "text", "dark_mode", "settings_open")}
    run = read_run(tmp_path / "run")
    assert run.meta.outcome.status == "parse_error"
    assert run.meta.model == f"local:{tiny_checkpoint}"
    (step,) = run.steps
    assert step.action is None and step.outcome == "parse_error"
    assert len(step.attempts) == 3 and all(a.error for a in step.attempts)
    assert all(a.prompt_tokens > 1222 and a.generated_tokens >= 1 for a in step.attempts)
    assert step.frame.resized_size == (1316, 728)
    assert json.loads((tmp_path / "run" / "meta.json").read_text())["versions"]["transformers"]


def test_the_time_budget_holds_against_the_longest_scroll_and_a_long_wait(sandbox, tmp_path):
    """The largest scroll the schema admits is quick; a 60 s wait ends when --max-seconds does;
    a scroll of 1e7 (which would take hours of wheel notches) is fed back, never performed."""
    import time

    from PIL import Image

    from qvl_agent.imaging import resize_bicubic
    from qvl_agent.models.scripted import ScriptedModel

    resize_bicubic(Image.new("RGB", (56, 56)), (28, 28))  # torch's first import is not the loop's
    script = [tool_call(action="scroll", pixels=1e7), tool_call(action="scroll", pixels=-10000),
              tool_call(action="wait", time=60)]
    device = DesktopDevice(display=sandbox.display)
    started = time.monotonic()
    try:
        result = Agent(ScriptedModel(script), device, AgentConfig(max_seconds=4, settle_seconds=0)).run(
            "Scroll", record=tmp_path / "run")
    finally:
        device.close()
    assert time.monotonic() - started < 30
    assert result.status == "budget", result.reason
    first, second = read_run(tmp_path / "run").steps
    assert "10000" in first.attempts[0].error and first.action.action == "scroll"  # the second answer
    assert second.action.time == 60 and "time budget ran out" in second.notes[0]
