"""The benchmarks still run and write their figures (a smoke test: it asserts no speed)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_bench(script: str, out: Path, *arguments: str) -> dict:
    """Run ``bench/<script>`` writing its figures to ``out``; returns them."""
    result = subprocess.run([sys.executable, str(ROOT / "bench" / script), *arguments, "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text())


def test_step_latency_bench_runs(tmp_path):
    figures = run_bench("step_latency.py", tmp_path / "latency.json", "--steps", "1",
                        "--frames", "desktop 1920x1080", "--budgets", "1280*28*28")
    run = figures["runs"]["desktop 1920x1080 @ 1280*28*28"]
    assert run["resized"] == "1316x728" and run["prompt_tokens"] > 1222
    assert run["ours"]["decode_tokens_per_s"] > 0 and run["baseline"]["total"] > 0


def test_step_overhead_bench_runs(tmp_path):
    figures = run_bench("step_overhead.py", tmp_path / "overhead.json", "--steps", "1")
    assert figures["max_pixels=1280*28*28"]["resized"] == "1316x728"
    assert figures["max_pixels=default"]["overhead_ms"] > 0


def test_android_capture_bench_runs(tmp_path):
    figures = run_bench("android_capture.py", tmp_path / "android.json", "--runs", "2")
    assert figures["capture_raw_ms"] > 0 and figures["capture_png_ms"] > 0 and figures["tap_round_trip_ms"] > 0


def test_eval_throughput_bench_runs(tmp_path):
    figures = run_bench("eval_throughput.py", tmp_path / "eval.json", "--samples", "12", "--workers", "1,2", "--runs", "1")
    assert figures["workers"]["1"]["samples_per_s"] > 0 and figures["workers"]["2"]["speedup"] > 0


def test_serve_client_bench_runs(tmp_path, tiny_checkpoint):
    figures = run_bench("serve_client.py", tmp_path / "serve.json", "--model", str(tiny_checkpoint),
                        "--requests", "2", "--runs", "1", "--levels", "1,2", "--max-new-tokens", "4")
    assert figures["image"] == "672x1484" and figures["prompt_tokens"] > 1272
    assert figures["per_request_ms"]["server"] > 0 and figures["per_request_ms"]["overhead"] > 0
    assert set(figures["throughput"]) == {"1", "2"} and figures["throughput"]["1"]["speedup"] == 1
