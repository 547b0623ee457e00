"""``qvl-agent replay`` on simulated phones behind the real adb server, and ``qvl-agent ground``."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from environments.android_sim.session import SimulatedPhone
from environments.tasks.android import ANDROID_TASKS
from qvl_agent.actions import LeftClick, Point
from qvl_agent.agent import Agent, AgentConfig
from qvl_agent.devices.android import AndroidDevice
from qvl_agent.geometry import Frame, Monitor
from qvl_agent.models.scripted import ScriptedModel
from qvl_agent.replay import rescale, screen_difference
from tests.agent_helpers import tool_call, write_script
from tests.test_android import as_app, model_point


def qvl(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qvl_agent", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def small_phone(adb_server, tmp_path, monkeypatch):
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(adb_server.port))
    monkeypatch.setenv("ADBUTILS_ADB_PATH", "/bin/false")
    with SimulatedPhone(adb_server, tmp_path / "small.json", size=(720, 1600)) as phone:
        yield phone


def test_a_run_replays_on_a_phone_with_another_screen_size(phone, small_phone, tmp_path):
    state = phone.state()
    model = ScriptedModel([
        tool_call("mobile", action="click", coordinate=model_point(state, "app:com.android.settings")),
        tool_call("mobile", action="click", coordinate=model_point(as_app(state, "com.android.settings"),
                                                                   "toggle:airplane_mode")),
        tool_call("mobile", action="terminate", status="success"),
    ])
    device = AndroidDevice(phone.serial, client=phone.client)
    Agent(model, device, AgentConfig(settle_seconds=0)).run(ANDROID_TASKS["airplane_on"].goal, record=tmp_path / "run")
    assert ANDROID_TASKS["airplane_on"].check(phone.state())
    assert not ANDROID_TASKS["airplane_on"].check(small_phone.state())

    result = qvl("replay", str(tmp_path / "run"), "--device", f"android:{small_phone.serial}", "--settle", "0",
                 "--out", str(tmp_path / "replay.json"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("matched")
    assert ANDROID_TASKS["airplane_on"].check(small_phone.state())  # the taps were scaled to 720x1600
    report = json.loads((tmp_path / "replay.json").read_text())
    assert [s["outcome"] for s in report["steps"]] == ["executed", "executed", "final"]
    assert all(s["difference"] < 0.05 for s in report["steps"])

    # The phone is now in Settings, not on the launcher the run started from: a dry run shows
    # the divergence at step 1 and touches nothing.
    events = len(small_phone.state()["events"])
    again = qvl("replay", str(tmp_path / "run"), "--device", f"android:{small_phone.serial}", "--dry-run",
                "--out", str(tmp_path / "again.json"))
    assert again.returncode == 1 and again.stdout.startswith("diverged")
    steps = json.loads((tmp_path / "again.json").read_text())["steps"]
    assert steps[0]["difference"] > 0.05 and steps[0]["outcome"] == "dry_run"
    assert len(small_phone.state()["events"]) == events


def test_points_are_scaled_between_screens_and_monitors():
    action = LeftClick(coordinate=Point(model=(1, 1), screen=(1920 + 960, 540)))
    recorded = Monitor(left=1920, top=0, width=1920, height=1080)
    moved = rescale(action, recorded, Monitor(width=1366, height=768))
    assert moved.coordinate.screen == (683, 384)


def test_screen_difference_measures_the_changed_share():
    white = Image.new("RGB", (400, 200), "white")
    half = white.copy()
    half.paste((0, 0, 0), (0, 0, 200, 200))
    assert screen_difference(white, white) == 0.0
    assert screen_difference(white, half) == pytest.approx(0.5, abs=0.01)


def test_a_missing_run_is_a_clear_error(tmp_path):
    result = qvl("replay", str(tmp_path / "nothing"), "--device", "image:x.png")
    assert result.returncode == 2 and "meta.json is missing" in result.stderr


# -- ground --------------------------------------------------------------------------------------


def test_ground_prints_the_point_and_box_in_image_pixels_and_draws_it(tmp_path):
    Image.new("RGB", (2560, 1440), "white").save(tmp_path / "screen.png")
    frame = Frame.fit(Monitor(width=2560, height=1440), max_pixels=1280 * 28 * 28)
    x1, y1 = frame.to_model(1000, 500)
    x2, y2 = frame.to_model(1100, 600)
    script = write_script(tmp_path / "a.jsonl", [tool_call(action="left_click", coordinate=[x1, y1, x2, y2])])
    result = qvl("ground", str(tmp_path / "screen.png"), "the export button", "--model", f"scripted:{script}",
                 "--max-pixels", str(1280 * 28 * 28), "--save", str(tmp_path / "marked.png"))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["point"] == pytest.approx([1050, 550], abs=2)
    assert out["box"] == pytest.approx([1000, 500, 1100, 600], abs=2)
    assert out["resized"] == list(frame.resized_size) and out["size"] == [2560, 1440]
    marked = np.asarray(Image.open(tmp_path / "marked.png").convert("RGB")).astype(int)
    ys, xs = np.nonzero((marked[..., 0] > 200) & (marked[..., 2] > 200) & (marked[..., 1] < 60))
    assert xs.mean() == pytest.approx(1050, abs=3) and ys.mean() == pytest.approx(550, abs=3)


def test_ground_says_why_an_answer_has_no_point(tmp_path):
    Image.new("RGB", (800, 600), "white").save(tmp_path / "screen.png")
    script = write_script(tmp_path / "a.jsonl", ["It is at the top."])
    result = qvl("ground", str(tmp_path / "screen.png"), "the title", "--model", f"scripted:{script}")
    assert result.returncode == 1 and "no tool call found" in json.loads(result.stdout)["error"]
    missing = qvl("ground", str(tmp_path / "nope.png"), "x", "--model", f"scripted:{script}")
    assert missing.returncode == 2 and "cannot read image" in missing.stderr
