"""The benchmarks still run and write their figures (a smoke test: it asserts no speed)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_step_latency_bench_runs(tmp_path):
    out = tmp_path / "latency.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "step_latency.py"), "--steps", "1", "--frames", "desktop 1920x1080",
         "--budgets", "1280*28*28", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    run = json.loads(out.read_text())["runs"]["desktop 1920x1080 @ 1280*28*28"]
    assert run["resized"] == "1316x728" and run["prompt_tokens"] > 1222
    assert run["ours"]["decode_tokens_per_s"] > 0 and run["baseline"]["total"] > 0


def test_step_overhead_bench_runs(tmp_path):
    out = tmp_path / "overhead.json"
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "step_overhead.py"), "--steps", "1", "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    assert figures["max_pixels=1280*28*28"]["resized"] == "1316x728"
    assert figures["max_pixels=default"]["overhead_ms"] > 0


def test_android_capture_bench_runs(tmp_path):
    out = tmp_path / "android.json"
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "android_capture.py"), "--runs", "2", "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    assert figures["capture_raw_ms"] > 0 and figures["capture_png_ms"] > 0 and figures["tap_round_trip_ms"] > 0
