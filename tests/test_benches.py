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
    # +compiled is left out: inductor's first compilation takes a minute on CI's CPU.
    figures = run_bench("step_latency.py", tmp_path / "latency.json", "--steps", "1",
                        "--frames", "desktop 1920x1080", "--budgets", "1280*28*28",
                        "--paths", "baseline,ours,ours+cache,+force,+static",
                        "--bandwidth-tbs", "0.05", "--peak-tflops", "1")
    run = figures["runs"]["desktop 1920x1080 @ 1280*28*28"]
    assert run["resized"] == "1316x728" and run["prompt_tokens"] > 1222
    assert run["ours"]["decode_tokens_per_s"] > 0 and run["baseline"]["total"] > 0
    assert run["ours+cache"]["cached_prompt_tokens"] > 500
    # The click's header, argument key and closing tokens come from verified drafts.
    assert run["ours"]["decode_passes"] == run["answer_tokens"] - 1
    for path in ("+force", "+static"):
        assert run[path]["forced_tokens"] >= 20 and run[path]["decode_passes"] < 15
    assert 0 < run["limits"]["+static"]["decode_passes_over_limit"] < 1


def test_step_latency_limits_for_the_3b_on_an_h100():
    """The bandwidth and FLOP limits the bench prints, for the real 3B architecture."""
    import importlib.util

    import torch
    import transformers

    from qvl_agent.models.checkpoint import model_config

    spec = importlib.util.spec_from_file_location("step_latency", ROOT / "bench" / "step_latency.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.gpu_limits("NVIDIA H100 80GB HBM3", None, None) == {"bandwidth_tb_s": 3.35, "peak_tflop_s": 989.0}
    assert bench.gpu_limits("NVIDIA H100 PCIe", None, None)["bandwidth_tb_s"] == 2.0
    assert bench.gpu_limits("NVIDIA H200", None, None)["bandwidth_tb_s"] == 4.8
    assert bench.gpu_limits(None, None, None) is None

    ids = {"bos_token_id": 151643, "eos_token_id": 151645, "vision_start_token_id": 151652,
           "vision_end_token_id": 151653, "vision_token_id": 151654, "image_token_id": 151655,
           "video_token_id": 151656}
    config = transformers.Qwen2_5_VLConfig(**model_config("3b", ids, 151936))
    with torch.device("meta"):
        network = transformers.Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    model = type("Loaded", (), {"model": network})()
    sizes = bench.model_sizes(model)
    embedding = 151936 * 2048
    assert sizes["text_layer_params"] + sizes["vision_params"] + embedding == 3_754_622_976
    run = {"prompt_tokens": 2226, "answer_tokens": 34, "image_patches": 4888,
           "ours": {"decode_passes_per_s": 100.0, "prefill_tokens": 1, "vision": 10.0, "prefill": 20.0}}
    limits = bench.limits_for(run, "ours", sizes, bench.gpu_limits("H100", None, None))
    # ~6.2 GB of weights a pass -> ~540 passes/s; ~19 TFLOP of prefill -> ~19 ms.
    assert 520 < limits["decode_passes_per_s_limit"] < 560
    assert 17 < limits["forward_ms_limit"] < 21


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


def test_androidcontrol_read_bench_runs(tmp_path):
    figures = run_bench("androidcontrol_read.py", tmp_path / "ac.json", "--episodes", "3",
                        "--steps", "2", "--nodes", "20", "--runs", "1")
    assert figures["reader_mb_per_s"] > 0 and figures["gunzip_mb_per_s"] > 0
    assert figures["ms_per_step"] > 0 and figures["skip_s"] > 0


def test_watch_latency_bench_runs(tmp_path):
    figures = run_bench("watch_latency.py", tmp_path / "watch.json", "--steps", "4")
    assert figures["watched"]["delivered"] == "4/4"
    assert figures["watched"]["delivery_ms"] >= 0 and figures["unwatched"]["step_ms"] > 0
