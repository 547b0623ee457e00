"""``--watch``: the live page in a real headless Chromium (one browser for the module), driven
as a person would (clicks on its buttons), against real runs of the CLI (and, for the
takeover, the agent on the sandbox desktop with a person's real X input)."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time

import pytest
from PIL import Image

from qvl_agent.agent import Agent, AgentConfig
from qvl_agent.devices.desktop import DesktopDevice
from qvl_agent.geometry import Frame, Monitor
from qvl_agent.imaging import open_image
from qvl_agent.models.scripted import ScriptedModel
from qvl_agent.replay import screen_difference
from qvl_agent.trajectory import STEPS_FILE, read_run
from qvl_agent.watch import watch_from_args
from qvl_agent.watch.session import WatchSession
from tests.agent_helpers import tool_call, write_script
from tests.browser import Browser

CLICK = tool_call(action="left_click", coordinate=[100, 100])
DONE = tool_call(action="terminate", status="success")
ROWS = "document.querySelectorAll('#steps tbody tr').length"
STATUS = "document.querySelector('#status').textContent"


@pytest.fixture(scope="module")
def page():
    browser = Browser()
    try:
        yield browser.new_page(1440, 900)
    finally:
        browser.close()


@pytest.fixture
def screen(tmp_path):
    Image.new("RGB", (800, 600), (235, 235, 235)).save(tmp_path / "shot.png")
    return tmp_path / "shot.png"


class Watched:
    """``qvl-agent run ... --watch`` in a subprocess; its stderr is read as it comes."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "qvl_agent", "run", *args, "--watch"],
            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line)

    def url(self, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if match := re.match(r"watch: (http://\S+)", line):
                    return match.group(1)
            time.sleep(0.02)
        raise AssertionError("no watch URL printed: " + "".join(self.lines))

    def wait(self, timeout: float = 60) -> int:
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code

    @property
    def stderr(self) -> str:
        return "".join(self.lines)


def test_the_page_shows_each_step_within_a_second_of_its_recording(page, screen, tmp_path):
    script = write_script(tmp_path / "s.jsonl", [CLICK] * 6 + [DONE])
    run = Watched("Click six times", "--device", f"image:{screen}", "--model", f"scripted:{script}",
                  "--settle", "0.5", "--record", str(tmp_path / "run"))
    page.goto(run.url())
    # Note the moment each step's row appears on the page.
    page.evaluate("""(() => {
        window.seen = {};
        const rows = document.querySelector('#steps tbody');
        const note = () => rows.querySelectorAll('tr').forEach(row => {
            if (!(row.dataset.index in seen)) seen[row.dataset.index] = Date.now(); });
        new MutationObserver(note).observe(rows, {childList: true});
        window.watchingSince = Date.now();
        note(); })()""")
    assert run.wait() == 0, run.stderr
    page.wait_for(f"{STATUS} === 'success'")
    seen = page.evaluate("window.seen")
    since = page.evaluate("window.watchingSince") / 1000
    steps = read_run(tmp_path / "run").steps
    assert len(steps) == 7
    latencies = []
    for step in steps:
        recorded = step.started_at + step.timings["total"] / 1000  # just before the line is written
        if recorded < since:
            continue  # recorded before the page was open
        latencies.append(seen[str(step.index)] / 1000 - recorded)
    print(f"\nwatch page latency per step (s): {[round(x, 3) for x in latencies]}")
    assert len(latencies) >= 5
    assert max(latencies) < 1.0
    # The last step's screenshot and its answer are on the page, and the run's end.
    assert page.evaluate("document.querySelector('#step-label').textContent") == "Step 7"
    assert "terminate" in page.evaluate("document.querySelector('#response').textContent")
    assert "qvl-agent report" in page.evaluate("document.querySelector('#banner').textContent")
    assert f"report: qvl-agent report {tmp_path / 'run'}" in run.stderr


def test_pause_holds_the_run_and_stop_ends_it_with_every_step_on_disk(page, screen, tmp_path):
    script = write_script(tmp_path / "s.jsonl", [CLICK] * 40)
    run = Watched("Click and click", "--device", f"image:{screen}", "--model", f"scripted:{script}",
                  "--settle", "0.2", "--record", str(tmp_path / "run"))
    page.goto(run.url())
    page.wait_for(f"{ROWS} >= 2", timeout=30)
    page.click("#pause")
    page.wait_for(f"{STATUS} === 'paused'")
    # A step under way when pause was pressed ends at its next hook point; then nothing moves.
    page.wait_for("document.querySelector('#phase').textContent === 'paused'")
    held = page.evaluate(ROWS)
    time.sleep(1.0)
    assert page.evaluate(ROWS) == held
    assert len((tmp_path / "run" / STEPS_FILE).read_text().splitlines()) == held
    page.click("#pause")  # now "Resume"
    page.wait_for(f"{ROWS} >= {held + 2}", timeout=30)
    page.click("#stop")
    assert run.wait() == 1, run.stderr
    recorded = read_run(tmp_path / "run")
    assert recorded.meta.outcome.status == "interrupted"
    assert recorded.meta.outcome.reason == "stopped from the watch page"
    assert recorded.skipped_lines == 0
    lines = (tmp_path / "run" / STEPS_FILE).read_text().splitlines()
    assert len(recorded.steps) == len(lines) == recorded.meta.outcome.steps < 40
    for step in recorded.steps:  # every screenshot is whole
        assert open_image(tmp_path / "run" / step.screenshot).size == (800, 600)
    assert all(s.outcome == "executed" for s in recorded.steps[:-1])
    assert recorded.steps[-1].outcome in ("executed", "interrupted")
    page.wait_for(f"{STATUS} === 'interrupted'")
    assert "interrupted: stopped from the watch page" in run.stderr


class Terminal:
    """``qvl-agent run ... --confirm --watch`` on a pseudo-terminal, as a person runs it."""

    def __init__(self, *args: str) -> None:
        import pty

        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execv(sys.executable, [sys.executable, "-m", "qvl_agent", "run", *args,
                                      "--confirm", "--watch"])
        self.output = ""

    def read_until(self, pattern: str, timeout: float = 30) -> re.Match:
        deadline = time.monotonic() + timeout
        while not (match := re.search(pattern, self.output)):
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not seen in: {self.output}")
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                try:
                    self.output += os.read(self.fd, 4096).decode(errors="replace")
                except OSError:
                    time.sleep(0.05)
        return match

    def write(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def wait(self) -> int:
        try:
            while True:
                ready, _, _ = select.select([self.fd], [], [], 0.1)
                if ready:
                    chunk = os.read(self.fd, 4096)
                    if not chunk:
                        break
                    self.output += chunk.decode(errors="replace")
        except OSError:  # the child exited and closed its side
            pass
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status)


QUESTION = ("document.querySelector('#question').hidden ? null : "
            "document.querySelector('#question-text').textContent")


def test_approve_and_decline_on_the_page_are_recorded_like_on_the_terminal(page, screen, tmp_path):
    """Three clicks under --confirm --watch on a terminal: the first approved on the terminal
    (the page drops its question), the second approved and the third declined on the page
    (the terminal is told). A page's answer leaves the same record as a terminal's."""
    script = write_script(tmp_path / "s.jsonl", [CLICK] * 3 + [DONE])
    terminal = Terminal("Click thrice", "--device", f"image:{screen}", "--model",
                        f"scripted:{script}", "--settle", "0", "--record", str(tmp_path / "run"))
    page.goto(terminal.read_until(r"watch: (http://\S+)").group(1).strip())
    asked = terminal.read_until(r"perform (left_click at \(\d+, \d+\))\? \[y/N\]").group(1)
    assert page.wait_for(QUESTION) == asked
    terminal.write("y\n")
    page.wait_for(f"{ROWS} === 1")
    assert page.wait_for(QUESTION) == asked  # the second question, on both
    page.click("#approve")
    page.wait_for(f"{ROWS} === 2")
    page.wait_for(QUESTION)
    page.click("#decline")
    page.wait_for(f"{STATUS} === 'declined'")
    assert page.evaluate(QUESTION) is None
    assert terminal.wait() == 1
    output = terminal.output
    assert output.count(f"perform {asked}? [y/N]") == 3
    assert "yes (answered on the watch page)" in output
    assert "no (answered on the watch page)" in output

    run = read_run(tmp_path / "run")
    by_terminal, by_page, declined = run.steps
    assert by_terminal.outcome == by_page.outcome == "executed"
    assert (by_terminal.action, by_terminal.error) == (by_page.action, by_page.error)
    # A decline on the page ends the run as one on the terminal does (tests/test_cli.py).
    assert (declined.outcome, run.meta.outcome.status, run.meta.outcome.reason) == (
        "declined", "declined", "the user declined the action")


def _non_loopback_address() -> str | None:
    """An IPv4 address of this machine other than loopback, if it has one."""
    candidates = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("198.51.100.1", 9))  # sends nothing; picks the outgoing address
            candidates.append(probe.getsockname()[0])
        except OSError:
            pass
    try:
        found = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
        candidates += [info[4][0] for info in found]
    except OSError:
        pass
    return next((a for a in candidates if not a.startswith("127.") and a != "0.0.0.0"), None)


def _get(host: str, port: int, path: str, headers: dict | None = None, method: str = "GET",
         body: bytes | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(host, port, timeout=5)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def test_the_page_is_only_on_loopback_unless_asked_and_commands_need_its_token(capsys):
    address = _non_loopback_address()
    with WatchSession.start() as watch:
        host, port = watch.server.server_address[:2]
        assert host == "127.0.0.1"
        token = watch.url.split("token=")[1]
        if address is not None:
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((address, port), timeout=2)
        assert _get(host, port, f"/?token={token}")[0] == 200
        assert _get(host, port, "/")[0] == 403  # no token: no page
        assert _get(host, port, "/events?token=wrong")[0] == 403
        # Another site's name (DNS rebinding) gets nothing, even with the token.
        assert _get(host, port, f"/?token={token}", {"Host": f"evil.example:{port}"})[0] == 403
        stop = {"Content-Type": "application/json", "X-Watch-Token": token}
        # Another page's POST: refused for its Origin, or for lacking the token.
        elsewhere = {**stop, "Origin": "http://evil.example"}
        assert _get(host, port, "/api/stop", elsewhere, "POST", b"{}")[0] == 403
        no_token = {"Content-Type": "text/plain"}
        assert _get(host, port, "/api/stop", no_token, "POST", b"{}")[0] == 403
        assert _get(host, port, "/api/stop", stop, "POST", b"x" * 5000)[0] == 413
        assert not watch.control.stopping
        own = {**stop, "Origin": f"http://127.0.0.1:{port}"}
        assert _get(host, port, "/api/stop", own, "POST", b"{}")[0] == 200
        assert watch.control.stopping

    if address is None:
        pytest.skip("this machine has no non-loopback address to test --watch-host against")
    # Asked for: reachable from the network, still behind the token, and said so.
    args = argparse.Namespace(watch=True, watch_host="0.0.0.0", watch_port=0)
    watch = watch_from_args(args)
    try:
        assert "warning: the watch page listens on 0.0.0.0" in capsys.readouterr().err
        port = watch.server.server_address[1]
        token = watch.url.split("token=")[1]
        assert _get(address, port, f"/?token={token}")[0] == 200
        assert _get(address, port, "/")[0] == 403
    finally:
        watch.close()


def person_clicks(display: str, x: int, y: int) -> None:
    """A click through the X server's test extension, as a person's mouse gives one."""
    from Xlib import X
    from Xlib.display import Display
    from Xlib.ext import xtest

    connection = Display(display)
    try:
        xtest.fake_input(connection, X.MotionNotify, x=x, y=y)
        xtest.fake_input(connection, X.ButtonPress, 1)
        xtest.fake_input(connection, X.ButtonRelease, 1)
        connection.sync()
    finally:
        connection.close()


def test_takeover_holds_the_agent_while_a_person_acts_then_it_sees_a_fresh_screen(
        page, sandbox, tmp_path):
    """On the sandbox desktop: the person takes over from the page, opens the Settings dialog
    with the X server's mouse (XTEST), gives the screen back; the next step sees the dialog."""
    width, height = sandbox.state()["screen"]
    frame = Frame.fit(Monitor(width=width, height=height))
    # A harmless first action (the pointer is not in screenshots), then the run goes on.
    park = tool_call(action="mouse_move", coordinate=list(frame.to_model(width - 50, height - 50)))
    model = ScriptedModel([park] * 4 + [DONE])
    device = DesktopDevice(display=sandbox.display)
    results = []
    # (Closing the session stops a run still held, should an assertion fail mid-way.)
    with WatchSession.start() as watch:
        agent = Agent(model, device, AgentConfig(settle_seconds=0.5), steering=watch.control)
        runner = threading.Thread(
            target=lambda: results.append(agent.run("park", record=tmp_path / "run")), daemon=True)
        page.goto(watch.url)
        runner.start()
        page.wait_for(f"{ROWS} === 1", timeout=30)
        page.click("#takeover")
        page.wait_for(f"{STATUS} === 'taken over'")
        # The step under way ends at its next hook point; then the agent holds.
        page.wait_for("document.querySelector('#phase').textContent === 'taken over'")
        taken, held = model.calls, len(read_run(tmp_path / "run").steps)
        time.sleep(1.5)  # the agent holds: no new screenshot, no new answer
        assert model.calls == taken and len(read_run(tmp_path / "run").steps) == held
        x, y = sandbox.centre("settings")
        person_clicks(sandbox.display, x, y)
        # (Tk lists a widget at 1x1 until it is laid out.)
        laid_out = lambda s: s["widgets"].get("close_settings", {}).get("w", 0) > 1  # noqa: E731
        state = sandbox.wait_until(laid_out, what="the Settings dialog")
        dialog = state["widgets"]["close_settings"]
        sandbox.settle()
        given_back = time.time()
        page.click("#takeover")  # now "Give back"
        runner.join(30)
    device.close()
    assert results and results[0].status == "success"
    steps = read_run(tmp_path / "run").steps
    first = open_image(tmp_path / "run" / steps[0].screenshot)
    after = [s for s in steps if s.started_at >= given_back]
    assert after, [s.started_at for s in steps]
    fresh = open_image(tmp_path / "run" / after[0].screenshot)
    # The dialog the person opened is on it (its Close button, where there was none before).
    box = (dialog["x"], dialog["y"], dialog["x"] + dialog["w"], dialog["y"] + dialog["h"])
    assert screen_difference(first.crop(box), fresh.crop(box)) > 0.05
    # A step whose screenshot predates the takeover never acts.
    for step in steps:
        if step.started_at < given_back and step.outcome == "interrupted":
            assert "took over" in step.error
    assert read_run(tmp_path / "run").meta.outcome.status == "success"


def read_events(url: str, until, timeout: float = 60) -> list[dict]:
    """The watch server's event stream (as the page reads it) until ``until(messages)``."""
    base, token = url.split("/?token=")
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    connection.request("GET", f"/events?token={token}")
    answer = connection.getresponse()
    assert answer.status == 200 and answer.getheader("Content-Type").startswith("text/event-stream")
    messages: list[dict] = []
    deadline = time.monotonic() + timeout
    try:
        while not until(messages) and time.monotonic() < deadline:
            line = answer.fp.readline()
            if not line:
                break
            if line.startswith(b"data: "):
                messages.append(json.loads(line[6:]))
    finally:
        connection.close()
    return messages


def runs_seen(messages: list[dict]) -> dict[str, dict]:
    """The runs as the page puts them together (each message brings only the new steps)."""
    runs: dict[str, dict] = {}
    for message in messages:
        for run_id, run in message["runs"].items():
            steps = {s["index"]: s for s in runs.get(run_id, {}).get("steps", [])}
            steps.update({s["index"]: s for s in run["steps"]})
            runs[run_id] = {**run, "steps": [steps[i] for i in sorted(steps)]}
            assert len(steps) == run["step_count"]
    return runs


def printed_watch_url(process: subprocess.Popen) -> str:
    """The watch URL the command prints on stderr (read line by line until it comes)."""
    while line := process.stderr.readline():
        if match := re.match(r"watch: (http://\S+)", line):
            return match.group(1)
    raise AssertionError("no watch URL printed: " + process.stderr.read())


def test_run_batch_watch_follows_each_episode_and_stop_ends_the_batch(screen, tmp_path):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(json.dumps({"id": f"t{i}", "goal": f"task {i}", "max_steps": 2}) + "\n"
                             for i in range(1, 4)))
    script = write_script(tmp_path / "s.jsonl", [CLICK] * 20)
    process = subprocess.Popen(
        [sys.executable, "-m", "qvl_agent", "run-batch", str(tasks), "--device", f"image:{screen}",
         "--model", f"scripted:{script}", "--settle", "0.4", "--record", str(tmp_path / "batch"),
         "--watch"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = printed_watch_url(process)
    messages = read_events(url, lambda m: len(runs_seen(m)) >= 2)
    host_port, token = url.removeprefix("http://").split("/?token=")
    host, port = host_port.split(":")
    status, _ = _get(host, int(port), "/api/stop", {"Content-Type": "application/json",
                                                     "X-Watch-Token": token}, "POST", b"{}")
    assert status == 200
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    runs = runs_seen(messages)
    assert [run["goal"] for run in runs.values()] == ["task 1", "task 2"]
    summary = json.loads((tmp_path / "batch" / "summary.json").read_text())
    assert [e["status"] for e in summary["episodes"]] == ["budget", "interrupted", "not_run"]
    assert read_run(tmp_path / "batch" / "t2").meta.outcome.reason == "stopped from the watch page"


def test_replay_watch_shows_the_replayed_steps(screen, tmp_path):
    model = ScriptedModel([CLICK, CLICK, DONE])
    from qvl_agent.devices.still import StillImageDevice

    Agent(model, StillImageDevice.from_file(screen), AgentConfig(settle_seconds=0)).run(
        "click twice", record=tmp_path / "run")
    process = subprocess.Popen(
        [sys.executable, "-m", "qvl_agent", "replay", str(tmp_path / "run"),
         "--device", f"image:{screen}", "--settle", "0.3", "--watch"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = printed_watch_url(process)
    messages = read_events(url, lambda m: m and m[-1]["closed"])
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    (run,) = runs_seen(messages).values()
    assert (run["kind"], run["goal"], run["status"]) == ("replay", "click twice", "matched")
    assert [s["outcome"] for s in run["steps"]] == ["executed", "executed", "final"]
    assert run["steps"][0]["description"].startswith("left_click at (")
