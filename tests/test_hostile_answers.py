"""Hostile model answers: numbers past float() or int(), nesting past the JSON readers'
recursion, NaN and infinities, actions that parse but cannot be performed. Each is an error fed
back to the model (the run records a proper outcome); a long wait ends with the time budget."""

import contextlib
import io
import json
import math
import random
import time
from types import SimpleNamespace

import pytest
from PIL import Image
from pydantic import ValidationError

from qvl_agent.actions import LeftClick, LongPress, Point, Scroll, Wait
from qvl_agent.agent import Agent, AgentConfig
from qvl_agent.cli import main
from qvl_agent.devices.base import perform_device_independent
from qvl_agent.devices.still import StillImageDevice
from qvl_agent.geometry import Frame, Monitor
from qvl_agent.models.scripted import ScriptedModel
from qvl_agent.parsing import ActionParseError, parse
from qvl_agent.trajectory import read_run
from tests.agent_helpers import write_script

DESKTOP = Frame.fit(Monitor(width=1920, height=1080), max_pixels=1280 * 28 * 28)  # 1316x728
PHONE = Frame.fit(Monitor(width=1080, height=2400))


def call(arguments: str, tool: str = "computer_use") -> str:
    """A tool call with ``arguments`` spliced in as raw text (so it can hold what JSON allows
    and json.dumps would never write)."""
    return f'<tool_call>\n{{"name": "{tool}", "arguments": {arguments}}}\n</tool_call>'


# (answer, space, what the error must say)
HOSTILE = {
    "310-digit coordinate": (call('{"action": "left_click", "coordinate": [%s, 5]}' % ("9" * 310)),
                             "computer", "too large"),
    "5000-digit coordinate": (call('{"action": "left_click", "coordinate": [%s, 5]}' % ("9" * 5000)),
                              "computer", "too long"),
    "5000-digit string coordinate": (call('{"action": "left_click", "coordinate": "%s, 5"}' % ("9" * 5000)),
                                     "computer", "finite"),
    "1000-deep list": (call('{"action": "left_click", "coordinate": %s}' % ("[" * 1000 + "]" * 1000)),
                       "computer", "nested"),
    "1000-deep objects": (call('{"action": "left_click", "coordinate": %s}' % ('{"x":' * 1000 + "1" + "}" * 1000)),
                          "computer", "nested"),
    "1000-deep arguments string": (call(json.dumps("[" * 1000 + "]" * 1000)), "computer", "nested"),
    "NaN scroll": (call('{"action": "scroll", "pixels": NaN}'), "computer", "finite"),
    "-Infinity scroll": (call('{"action": "scroll", "pixels": -Infinity}'), "computer", "finite"),
    "1e7 scroll": (call('{"action": "scroll", "pixels": 1e7}'), "computer", "10000"),
    "1e999 wait": (call('{"action": "wait", "time": 1e999}'), "computer", "finite"),
    "1e9 wait": (call('{"action": "wait", "time": 1e9}'), "computer", "60"),
    "negative wait": (call('{"action": "wait", "time": -1}'), "computer", "greater than or equal to 0"),
    "'nan' string wait": (call('{"action": "wait", "time": "nan"}'), "computer", "finite"),
    "1e20 long_press": (call('{"action": "long_press", "coordinate": [10, 10], "time": 1e20}', "mobile_use"),
                        "mobile", "10"),
    "NaN coordinate": (call('{"action": "left_click", "coordinate": [NaN, 5]}'), "computer", "finite"),
    "million-item coordinate": (call('{"action": "left_click", "coordinate": [%s]}' % ",".join(["1"] * 10**6)),
                                "computer", "two numbers"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_answers_are_parse_errors_for_the_model(name):
    answer, space, says = HOSTILE[name]
    frame = DESKTOP if space == "computer" else PHONE
    with pytest.raises(ActionParseError) as error:
        parse(answer, frame, space)
    message = str(error.value)
    assert says in message and len(message) < 300, message


def test_exponents_in_a_string_coordinate_are_read_as_numbers():
    parsed = parse(call('{"action": "left_click", "coordinate": "[1e2, 3e2]"}'), DESKTOP, "computer")
    assert parsed.action.coordinate.model == (100.0, 300.0) and parsed.box is None
    parsed = parse(call('{"action": "left_click", "coordinate": "(6.58E2, 364)"}'), DESKTOP, "computer")
    assert parsed.action.coordinate.screen == (960, 540)


def qvl(*args: str, stdin: str = "") -> SimpleNamespace:
    """``qvl-agent ARGS`` in this process: returncode, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            _stdin(stdin):
        code = main(list(args))
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


@contextlib.contextmanager
def _stdin(text: str):
    import sys

    saved, sys.stdin = sys.stdin, io.StringIO(text)
    try:
        yield
    finally:
        sys.stdin = saved


@pytest.mark.parametrize("name", ["310-digit coordinate", "5000-digit coordinate", "1000-deep list",
                                  "NaN scroll", "1e999 wait"])
def test_qvl_agent_parse_says_why_in_one_line(name):
    result = qvl("parse", "--screen", "1920x1080", stdin=HOSTILE[name][0])
    assert result.returncode == 2 and result.stderr.startswith("error: unusable answer: ")
    assert result.stderr.count("\n") == 1, result.stderr


def test_a_run_fed_hostile_answers_ends_with_a_recorded_outcome(tmp_path):
    """Every hostile answer is fed back to the model; the run ends as parse_error (three in a
    row) with its reason in meta.json, never with outcome null."""
    Image.new("RGB", (800, 600), "white").save(tmp_path / "shot.png")
    names = [n for n in sorted(HOSTILE) if HOSTILE[n][1] == "computer"]
    for start in range(0, len(names), 3):
        group = names[start : start + 3]
        script = write_script(tmp_path / f"script{start}.jsonl", [HOSTILE[n][0] for n in group])
        record = tmp_path / f"run{start}"
        result = qvl("run", "x", "--device", f"image:{tmp_path / 'shot.png'}", "--model", f"scripted:{script}",
                     "--record", str(record))
        run = read_run(record)
        assert result.returncode == 1 and run.meta.outcome is not None, result.stderr
        if len(group) == 3:
            assert run.meta.outcome.status == "parse_error"
        errors = [attempt.error for attempt in run.steps[0].attempts]
        assert len(errors) == len(group) and all(errors), errors
        assert "Traceback" not in result.stderr


def test_recorded_actions_carry_only_bounded_finite_numbers():
    """Actions made outside the parser (a hand-edited run read back, a replay) keep the bounds."""
    for make in (lambda: Wait(time=1e9), lambda: Wait(time=math.inf), lambda: Scroll(pixels=math.nan),
                 lambda: LongPress(coordinate=Point(model=(1, 1), screen=(1, 1)), time=1e20),
                 lambda: LeftClick(coordinate=Point(model=(math.nan, 1))),
                 lambda: LeftClick(coordinate=Point(model=(1, 1), screen=(10**20, 1)))):
        with pytest.raises(ValidationError):
            make()


class WaitingStill(StillImageDevice):
    """A still screen that performs waits as the desktop and the phone do."""

    def execute(self, action) -> None:
        super().execute(action)
        perform_device_independent(action)


def test_the_time_budget_cuts_a_long_wait_short(tmp_path):
    device = WaitingStill(Image.new("RGB", (800, 600)))
    model = ScriptedModel([call('{"action": "wait", "time": 30}')] * 2)
    started = time.monotonic()
    result = Agent(model, device, AgentConfig(max_seconds=1.0, settle_seconds=0)).run("x", record=tmp_path / "run")
    assert time.monotonic() - started < 10  # not the 30 s asked
    assert result.status == "budget" and result.steps == 1
    step = read_run(tmp_path / "run").steps[0]
    assert step.outcome == "executed" and "time budget ran out" in step.notes[0]
    assert step.action.time == 30 and device.performed[0].time <= 1  # recorded as asked


def test_a_screen_past_200_to_1_ends_the_run_with_a_recorded_outcome(tmp_path):
    """A screen known only when captured (a desktop, a phone): the run stops, recorded."""
    device = StillImageDevice(Image.new("RGB", (6000, 20)))
    model = ScriptedModel([call('{"action": "wait", "time": 1}')])
    result = Agent(model, device, AgentConfig(settle_seconds=0)).run("x", record=tmp_path / "run")
    assert result.status == "capture_error" and "200:1" in result.reason and model.calls == 0
    assert read_run(tmp_path / "run").meta.outcome.status == "capture_error"


# -- a seeded fuzz: mutated answers never raise anything but ActionParseError ----------------

SEEDS = [
    call('{"action": "left_click", "coordinate": [658, 364]}'),
    call('{"action": "scroll", "pixels": -300, "coordinate": [10, 10]}'),
    call('{"action": "wait", "time": 2}'),
    call('{"action": "long_press", "coordinate": [500, 900], "time": 1.5}', "mobile_use"),
    call('{"action": "swipe", "coordinate": [500, 1800], "coordinate2": [500, 600]}', "mobile_use"),
    call('{"action": "type", "text": "héllo"}'),
]
PIECES = ["9" * 320, "9" * 4400, "1e999", "-1e999", "NaN", "Infinity", "[" * 600, "{" * 600,
          "]", "}", '"', "\\", "\u2028", "\x85", "\x00", "1e2", "-0", "0x10", "1_000", "true",
          "null", '"1e400"', "[[1, 2]]", '{"x": 1e308, "y": 1e308}', "</tool_call>",
          "<tool_call>", "'", ",", ":", "e", "."]


def mutate(text: str, rng: random.Random) -> str:
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(text) + 1)
        cut = rng.choice([0, 0, 1, rng.randint(1, 8)])
        text = text[:at] + rng.choice(PIECES) + text[at + cut:]
    return text


def check_answer(text: str, frame: Frame, space: str) -> str | None:
    """None when ``text`` parses to a bounded action or fails with ActionParseError; else
    what went wrong."""
    try:
        action = parse(text, frame, space).action
    except ActionParseError:
        return None
    except Exception as error:  # noqa: BLE001 - any other exception is the failure counted
        return f"{type(error).__name__}: {str(error)[:100]}"
    for point in action.points():
        x, y = point.screen
        monitor = frame.monitor
        if not (0 <= x < monitor.width and 0 <= y < monitor.height):
            return f"point {point.screen} off the screen"
    return None


def test_two_thousand_mutated_answers_only_ever_fail_as_parse_errors():
    rng = random.Random(11)
    failures = []
    for _ in range(2000):
        seed = rng.choice(SEEDS)
        space, frame = ("mobile", PHONE) if "mobile_use" in seed else ("computer", DESKTOP)
        text = mutate(seed, rng)
        if (problem := check_answer(text, frame, space)) is not None:
            failures.append((problem, text[:120]))
    assert failures == []
