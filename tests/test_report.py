"""``qvl-agent report`` opened in a real headless Chromium: the screenshot shows and the
drawn mark sits on the pixel the action used."""

import json
import shutil
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
from tests.agent_helpers import tool_call

BLUE = (0, 0, 255)


def chromium_screenshot(page, out, size=(1400, 1400)):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "Debian's chromium is needed for the report tests (.ci/run installs it)"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--window-size={size[0]},{size[1]}", f"--screenshot={out}", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    return np.asarray(Image.open(out).convert("RGB")).astype(int)


def region(pixels, condition):
    ys, xs = np.nonzero(condition(pixels[..., 0], pixels[..., 1], pixels[..., 2]))
    assert len(xs), "nothing of that colour on the page"
    return xs, ys


def record_run(tmp_path, click_at, size=(1920, 1080)):
    Image.new("RGB", size, BLUE).save(tmp_path / "blue.png")
    frame = Frame.fit(Monitor(width=size[0], height=size[1]))
    model = ScriptedModel([tool_call(action="left_click", coordinate=list(frame.to_model(*click_at)))])
    device = StillImageDevice.from_file(tmp_path / "blue.png")
    # One step, so the page holds one screenshot.
    Agent(model, device, AgentConfig(settle_seconds=0, max_steps=1)).run("click the spot", record=tmp_path / "run")
    return tmp_path / "run"


def test_the_click_mark_sits_where_the_click_was(tmp_path):
    run_dir = record_run(tmp_path, (1500, 300))
    result = subprocess.run([sys.executable, "-m", "qvl_agent", "report", str(run_dir)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    page = run_dir / "report.html"
    html = page.read_text()
    assert "click the spot" in html and "left_click at (1500, 300)" in html
    assert "src=\"data:image/jpeg;base64," in html and "file:" not in html  # self-contained
    pixels = chromium_screenshot(page, tmp_path / "page.png")
    # The screenshot is on the page: a blue rectangle in the 16:9 shape of the screen.
    xs, ys = region(pixels, lambda r, g, b: (b > 200) & (r < 60) & (g < 60))
    left, top, width, height = xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    assert width > 600 and abs(width / height - 1920 / 1080) < 0.02
    # The magenta mark is centred on (1500, 300) of the screenshot, wherever the page put it.
    mx, my = region(pixels, lambda r, g, b: (r > 200) & (b > 200) & (g < 90))
    assert mx.mean() == pytest.approx(left + 1500 * width / 1920, abs=3)
    assert my.mean() == pytest.approx(top + 300 * height / 1080, abs=3)


def test_an_eval_page_shows_failures_first_with_target_and_prediction(tmp_path):
    data = write_synthetic_screenspot(tmp_path, 6, hit_share=0.5, seed=3)
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "qvl_agent", "eval", "--format", "screenspot",
                             "--annotations", str(data["annotations"]), "--images", str(data["images"]),
                             "--model", f"scripted:{data['script']}", "--max-pixels", str(1280 * 28 * 28),
                             "--out", str(out)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    report = subprocess.run([sys.executable, "-m", "qvl_agent", "report", str(out), "--out", str(tmp_path / "e.html")],
                            capture_output=True, text=True, timeout=60)
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "e.html").read_text()
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    wrong = [p for p in predictions if not p["correct"]]
    right = [p for p in predictions if p["correct"]]
    assert wrong and right
    positions = {p["id"]: html.index(f"{p['id']}: {p['instruction']}<") for p in predictions}
    assert max(positions[p["id"]] for p in wrong) < min(positions[p["id"]] for p in right)
    assert html.count('class="mark box"') == 6 and html.count('class="mark prediction"') == 6
    pixels = chromium_screenshot(tmp_path / "e.html", tmp_path / "page.png", size=(1400, 4000))
    region(pixels, lambda r, g, b: (g > 150) & (r < 60) & (b < 60))  # a green target box is drawn


def test_report_on_a_directory_that_is_neither_is_a_clear_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "qvl_agent", "report", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "neither a run directory" in result.stderr
