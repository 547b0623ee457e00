"""The command line as a user types it."""

import json
import subprocess
import sys

from PIL import Image

from qvl_agent.trajectory import read_run
from tests.agent_helpers import tool_call, write_script


def qvl(*args, stdin: str = "", cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qvl_agent", *args], input=stdin,
                          capture_output=True, text=True, timeout=120, cwd=cwd)


def test_parse_prints_where_a_click_lands():
    answer = 'Clicking OK.\n<tool_call>\n{"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [658, 364]}}'
    result = qvl("parse", "--screen", "1920x1080", "--max-pixels", str(1280 * 28 * 28), stdin=answer)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["action"] == "left_click"
    assert out["coordinate"] == [658, 364]
    assert out["screen_coordinate"] == [960, 540]
    assert out["resized"] == [1316, 728]


def test_parse_shows_both_ends_of_a_swipe():
    answer = tool_call("mobile", action="swipe", coordinate=[546, 1804], coordinate2=[546, 602])
    out = json.loads(qvl("parse", "--screen", "1080x2400", "--space", "mobile", stdin=answer).stdout)
    assert out["screen_coordinate"] == [540, 1798]
    assert out["screen_coordinate2"] == [540, 600]


def test_parse_rejects_an_unusable_answer_with_a_clear_message():
    result = qvl("parse", "--screen", "1920x1080", stdin="I clicked it already.")
    assert result.returncode == 2
    assert "no tool call found" in result.stderr and "Traceback" not in result.stderr


def test_parse_rejects_a_bad_screen_size():
    result = qvl("parse", "--screen", "big", stdin="")
    assert result.returncode == 2 and "1920x1080" in result.stderr


def test_run_dry_run_on_a_screenshot_prints_progress_and_records(tmp_path):
    Image.new("RGB", (1366, 768), "white").save(tmp_path / "shot.png")
    script = write_script(tmp_path / "script.jsonl", [
        tool_call(action="left_click", coordinate=[683, 384]),
        tool_call(action="terminate", status="success"),
    ])
    result = qvl("run", "Click the centre", "--device", f"image:{tmp_path / 'shot.png'}",
                 "--model", f"scripted:{script}", "--dry-run", "--record", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert "step   1  left_click at (" in result.stderr and "[dry run]" in result.stderr
    assert "success" in result.stderr
    run = read_run(tmp_path / "run")
    assert [s.outcome for s in run.steps] == ["dry_run", "final"]


def test_run_with_a_missing_model_says_how_to_get_it(tmp_path):
    Image.new("RGB", (800, 600)).save(tmp_path / "shot.png")
    result = qvl("run", "x", "--device", f"image:{tmp_path / 'shot.png'}",
                 "--model", str(tmp_path / "no-such-checkpoint"))
    assert result.returncode == 2
    assert "no-such-checkpoint" in result.stderr and "Traceback" not in result.stderr


def test_run_with_a_missing_screenshot_is_a_clear_error(tmp_path):
    result = qvl("run", "x", "--device", f"image:{tmp_path / 'missing.png'}", "--model", "scripted:x.jsonl")
    assert result.returncode == 2 and "missing.png" in result.stderr


def test_confirm_needs_a_terminal(tmp_path):
    Image.new("RGB", (800, 600)).save(tmp_path / "shot.png")
    script = write_script(tmp_path / "s.jsonl", [tool_call(action="terminate", status="success")])
    result = qvl("run", "x", "--device", f"image:{tmp_path / 'shot.png'}", "--model", f"scripted:{script}", "--confirm")
    assert result.returncode == 2 and "interactive terminal" in result.stderr


def test_confirm_on_a_terminal_asks_before_each_action(tmp_path):
    """Answer yes to the first click and no to the second: one executed, then the run stops."""
    import os
    import pty
    import time

    Image.new("RGB", (800, 600)).save(tmp_path / "shot.png")
    script = write_script(tmp_path / "s.jsonl", [tool_call(action="left_click", coordinate=[100, 100])] * 2
                          + [tool_call(action="terminate", status="success")])
    pid, fd = pty.fork()
    if pid == 0:  # the child runs the CLI on the pseudo-terminal
        os.execv(sys.executable, [sys.executable, "-m", "qvl_agent", "run", "Click twice",
                                  "--device", f"image:{tmp_path / 'shot.png'}", "--model", f"scripted:{script}",
                                  "--confirm", "--settle", "0", "--record", str(tmp_path / "run")])
    output = b""
    answers = [b"y\n", b"n\n"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child exited
            break
        output += chunk
        if answers and output.count(b"[y/N]") > 2 - len(answers):
            os.write(fd, answers.pop(0))
    _, status = os.waitpid(pid, 0)
    text = output.decode(errors="replace")
    assert text.count("perform left_click at (") == 2, text
    assert os.waitstatus_to_exitcode(status) == 1 and "declined" in text
    run = read_run(tmp_path / "run")
    assert [s.outcome for s in run.steps] == ["executed", "declined"]
