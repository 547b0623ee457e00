"""Per-stage model latency of one agent step, the cookbook path against ours, side by side.

    python bench/step_latency.py                       # tiny random checkpoint, CPU
    python bench/step_latency.py --checkpoint random-3b --dtype bfloat16 --device cuda
                                                       # the full Qwen2.5-VL-3B config with
                                                       # random weights (a GPU)
    python bench/step_latency.py --checkpoint /path/to/Qwen2.5-VL-3B-Instruct
    python bench/step_latency.py --checkpoint random-qwen3-vl-4b --device cuda
                                                       # the Qwen3-VL-4B config (tiny-qwen3-vl:
                                                       # its tiny twin); frames resized with
                                                       # the checkpoint's factor (32)

For each frame (1920x1080 desktop, 1080x2400 phone) and pixel budget (1280*28*28 and the
checkpoint default) it times, median over --steps runs after a warm-up:

    resize      ours: once, up front (the baseline resizes inside its processor)
    preprocess  patches + token ids (baseline: the stock processor on the full-size frame)
    vision      the vision encoder alone
    prefill     the language model over the prompt (full forward minus vision)
    ttft        time to first token: resize + preprocess + full forward
    decode      a fixed click tool call (~34 tokens) teacher-forced through the KV cache,
                so every run decodes the same answer whatever the weights say
    parse       the answer -> a resolved action
    total       ttft + decode + parse

Paths (columns; --paths picks some):
    baseline    the cookbook: stock image processor on the full frame, then the model
    ours        qvl-agent's inputs (one resize, patchify into a reused buffer, ids with
                expanded pads, cached system-turn ids), plain forward passes
    ours+cache  + the system turn's KV cache reused (every step after a run's first),
                decoded by LocalModel's greedy decoder
    +force      + the tool call's fixed tokens drafted and verified in one pass each. The
                fixed answer is taken as the model's choice, so drafts are accepted where a
                model that follows the format (as the trained one does) accepts them;
                that forcing never changes an answer is shown by tests/test_forcing.py
    +static     + a static KV cache
    +compiled   + the decode pass compiled (torch.compile; CUDA graphs on a GPU). Its first
                step compiles (minutes for the 3B): the warm-up run absorbs it

With a known GPU (H100, H200) or --bandwidth-tbs/--peak-tflops it also prints the physical
limits: decode <= HBM bandwidth / bytes read per pass (the language model's weights and the
KV cache), prefill >= 2 * parameters * tokens / peak dense bf16 FLOP/s (vision and language
model; attention's own FLOPs left out), and how far each measured figure is from them.
Writes bench/results/step_latency.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.figures import write_figures  # noqa: E402
FRAMES = {"desktop 1920x1080": (1920, 1080, "computer"), "phone 1080x2400": (1080, 2400, "mobile")}
# Pixel areas; "default": the checkpoint's max_pixels (Qwen2.5-VL 12845056, Qwen3-VL 16777216).
BUDGETS = {"1280*28*28": 1280 * 28 * 28, "default": None}
ANSWER = ('<tool_call>\n{"name": "%s", "arguments": {"action": "%s", "coordinate": [%d, %d]}}\n'
          "</tool_call><|im_end|>")
# The decoder paths: LocalModel's decode mode and whether the scaffold is forced.
DECODER_PATHS = {"ours+cache": ("dynamic", False), "+force": ("dynamic", True),
                 "+static": ("static", True), "+compiled": ("compiled", True)}
PATHS = ("baseline", "ours", *DECODER_PATHS)


def synthetic_screen(width: int, height: int):
    """A UI-like frame: flat panels, edges, text-sized noise (random noise compresses
    nothing and is not what the processor sees)."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    image = Image.new("RGB", (width, height), (242, 242, 242))
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y = int(rng.integers(0, width - 200)), int(rng.integers(0, height - 60))
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        draw.rectangle((x, y, x + int(rng.integers(40, 400)), y + int(rng.integers(20, 120))), fill=colour)
        draw.text((x + 6, y + 6), "Button %d" % rng.integers(0, 99), fill=(0, 0, 0))
    return image


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


class Timer:
    def __init__(self, torch, device):
        self.torch, self.device = torch, device

    def __call__(self, function, *args, **kwargs):
        self.sync()
        start = time.perf_counter()
        value = function(*args, **kwargs)
        self.sync()
        return value, time.perf_counter() - start

    def sync(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)


def load(model_spec: str, scratch: Path, device: str | None, dtype: str | None, attention: str | None):
    from qvl_agent.models.checkpoint import build_random_checkpoint
    from qvl_agent.models.local import LocalModel

    options = {"device": device, "dtype": dtype, "attn_implementation": attention}
    if model_spec == "tiny":
        return LocalModel(build_random_checkpoint(scratch / "tiny", "tiny"), **options)
    if model_spec == "random-3b":
        return LocalModel(build_random_checkpoint(scratch / "3b", "3b"), random_weights=True, **options)
    if model_spec == "tiny-qwen3-vl":
        checkpoint = build_random_checkpoint(scratch / "q3", "tiny", architecture="qwen3-vl")
        return LocalModel(checkpoint, **options)
    if model_spec == "random-qwen3-vl-4b":
        return LocalModel(build_random_checkpoint(scratch / "4b", "4b", architecture="qwen3-vl"),
                          random_weights=True, **options)
    return LocalModel(model_spec, **options)


def measure(model, decoders: dict, width: int, height: int, space: str, max_pixels: int,
            steps: int) -> dict:
    import torch

    from qvl_agent.geometry import Frame, Monitor, model_view
    from qvl_agent.parsing import parse
    from qvl_agent.prompts import build_prompt

    timer = Timer(torch, model.device)
    screen = synthetic_screen(width, height)
    frame = Frame.fit(Monitor(width=width, height=height), min(min_pixels(model), max_pixels),
                      max_pixels, model.factor)
    history = ['{"name": "%s", "arguments": {"action": "wait", "time": 1}}' % ("computer_use" if space == "computer" else "mobile_use")] * 2
    prompt = build_prompt("Open the settings and enable dark mode", space, frame, history)
    action = "left_click" if space == "computer" else "click"
    answer = ANSWER % ("computer_use" if space == "computer" else "mobile_use", action,
                       frame.resized_width // 2, frame.resized_height // 2)
    answer_ids = model.tokenizer(answer, return_tensors="pt")["input_ids"][0].to(model.device)
    visual = model.model.model.visual if hasattr(model.model, "model") else model.model.visual

    rows: dict[str, dict[str, list[float]]] = {path: {} for path in ("baseline", "ours", *decoders)}
    for run in range(steps + 1):  # the first run warms up (fills system-turn caches, compiles)
        for path in ("baseline", "ours"):
            times: dict[str, float] = {}
            if path == "ours":
                image, times["resize"] = timer(model_view, screen, frame)
                inputs, times["preprocess"] = timer(model.encode, prompt, image)
            else:
                times["resize"] = 0.0
                inputs, times["preprocess"] = timer(_cookbook_inputs, model, prompt, screen, max_pixels)
            with torch.inference_mode():
                _, times["vision"] = timer(visual, inputs["pixel_values"], grid_thw=inputs["image_grid_thw"])
                # One logits row, as generate()'s prefill keeps (not 150k x prompt length).
                out, forward = timer(model.model, **inputs, use_cache=True, logits_to_keep=1)
                times["prefill"] = forward - times["vision"]
                times["ttft"] = times["resize"] + times["preprocess"] + forward
                _, times["decode"] = timer(_teacher_forced_decode, model.model, inputs, out, answer_ids)
            _, times["parse"] = timer(parse, answer, frame, space)
            times["total"] = times["ttft"] + times["decode"] + times["parse"]
            times["decode_passes"], times["prefill_tokens"] = len(answer_ids) - 1, 1
            if run > 0:
                _record(rows[path], times)
        for path, (decoder, force) in decoders.items():
            scaffold = model.scaffold_for(prompt.chat_text()) if force else None
            times = _decoder_path(decoder, scaffold, inputs, answer_ids.tolist(), times, timer)
            if run > 0:
                _record(rows[path], times)
    result = {"resized": f"{frame.resized_width}x{frame.resized_height}",
              "prompt_tokens": int(inputs["input_ids"].shape[1]), "answer_tokens": len(answer_ids),
              "image_patches": int(inputs["pixel_values"].shape[0])}
    counts = ("decode_passes", "prefill_tokens", "forced_tokens", "cached_prompt_tokens")
    for path, stages in rows.items():
        medians = {stage: median_ms(values) for stage, values in stages.items() if stage not in counts}
        medians.update({count: int(stages[count][-1]) for count in counts if count in stages})
        decided = len(answer_ids) - medians["prefill_tokens"]  # tokens out of the decode stage
        medians["decode_tokens_per_s"] = round(decided / (medians["decode"] / 1000), 1)
        medians["decode_passes_per_s"] = round(medians["decode_passes"] / (medians["decode"] / 1000), 1)
        medians["total_over_baseline"] = round(medians["total"] / median_ms(rows["baseline"]["total"]), 3)
        result[path] = medians
    return result


def min_pixels(model) -> int:
    """The checkpoint's own min_pixels (Qwen2.5-VL 3136, Qwen3-VL 65536)."""
    return int(model.image_processor.size["shortest_edge"])


def _record(rows: dict[str, list[float]], times: dict[str, float]) -> None:
    for stage, value in times.items():
        rows.setdefault(stage, []).append(value)


def _decoder_path(decoder, scaffold, inputs: dict, answer: list[int], ours: dict, timer) -> dict:
    """Our inputs (this run's resize, preprocess, vision and parse times), then the answer
    teacher-forced through ``decoder``: its prefill reuses the system turn's cache and, with
    a scaffold, takes the fixed tokens from verified drafts."""
    import torch

    with torch.inference_mode():
        decoded, _ = timer(decoder.decode, inputs, len(answer), timer.sync, scaffold, answer)
    assert decoded.token_ids == answer, "the teacher-forced answer came out different"
    times = {stage: ours[stage] for stage in ("resize", "preprocess", "vision", "parse")}
    prefill = decoded.timings["prefill"] / 1000
    times["prefill"] = prefill - times["vision"]
    times["ttft"] = times["resize"] + times["preprocess"] + prefill
    times["decode"] = decoded.timings["decode"] / 1000
    times["total"] = times["ttft"] + times["decode"] + times["parse"]
    times.update(decode_passes=decoded.decode_passes, prefill_tokens=decoded.prefill_tokens,
                 forced_tokens=decoded.forced_tokens, cached_prompt_tokens=decoded.reused_tokens)
    return times


def _cookbook_inputs(model, prompt, screen, max_pixels: int) -> dict:
    """The stock processor on the full-size frame, then the expanded text tokenized."""
    bounds = {"shortest_edge": min(min_pixels(model), max_pixels), "longest_edge": max_pixels}
    vision = model.image_processor(images=[screen], size=bounds, return_tensors="pt")
    pads = int(vision["image_grid_thw"].prod()) // model.merge_size**2
    text = prompt.chat_text().replace("<|image_pad|>", "<|image_pad|>" * pads)
    encoded = model.tokenizer(text, return_tensors="pt")
    return {"input_ids": encoded["input_ids"].to(model.device),
            "attention_mask": encoded["attention_mask"].to(model.device),
            # as Qwen2_5_VLProcessor returns them: 1 marks image tokens
            "mm_token_type_ids": (encoded["input_ids"] == model.image_pad_id).int().to(model.device),
            "pixel_values": vision["pixel_values"].to(model.device, model.dtype),
            "image_grid_thw": vision["image_grid_thw"].to(model.device)}


def _teacher_forced_decode(network, inputs: dict, prefill, answer_ids) -> None:
    """Feed the fixed answer one token at a time through the KV cache (greedy decoding's
    cost without depending on what random weights would say)."""
    import torch

    from qvl_agent.models.decoding import cache_argument

    name = cache_argument(network.forward)  # "cache" from transformers 5.24 on
    cache = getattr(prefill, name)
    length = inputs["input_ids"].shape[1]
    device = inputs["input_ids"].device
    for index, token in enumerate(answer_ids[:-1]):
        # No attention mask (one unpadded sequence): the model then places the token at
        # cache_position + the rope offset the prefill stored, as generate() does.
        step = network(input_ids=token.view(1, 1), **{name: cache},
                       cache_position=torch.tensor([length + index], device=device), use_cache=True)
        int(step.logits[0, -1].argmax())  # greedy's pick; generate() waits for it (stop check)
        cache = getattr(step, name)


# Dense bf16 peak and HBM bandwidth of the GPUs the issue names (datasheets), most specific
# first: (name parts, TB/s, TFLOP/s).
GPUS = [(("H200",), 4.8, 989.0), (("H100", "PCIe"), 2.0, 756.0), (("H100",), 3.35, 989.0)]


def gpu_limits(name: str | None, bandwidth_tbs: float | None, peak_tflops: float | None) -> dict | None:
    """The device's bandwidth and FLOP rate: the flags, else the datasheet of a known GPU."""
    known = next(((tbs, tflops) for parts, tbs, tflops in GPUS if name and all(p in name for p in parts)), None)
    if known is None and (bandwidth_tbs is None or peak_tflops is None):
        return None
    bandwidth_tbs = bandwidth_tbs or known[0]
    peak_tflops = peak_tflops or known[1]
    return {"bandwidth_tb_s": bandwidth_tbs, "peak_tflop_s": peak_tflops}


def model_sizes(model) -> dict:
    """Parameter counts and bytes that bound a pass: what a decode pass reads, what a
    prefill multiplies."""
    network = model.model.model
    text = network.language_model
    config = model.model.config.text_config
    element = next(model.model.parameters()).element_size()
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return {
        "text_layer_params": sum(p.numel() for p in text.layers.parameters()) + sum(p.numel() for p in text.norm.parameters()),
        "lm_head_params": model.model.lm_head.weight.numel(),
        "vision_params": sum(p.numel() for p in network.visual.parameters()),
        "bytes_per_param": element,
        "kv_bytes_per_token": 2 * config.num_hidden_layers * config.num_key_value_heads * head_dim * element,
    }


def limits_for(run: dict, path: str, sizes: dict, device: dict) -> dict:
    """How far ``path``'s figures in ``run`` are from the bandwidth and FLOP limits."""
    figures = run[path]
    context = run["prompt_tokens"] + run["answer_tokens"] // 2
    pass_bytes = ((sizes["text_layer_params"] + sizes["lm_head_params"]) * sizes["bytes_per_param"]
                  + sizes["kv_bytes_per_token"] * context)
    passes_limit = device["bandwidth_tb_s"] * 1e12 / pass_bytes
    prefilled = run["prompt_tokens"] - figures.get("cached_prompt_tokens", 0) + figures["prefill_tokens"] - 1
    flops = 2 * sizes["text_layer_params"] * prefilled + 2 * sizes["vision_params"] * run["image_patches"]
    forward_limit_ms = flops / (device["peak_tflop_s"] * 1e12) * 1000
    forward_ms = figures["vision"] + figures["prefill"]
    return {
        "decode_passes_per_s_limit": round(passes_limit, 1),
        "decode_passes_over_limit": round(figures["decode_passes_per_s"] / passes_limit, 3),
        "forward_ms_limit": round(forward_limit_ms, 2),
        "forward_over_limit": round(forward_ms / forward_limit_ms, 1),
    }


def print_table(results: dict) -> None:
    stages = ["resize", "preprocess", "vision", "prefill", "ttft", "decode", "parse", "total"]
    for name, run in results["runs"].items():
        print(f"\n{name}: resized {run['resized']}, {run['prompt_tokens']} prompt tokens, "
              f"{run['answer_tokens']} answer tokens")
        paths = [p for p in PATHS if p in run]
        print(f"{'stage (ms)':<22}" + "".join(f"{p:>12}" for p in paths))
        for stage in stages:
            print(f"{stage:<22}" + "".join(f"{run[p][stage]:>12.2f}" for p in paths))
        for key, label in (("decode_tokens_per_s", "decode tokens/s"), ("decode_passes", "decode passes"),
                           ("decode_passes_per_s", "decode passes/s"), ("total_over_baseline", "total / baseline")):
            print(f"{label:<22}" + "".join(f"{run[p][key]:>12}" for p in paths))
        if "limits" in run:
            print(f"{'passes/s limit':<22}" + "".join(
                f"{run['limits'][p]['decode_passes_per_s_limit']:>12}" for p in paths))
            print(f"{'  measured / limit':<22}" + "".join(
                f"{run['limits'][p]['decode_passes_over_limit']:>12}" for p in paths))
            print(f"{'forward ms limit':<22}" + "".join(f"{run['limits'][p]['forward_ms_limit']:>12}" for p in paths))
            print(f"{'  measured / limit':<22}" + "".join(f"{run['limits'][p]['forward_over_limit']:>12}" for p in paths))


def print_targets(results: dict) -> None:
    """The issue's targets (one H100, the 3B config, 1920x1080 at 1280*28*28) against the
    fastest path's figures."""
    run = results["runs"].get("desktop 1920x1080 @ 1280*28*28")
    if run is None:
        return
    best = min((p for p in PATHS[1:] if p in run), key=lambda p: run[p]["total"])
    figures = run[best]
    print(f"\ntargets (H100, 3B, desktop @ 1280*28*28); fastest path: {best}")
    for label, value, target, ok in (
        ("total / baseline", figures["total_over_baseline"], "<= 0.35", figures["total_over_baseline"] <= 0.35),
        ("ttft ms", figures["ttft"], "< 120", figures["ttft"] < 120),
        ("decode tokens/s", figures["decode_tokens_per_s"], ">= 150", figures["decode_tokens_per_s"] >= 150),
    ):
        print(f"  {label:<18}{value:>10}  target {target:<8} {'met' if ok else 'NOT met'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", "--model", dest="checkpoint", default="tiny",
                        help="tiny | random-3b | tiny-qwen3-vl | random-qwen3-vl-4b | a checkpoint "
                        "path or hub id")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when present)")
    parser.add_argument("--dtype", default=None, help="bfloat16, float16, float32 (default: bf16 on CUDA)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--frames", default=",".join(FRAMES))
    parser.add_argument("--budgets", default=",".join(BUDGETS))
    parser.add_argument("--paths", default=",".join(PATHS), help="columns, from: " + ", ".join(PATHS))
    parser.add_argument("--attention", default=None,
                        help="sdpa, flash_attention_2, eager (default: LocalModel's choice; sdpa with "
                        "+static/+compiled, which flash-attention cannot serve)")
    parser.add_argument("--bandwidth-tbs", type=float, default=None, help="HBM TB/s (default: the GPU's datasheet)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 TFLOP/s (default: datasheet)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "step_latency.json")
    args = parser.parse_args()
    paths = [path.strip() for path in args.paths.split(",")]
    unknown = set(paths) - set(PATHS)
    if unknown or not {"baseline", "ours"} <= set(paths):
        parser.error(f"--paths must include baseline and ours, from {', '.join(PATHS)}")
    import torch

    with tempfile.TemporaryDirectory() as scratch:
        static = any(DECODER_PATHS[path][0] != "dynamic" for path in paths if path in DECODER_PATHS)
        model = load(args.checkpoint, Path(scratch), args.device, args.dtype,
                     args.attention or ("sdpa" if static else None))
        decoders = {path: (model.new_decoder(DECODER_PATHS[path][0]), DECODER_PATHS[path][1])
                    for path in paths if path in DECODER_PATHS}
        gpu = torch.cuda.get_device_name(model.device) if model.device.type == "cuda" else None
        results = {"model": args.checkpoint, "device": str(model.device), "dtype": str(model.dtype),
                   "attention": model.attn_implementation, "torch": torch.__version__, "gpu": gpu,
                   "limits": gpu_limits(gpu, args.bandwidth_tbs, args.peak_tflops),
                   "sizes": model_sizes(model), "runs": {}}
        for frame_name in args.frames.split(","):
            width, height, space = FRAMES[frame_name]
            for budget in args.budgets.split(","):
                area = BUDGETS[budget] or int(model.image_processor.size["longest_edge"])
                run = measure(model, decoders, width, height, space, area, args.steps)
                if results["limits"]:
                    run["limits"] = {path: limits_for(run, path, results["sizes"], results["limits"])
                                     for path in PATHS if path in run}
                results["runs"][f"{frame_name} @ {budget}"] = run
    print(f"model {results['model']} on {results['device']} {gpu or ''} ({results['dtype']}, {results['attention']})")
    if results["limits"]:
        print(f"limits: {results['limits']['bandwidth_tb_s']} TB/s, {results['limits']['peak_tflop_s']} TFLOP/s")
    print_table(results)
    print_targets(results)
    write_figures(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
