"""`qvl-agent run-batch`: a task suite on two simulated phones at once (the real adb server),
the model behind an OpenAI-compatible endpoint that answers like a perfect model."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from environments.android_sim.session import SimulatedPhone
from environments.tasks.android import ANDROID_TASKS
from qvl_agent.batch import BatchError, read_tasks
from qvl_agent.cli import main
from qvl_agent.trajectory import read_run
from tests.agent_helpers import tool_call
from tests.fault_server import FaultServer, completion
from tests.test_android import as_app, model_point

ROOT = Path(__file__).resolve().parent.parent
AIRPLANE, WIFI = ANDROID_TASKS["airplane_on"], ANDROID_TASKS["wifi_on"]
QUESTION = "Which app holds the airplane mode toggle?"
ENDLESS = "Keep pressing Home"


@pytest.fixture
def two_phones(adb_server, tmp_path, monkeypatch):
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(adb_server.port))
    monkeypatch.setenv("ADBUTILS_ADB_PATH", "/bin/false")  # never start a server on 5037
    with (
        SimulatedPhone(adb_server, tmp_path / "a.json") as a,
        SimulatedPhone(adb_server, tmp_path / "b.json") as b,
    ):
        yield {a.serial: a, b.serial: b}


def oracle(phone_state: dict):
    """An endpoint's answer function: the right next action for the goal in the prompt."""
    settings = as_app(phone_state, "com.android.settings")
    mobile = lambda **arguments: tool_call("mobile", **arguments)  # noqa: E731
    scripts = {
        AIRPLANE.goal: [
            mobile(action="open", text="Settings"),
            mobile(action="click", coordinate=model_point(settings, "toggle:airplane_mode")),
            mobile(action="terminate", status="success"),
        ],
        WIFI.goal: [
            mobile(action="open", text="Settings"),
            mobile(action="click", coordinate=model_point(settings, "toggle:wifi")),
            mobile(action="terminate", status="success"),
        ],
        QUESTION: [mobile(action="answer", text="Settings")],
        ENDLESS: [mobile(action="system_button", button="Home")] * 5,
    }

    def respond(request):
        user = request.json()["messages"][1]["content"][0]["text"]
        goal = re.search(r"The user query:  (.*)\n", user).group(1)
        done = len(re.findall(r"Step \d+: ", user))  # the history says how far the episode is
        return completion(scripts[goal][done], prompt_tokens=900, completion_tokens=30)

    return respond


def test_two_phones_run_a_suite_at_once_and_end_in_their_tasks_states(two_phones, tmp_path):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(
        "\n".join(
            json.dumps(line)
            for line in [
                {"id": "airplane", "goal": AIRPLANE.goal},
                {"id": "wifi", "goal": WIFI.goal},
                {
                    "id": "question",
                    "goal": QUESTION,
                    "suite_note": "extra fields are kept out of the way",
                },
                {"id": "endless", "goal": ENDLESS, "max_steps": 2},
            ]
        )
        + "\n"
    )
    serials = list(two_phones)
    with FaultServer(
        models=["oracle"], respond=oracle(next(iter(two_phones.values())).state())
    ) as endpoint:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "qvl_agent",
                "run-batch",
                str(tasks),
                "--device",
                ",".join(f"android:{s}" for s in serials),
                "--endpoint",
                endpoint.url,
                "--model",
                "oracle",
                "--max-steps",
                "6",
                "--settle",
                "0",
                "--shuffle",
                "--seed",
                "3",
                "--record",
                str(tmp_path / "batch"),
            ],
            capture_output=True,
            text=True,
            timeout=180,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    assert result.returncode == 0, result.stderr

    summary = json.loads((tmp_path / "batch" / "summary.json").read_text())
    assert (summary["n"], summary["succeeded"], summary["success_rate"]) == (4, 3, 0.75)
    assert summary["statuses"] == {"success": 2, "answered": 1, "budget": 1}
    assert (summary["shuffled"], summary["seed"], summary["max_steps"]) == (True, 3, 6)
    episodes = {episode["id"]: episode for episode in summary["episodes"]}
    assert episodes["endless"]["max_steps"] == 2 and episodes["endless"]["steps"] == 2
    assert episodes["question"]["answer"] == "Settings"

    # Each phone ends in the state its own task asked for.
    assert AIRPLANE.check(
        two_phones[episodes["airplane"]["device"].removeprefix("android:")].state()
    )
    assert WIFI.check(two_phones[episodes["wifi"]["device"].removeprefix("android:")].state())

    # One run directory per episode, each a complete run; both phones worked at the same time.
    spans = {}
    for episode in summary["episodes"]:
        run = read_run(episode["run_dir"])
        assert run.meta.goal == episode["goal"] and run.meta.outcome.status == episode["status"]
        assert all(step.attempts[0].prompt_tokens == 900 for step in run.steps)
        spans.setdefault(episode["device"], []).append(
            (run.meta.started_at, run.meta.outcome.finished_at)
        )
    assert sorted(spans) == sorted(f"android:{s}" for s in serials)
    (mine, theirs) = spans.values()
    assert any(max(a[0], b[0]) < min(a[1], b[1]) for a in mine for b in theirs)  # at the same time

    assert "3/4 succeeded (75.0%), step budget 6, tasks shuffled with seed 3" in result.stdout
    assert "[4/4]" in result.stderr and re.search(
        r"\] airplane step 2: click at \(\d+, \d+\)", result.stderr
    )


def test_a_tasks_file_with_a_bad_line_names_it(tmp_path):
    path = tmp_path / "tasks.jsonl"
    for text, message in [
        ('{"id": "a", "goal": "x"}\n{"id": "b"}\n', r"tasks.jsonl:2: goal: Field required"),
        ('{"id": "a", "goal": "x"}\nnot json\n', r"tasks.jsonl:2: .*Invalid JSON"),
        (
            '{"id": "a b", "goal": "x"}\n\n{"id": "a/b", "goal": "y"}\n',
            r"tasks.jsonl:3: id 'a/b' repeats line 1",
        ),
        (
            '{"id": "a", "goal": "x", "max_steps": 0}\n',
            r"tasks.jsonl:1: max_steps: Input should be greater",
        ),
        ("\n", "holds no tasks"),
    ]:
        path.write_text(text)
        with pytest.raises(BatchError, match=message):
            read_tasks(path)


def test_workers_need_devices_of_their_own(tmp_path, capsys):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('{"id": "a", "goal": "x"}\n')
    assert (
        main(["run-batch", str(tasks), "--device", "image:a.png,image:b.png", "--workers", "3"])
        == 2
    )
    assert "each worker needs its own device and 2 are listed" in capsys.readouterr().err
    assert (
        main(["run-batch", str(tasks), "--device", "image:a.png", "--device", "image:a.png"]) == 2
    )
    assert "listed twice" in capsys.readouterr().err
    assert (
        main(
            [
                "run-batch",
                str(tasks),
                "--device",
                "image:a.png,image:b.png",
                "--model",
                "scripted:s.jsonl",
            ]
        )
        == 2
    )
    assert "use --workers 1" in capsys.readouterr().err


def test_a_broken_device_or_episode_does_not_stop_the_batch(tmp_path):
    """In-process: one device never opens, one episode hits a bug; the rest still runs."""
    from PIL import Image

    from qvl_agent.agent import AgentConfig
    from qvl_agent.batch import BatchTask, run_batch
    from qvl_agent.devices import DeviceError
    from qvl_agent.devices.still import StillImageDevice
    from qvl_agent.models.scripted import ScriptedModel

    class Flaky(StillImageDevice):
        def screenshot(self):
            if self.performed:  # the second screenshot of a run
                raise RuntimeError("driver bug")
            return super().screenshot()

    def open_device(spec):
        if spec == "broken":
            raise DeviceError("phone not found")
        return Flaky(Image.new("RGB", (800, 600)))

    click = tool_call(action="left_click", coordinate=[10, 10])
    model = ScriptedModel([tool_call(action="terminate", status="success"), click])
    tasks = [BatchTask(id="one", goal="a"), BatchTask(id="two", goal="b")]
    lines = []
    summary = run_batch(
        tasks,
        ["broken", "good"],
        model,
        AgentConfig(settle_seconds=0),
        tmp_path / "b",
        open_device,
        write=lines.append,
    )
    assert [(e.id, e.device, e.status) for e in summary.episodes] == [
        ("one", "good", "success"),
        ("two", "good", "error"),
    ]
    assert "RuntimeError: driver bug" in summary.episodes[1].reason and summary.success_rate == 0.5
    assert "[broken] not used: phone not found" in lines
    assert (
        read_run(tmp_path / "b" / "two").steps[0].action.action == "left_click"
    )  # recorded up to the bug
