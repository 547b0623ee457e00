"""The Android path end to end: scripted model -> agent -> AndroidDevice -> adbutils ->
the real adb server -> the simulated phone, with outcomes read from the phone's state."""

import subprocess
import sys

import pytest

from environments.tasks.android import ANDROID_TASKS, widget_centre
from qvl_agent.agent import Agent, AgentConfig
from qvl_agent.devices.android import AndroidDevice
from qvl_agent.geometry import Frame, Monitor
from qvl_agent.models.scripted import ScriptedModel
from qvl_agent.trajectory import read_run
from tests.agent_helpers import tool_call, write_script

FAST = AgentConfig(settle_seconds=0, max_steps=8)
INJECTION = "'\"; touch /sdcard/pwned; echo $(id)"


def model_point(phone_state: dict, widget: str, size=None) -> list[int]:
    """Where a model looking at the phone's screenshot would click on ``widget``."""
    width, height = size or phone_state["screen"]
    frame = Frame.fit(Monitor(width=width, height=height))
    return list(frame.to_model(*widget_centre(phone_state, widget)))


def as_app(state: dict, package: str) -> dict:
    return {**state, "foreground": package}


def run_agent(phone, responses, tmp_path, config=FAST):
    device = AndroidDevice(phone.serial, client=phone.client)
    model = ScriptedModel(responses)
    return Agent(model, device, config).run("task", record=tmp_path / "run"), device


def test_devices_lists_the_phone_with_model_and_screen(phone):
    result = subprocess.run([sys.executable, "-m", "qvl_agent", "devices"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    line = next(l for l in result.stdout.splitlines() if l.startswith(phone.serial))
    assert "device" in line and "QvlSim_Pixel" in line and "1080x2400" in line


def test_a_bad_serial_is_a_clear_error(phone):
    result = subprocess.run([sys.executable, "-m", "qvl_agent", "run", "x", "--device", "android:nope:1",
                             "--model", "scripted:x.jsonl"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "no device 'nope:1'" in result.stderr and phone.serial in result.stderr


def test_cli_turns_on_airplane_mode_through_the_launcher(phone, tmp_path):
    state = phone.state()
    settings = as_app(state, "com.android.settings")
    script = write_script(tmp_path / "s.jsonl", [
        tool_call("mobile", action="click", coordinate=model_point(state, "app:com.android.settings")),
        tool_call("mobile", action="click", coordinate=model_point(settings, "toggle:airplane_mode")),
        tool_call("mobile", action="terminate", status="success"),
    ])
    result = subprocess.run(
        [sys.executable, "-m", "qvl_agent", "run", ANDROID_TASKS["airplane_on"].goal, "--device", f"android:{phone.serial}",
         "--model", f"scripted:{script}", "--settle", "0", "--record", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert ANDROID_TASKS["airplane_on"].check(phone.state())
    assert [s.action.action for s in read_run(tmp_path / "run").steps] == ["click", "click", "terminate"]


def test_open_by_label_then_tap_a_toggle(phone, tmp_path):
    settings = as_app(phone.state(), "com.android.settings")
    result, _ = run_agent(phone, [
        tool_call("mobile", action="open", text="Settings"),
        tool_call("mobile", action="click", coordinate=model_point(settings, "toggle:wifi")),
        tool_call("mobile", action="terminate", status="success"),
    ], tmp_path)
    assert result.status == "success" and ANDROID_TASKS["wifi_on"].check(phone.state())


def _notes_then_type(phone, text):
    notes = as_app(phone.state(), "com.example.notes")
    return [tool_call("mobile", action="open", text="Notes"),
            tool_call("mobile", action="click", coordinate=model_point(notes, "field:note")),
            tool_call("mobile", action="type", text=text),
            tool_call("mobile", action="terminate", status="success")]


def test_shell_metacharacters_reach_the_field_verbatim_and_run_nothing(phone, tmp_path):
    result, _ = run_agent(phone, _notes_then_type(phone, INJECTION), tmp_path)
    assert result.status == "success", result.reason
    state = phone.state()
    assert state["fields"]["note"] == INJECTION
    assert state["files"] == []
    assert not any(c.startswith(("touch", "id")) for c in state["commands"])


@pytest.mark.parametrize("phone", [{"adbkeyboard": True}], indirect=True)
def test_unicode_goes_through_adbkeyboard_exactly(phone, tmp_path):
    result, device = run_agent(phone, _notes_then_type(phone, "héllo 世界"), tmp_path)
    assert result.status == "success", result.reason
    state = phone.state()
    assert state["fields"]["note"] == "héllo 世界" and state["ime"] == "com.android.adbkeyboard/.AdbIME"
    device.close()  # the user's keyboard comes back
    assert phone.state()["ime"] == "com.android.inputmethod.latin/.LatinIME"


def test_unicode_without_adbkeyboard_stops_with_what_to_install(phone, tmp_path):
    result, _ = run_agent(phone, _notes_then_type(phone, "héllo 世界"), tmp_path)
    assert result.status == "device_error" and "ADBKeyboard" in result.reason
    assert phone.state()["fields"]["note"] == ""


def test_a_failed_screencap_is_never_acted_upon(phone, tmp_path):
    phone.control(fail_screencap=10)
    result, _ = run_agent(phone, [tool_call("mobile", action="click", coordinate=[546, 1204])], tmp_path)
    assert result.status == "capture_error" and "nothing was done" in result.reason
    assert not any(e["kind"] == "tap" for e in phone.state()["events"])


def test_stderr_before_the_png_is_survived(phone):
    device = AndroidDevice(phone.serial, client=phone.client)
    device._capture_mode = "png"
    phone.control(screencap_junk=1)
    assert device.screenshot().image.size == (1080, 2400)


def test_raw_and_png_captures_show_the_same_screen(phone):
    device = AndroidDevice(phone.serial, client=phone.client)
    raw = device.screenshot().image
    device._capture_mode = "png"
    assert raw.tobytes() == device.screenshot().image.tobytes()


def test_taps_stay_on_target_in_landscape(phone, tmp_path):
    phone.control(rotation=1)
    phone.client.device(phone.serial).shell("true")  # the phone applies the switch on its next command
    landscape = phone.wait_until(lambda s: s["screen"] == [2400, 1080], what="landscape")
    settings = as_app(landscape, "com.android.settings")
    result, _ = run_agent(phone, [
        tool_call("mobile", action="click", coordinate=model_point(landscape, "app:com.android.settings")),
        tool_call("mobile", action="click", coordinate=model_point(settings, "toggle:bluetooth")),
        tool_call("mobile", action="terminate", status="success"),
    ], tmp_path)
    assert result.status == "success", result.reason
    assert phone.state()["toggles"]["bluetooth"] is True
    assert read_run(tmp_path / "run").steps[0].frame.screen_size == (2400, 1080)


class DropAfterFirstStep(ScriptedModel):
    def __init__(self, responses, phone):
        super().__init__(responses)
        self.phone = phone

    def respond(self, prompt, image):
        if self.calls == 1:  # the phone vanishes while the model thinks about step 2
            self.phone.control(drop=True, refuse_seconds=60)
            self.phone.wait_until(lambda s: any(e["kind"] == "dropped" for e in s["events"]), what="the drop")
        return super().respond(prompt, image)


def test_a_dropped_phone_ends_the_run_cleanly_with_steps_on_disk(phone, tmp_path):
    state = phone.state()
    model = DropAfterFirstStep([tool_call("mobile", action="click", coordinate=model_point(state, "app:com.example.notes")),
                                tool_call("mobile", action="system_button", button="Home"),
                                tool_call("mobile", action="terminate", status="success")], phone)
    device = AndroidDevice(phone.serial, client=phone.client)
    result = Agent(model, device, FAST).run("task", record=tmp_path / "run")
    assert result.status in ("device_error", "capture_error")
    assert phone.serial in result.reason
    run = read_run(tmp_path / "run")
    assert run.meta.outcome.status == result.status
    assert run.steps[0].outcome == "executed" and run.steps[0].action.action == "click"


def test_a_short_outage_is_survived_by_reconnecting(phone, tmp_path):
    class BriefDrop(ScriptedModel):
        def respond(self, prompt, image):
            if self.calls == 1:
                phone.control(drop=True, refuse_seconds=1.0)
                phone.wait_until(lambda s: any(e["kind"] == "dropped" for e in s["events"]), what="the drop")
            return super().respond(prompt, image)

    state = phone.state()
    model = BriefDrop([tool_call("mobile", action="click", coordinate=model_point(state, "app:com.android.settings")),
                       tool_call("mobile", action="system_button", button="Home"),
                       tool_call("mobile", action="terminate", status="success")])
    result = Agent(model, AndroidDevice(phone.serial, client=phone.client), FAST).run("task", record=tmp_path / "run")
    assert result.status == "success", result.reason
    assert phone.state()["foreground"] == "com.google.android.apps.nexuslauncher"  # Home did happen, once
    assert sum(1 for e in phone.state()["events"] if e.get("key") == "HOME") == 1


def test_the_first_screenshot_measures_both_captures_and_keeps_the_faster(phone):
    device = AndroidDevice(phone.serial, client=phone.client)
    assert device.screenshot().image.size == (1080, 2400)
    timings = device.capture_timings_ms
    assert set(timings) == {"raw", "png"}
    assert device._capture_mode == min(timings, key=timings.get)
    before = phone.state()["screencaps"]
    device.screenshot()
    assert phone.state()["screencaps"] == before + 1  # later steps capture once


def _solution(task_name: str, state: dict) -> list[str]:
    settings, notes = as_app(state, "com.android.settings"), as_app(state, "com.example.notes")
    return {
        "airplane_on": [tool_call("mobile", action="open", text="Settings"),
                        tool_call("mobile", action="click", coordinate=model_point(settings, "toggle:airplane_mode"))],
        "wifi_on": [tool_call("mobile", action="open", text="Settings"),
                    tool_call("mobile", action="click", coordinate=model_point(settings, "toggle:wifi"))],
        "write_note": [tool_call("mobile", action="click", coordinate=model_point(state, "app:com.example.notes")),
                       tool_call("mobile", action="click", coordinate=model_point(notes, "field:note")),
                       tool_call("mobile", action="type", text="buy milk")],
    }[task_name] + [tool_call("mobile", action="terminate", status="success")]


@pytest.mark.parametrize("task_name", sorted(ANDROID_TASKS))
def test_each_task_is_completed_through_the_real_server(phone, task_name, tmp_path):
    task = ANDROID_TASKS[task_name]
    assert not task.check(phone.state())
    result, _ = run_agent(phone, _solution(task_name, phone.state()), tmp_path)
    assert result.status == "success", result.reason
    assert task.check(phone.state())


def test_swipe_long_press_back_and_keys(phone, tmp_path):
    contacts = as_app(phone.state(), "com.google.android.contacts")
    row = model_point(contacts, "row:2")
    result, _ = run_agent(phone, [
        tool_call("mobile", action="open", text="Contacts"),
        tool_call("mobile", action="swipe", coordinate=[546, 1800], coordinate2=[546, 600]),
        tool_call("mobile", action="long_press", coordinate=row, time=1.5),
        tool_call("mobile", action="key", text="volume_up"),
        tool_call("mobile", action="system_button", button="Back"),
        tool_call("mobile", action="terminate", status="success"),
    ], tmp_path)
    assert result.status == "success", result.reason
    state = phone.state()
    assert state["contacts_offset"] > 0  # the finger moved up: later contacts came into view
    long_press = next(e for e in state["events"] if e["kind"] == "long_press")
    assert long_press["ms"] == 1500
    assert [e["key"] for e in state["events"] if e["kind"] == "key"] == ["VOLUME_UP", "BACK"]
    assert state["foreground"] == "com.google.android.apps.nexuslauncher"


def test_the_time_budget_cuts_a_long_wait_and_bounds_a_long_press(phone, tmp_path):
    """A 1e20 s long press is fed back (never sent to the phone); a 60 s wait ends with the budget."""
    import time

    row = model_point(as_app(phone.state(), "com.google.android.contacts"), "row:2")
    started = time.monotonic()
    result, _ = run_agent(phone, [
        tool_call("mobile", action="long_press", coordinate=row, time=1e20),
        tool_call("mobile", action="wait", time=60),
    ], tmp_path, config=AgentConfig(settle_seconds=0, max_seconds=3))
    assert time.monotonic() - started < 30
    assert result.status == "budget", result.reason
    (step,) = read_run(tmp_path / "run").steps
    assert "less than or equal to 10" in step.attempts[0].error
    assert step.action.action == "wait" and "time budget ran out" in step.notes[0]
    assert not [e for e in phone.state()["events"] if e["kind"] == "long_press"]
