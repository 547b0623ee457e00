"""``qvl-agent report`` opened in a real headless Chromium (one browser for the module): the
drawn mark sits on the pixel the action used without hiding what is under it, the step strip
and the keyboard move between steps, the screen after the last action is shown, and eval pages
show percentages, per-split tables and failures grouped by kind."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from environments.synthetic_screenspot import write_synthetic_screenspot
from qvl_agent.agent import Agent, AgentConfig
from qvl_agent.devices.still import StillImageDevice
from qvl_agent.geometry import Frame, Monitor
from qvl_agent.models.scripted import ScriptedModel
from qvl_agent.trajectory import Attempt, RunMeta, RunWriter, Step, read_run
from tests.agent_helpers import tool_call
from tests.browser import Browser

BLUE = (0, 0, 255)
# The screen shows another colour at each capture: step 1 red, 2 green, 3 yellow, then cyan.
COLOURS = [(220, 30, 30), (30, 180, 30), (230, 220, 20), (20, 210, 220)]


@pytest.fixture(scope="module")
def page():
    browser = Browser()
    try:
        yield browser.new_page(1400, 1000)
    finally:
        browser.close()


class ChangingScreen(StillImageDevice):
    """A still screen that changes colour after every capture, as a screen changes after
    each action; the colours tell the steps apart on the page."""

    def __init__(self, size):
        super().__init__(Image.new("RGB", size, COLOURS[0]))
        self.captures = 0

    def screenshot(self):
        colour = COLOURS[min(self.captures, len(COLOURS) - 1)]
        self.image = Image.new("RGB", self.image.size, colour)
        self.captures += 1
        return super().screenshot()


def report(directory, out=None):
    result = subprocess.run([sys.executable, "-m", "qvl_agent", "report", str(directory),
                             *(["--out", str(out)] if out else [])],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return out or directory / "report.html"


def pixels_of(page, tmp_path, name="page.png"):
    return np.asarray(Image.open(page.screenshot(tmp_path / name)).convert("RGB")).astype(int)


def shown_rect(page):
    """Where the shown step's screenshot is on the page: left, top, width, height."""
    return page.evaluate("(() => { const r = document.querySelector("
                         "'section.step.shown .shot img').getBoundingClientRect(); "
                         "return [r.left, r.top, r.width, r.height]; })()")


def test_the_click_mark_sits_on_the_click_and_leaves_its_centre_visible(page, tmp_path):
    size = (1920, 1080)
    Image.new("RGB", size, BLUE).save(tmp_path / "blue.png")
    frame = Frame.fit(Monitor(width=size[0], height=size[1]))
    model = ScriptedModel([
        tool_call(action="left_click", coordinate=list(frame.to_model(1500, 300))),
        tool_call(action="terminate", status="success")])
    device = StillImageDevice.from_file(tmp_path / "blue.png")
    Agent(model, device, AgentConfig(settle_seconds=0)).run("click the spot",
                                                            record=tmp_path / "run")
    html_path = report(tmp_path / "run")
    html = html_path.read_text()
    assert "click the spot" in html and "left_click at (1500, 300)" in html
    # Self-contained: images inline, nothing fetched from anywhere.
    assert 'src="data:image/jpeg;base64,' in html and "file:" not in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html

    page.goto(html_path.as_uri())
    assert page.evaluate("document.querySelector('section.step.shown').id") == "step-1"
    left, top, width, height = shown_rect(page)
    assert width > 600 and abs(width / height - 1920 / 1080) < 0.01
    pixels = pixels_of(page, tmp_path)
    inside = pixels[round(top):round(top + height), round(left):round(left + width)]
    r, g, b = inside[..., 0], inside[..., 1], inside[..., 2]
    ys, xs = np.nonzero((r > 180) & (b > 180) & (g < 110))  # the magenta mark
    assert len(xs) > 50
    scale = width / 1920
    assert left + xs.mean() == pytest.approx(left + 1500 * scale, abs=3)
    assert top + ys.mean() == pytest.approx(top + 300 * scale, abs=3)
    # A ring and a crosshair, not a disc: inside the ring (where a button's label would be)
    # the screenshot still shows, but for a dot on the clicked pixel itself.
    cx, cy = 1500 * scale, 300 * scale
    ys, xs = np.mgrid[0:inside.shape[0], 0:inside.shape[1]]
    distance = np.hypot(xs - cx, ys - cy)
    ring = 3 * 1920 / 200 * scale
    clear = inside[(distance > 2.5) & (distance < ring - 0.3 * 1920 / 200 * scale - 1.5)]
    assert len(clear) > 100
    assert (clear[:, 2] > 200).all() and (clear[:, 0] < 60).all(), clear[clear[:, 0] >= 60][:5]


def test_the_step_strip_and_the_keys_move_between_steps_up_to_the_final_screen(page, tmp_path):
    size = (1280, 800)
    frame = Frame.fit(Monitor(width=size[0], height=size[1]))
    clicks = [tool_call(action="left_click", coordinate=list(frame.to_model(200 + 300 * i, 400)))
              for i in range(3)]
    device = ChangingScreen(size)
    result = Agent(ScriptedModel(clicks), device, AgentConfig(settle_seconds=0, max_steps=3)).run(
        "click three times", record=tmp_path / "run")
    assert result.status == "budget"
    run = read_run(tmp_path / "run")
    # The last step acted, so the screen after it was captured (the 4th colour) and recorded.
    assert run.meta.outcome.final_screenshot == "screenshots/final.png"
    assert Image.open(tmp_path / "run" / "screenshots/final.png").getpixel((5, 5)) == COLOURS[3]

    page.goto(report(tmp_path / "run").as_uri())

    def shown():
        step = page.evaluate("document.querySelector('section.step.shown').id")
        left, top, width, height = shown_rect(page)
        colour = pixels_of(page, tmp_path)[round(top + 8), round(left + 8)]
        return step, tuple(int(c) for c in colour)

    def near(colour, expected):
        return max(abs(a - b) for a, b in zip(colour, expected)) < 30

    assert page.evaluate("document.querySelectorAll('.strip .thumb').length") == 4
    step, colour = shown()
    assert step == "step-1" and near(colour, COLOURS[0])
    page.press("ArrowRight")
    step, colour = shown()
    assert step == "step-2" and near(colour, COLOURS[1])
    page.press("j")
    assert shown()[0] == "step-3"
    page.press("j")
    step, colour = shown()
    assert step == "step-end" and near(colour, COLOURS[3])  # after the last action
    page.press("k")
    page.press("ArrowLeft")
    assert shown()[0] == "step-2"
    page.click(".strip .thumb:nth-child(3)")
    step, colour = shown()
    assert step == "step-3" and near(colour, COLOURS[2])
    shown_thumb = "document.querySelector('.strip .thumb.shown').getAttribute('href')"
    assert page.evaluate(shown_thumb) == "#step-3"
    page.press("Home")
    assert shown()[0] == "step-1"


def test_each_step_shows_its_thought_and_answers(page, tmp_path):
    """A run recorded by a model family that thinks aloud (the thought field of steps.jsonl)."""
    image = Image.new("RGB", (800, 600), (240, 240, 240))
    frame = Frame.fit(Monitor(width=800, height=600))
    meta = RunMeta(goal="think", model="m", device="image", space="computer")
    writer = RunWriter(tmp_path / "run", meta)
    thoughts = ["The menu is closed; open it first.", "Now pick <Export>."]
    for index, thought in enumerate(thoughts, start=1):
        path = writer.save_screenshot(index, image)
        writer.append_step(Step(index=index, started_at=0, screenshot=path, frame=frame,
                                prompt_digest="0", attempts=[Attempt(response=f"answer {index}")],
                                thought=thought, outcome="parse_error", error="unusable"))
    writer.close()
    page.goto(report(tmp_path / "run").as_uri())
    thought = "document.querySelector('section.step.shown .thought').textContent"
    assert page.evaluate(thought) == thoughts[0]
    page.press("ArrowRight")
    assert page.evaluate(thought) == thoughts[1]
    answer = "document.querySelector('section.step.shown pre').textContent"
    assert "answer 2" in page.evaluate(answer)


def test_an_eval_page_shows_percentages_splits_and_failures_by_kind(page, tmp_path):
    data = write_synthetic_screenspot(tmp_path, 6, hit_share=0.5, seed=3)
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "qvl_agent", "eval", "--format", "screenspot",
         "--annotations", str(data["annotations"]), "--images", str(data["images"]),
         "--model", f"scripted:{data['script']}", "--max-pixels", str(1280 * 28 * 28),
         "--out", str(out)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    html_path = report(out, tmp_path / "e.html")
    html = html_path.read_text()
    lines = (out / "predictions.jsonl").read_text().splitlines()
    predictions = [json.loads(line) for line in lines]
    metrics = json.loads((out / "metrics.json").read_text())
    wrong = [p for p in predictions if not p["correct"]]
    right = [p for p in predictions if p["correct"]]
    assert wrong and right
    positions = {p["id"]: html.index(f"{p['id']}: {p['instruction']}<") for p in predictions}
    assert max(positions[p["id"]] for p in wrong) < min(positions[p["id"]] for p in right)
    assert html.count('class="mark box target"') == 6 and html.count('class="mark prediction"') == 6

    page.goto(html_path.as_uri())
    tiles = page.evaluate("[...document.querySelectorAll('.tile')].map(t => t.innerText)")
    assert f"{100 * metrics['accuracy']:.1f}%\naccuracy" in tiles
    # The per-split table: each platform/type cell with its share as a percentage.
    cells = metrics["splits"]["platform/type"]
    rows = page.evaluate("[...document.querySelectorAll('.tables table')][0].innerText")
    for name, cell in cells.items():
        assert f"{name}\t{cell['n']}\t{cell['correct']}\t{100 * cell['accuracy']:.1f}%" in rows
    # Failures grouped by kind, each group counted.
    kinds = page.evaluate("[...document.querySelectorAll('.kinds li')].map(li => li.innerText)")
    assert any(k.startswith(f"point outside the target box: {len(wrong)}") for k in kinds), kinds
    pixels = pixels_of(page, tmp_path)
    region = (pixels[..., 1] > 150) & (pixels[..., 0] < 80) & (pixels[..., 2] < 80)
    assert region.any()  # a green target box is drawn


def test_report_on_a_directory_that_is_neither_is_a_clear_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "qvl_agent", "report", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "neither a run directory" in result.stderr


def test_an_eval_killed_mid_write_still_gets_its_page(tmp_path):
    """The last prediction line torn mid-character (a kill, a full disk): the page shows every
    whole record and says how many lines it left out."""
    data = write_synthetic_screenspot(tmp_path, 4, hit_share=0.5, seed=5)
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "qvl_agent", "eval", "--format", "screenspot",
         "--annotations", str(data["annotations"]), "--images", str(data["images"]),
         "--model", f"scripted:{data['script']}", "--out", str(out)],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    predictions = out / "predictions.jsonl"
    whole = [json.loads(line) for line in predictions.read_text().split("\n") if line]
    with predictions.open("ab") as file:
        file.write('{"id": "torn", "instruction": "é'.encode()[:-1])
    html = report(out, tmp_path / "e.html").read_text()
    assert "1 unreadable lines left out" in html
    for record in whole:
        assert f"{record['id']}: {record['instruction']}<" in html
