"""Per-stage model latency of one agent step, the cookbook path against ours, side by side.

    python bench/step_latency.py                       # tiny random checkpoint, CPU
    python bench/step_latency.py --model random-3b     # the full Qwen2.5-VL-3B config with
                                                       # random weights, bf16 (use a GPU)
    python bench/step_latency.py --model /path/to/Qwen2.5-VL-3B-Instruct

For each frame (1920x1080 desktop, 1080x2400 phone) and pixel budget (1280*28*28 and the
checkpoint default) it times, median over --steps runs after a warm-up:

    resize      ours: once, up front (the baseline resizes inside its processor)
    preprocess  patches + token ids (baseline: the stock processor on the full-size frame)
    vision      the vision encoder alone
    prefill     the language model over the whole prompt (full forward minus vision)
    ttft        time to first token: resize + preprocess + full forward
    decode      a fixed click tool call (~30 tokens) teacher-forced through the KV cache,
                so every run decodes the same length whatever the weights say
    parse       the answer -> a resolved action
    total       ttft + decode + parse

Baseline = the cookbook: stock image processor on the full frame, then the model.
Ours     = qvl-agent's LocalModel path (one resize, patchify into a reused buffer, ids
           with expanded pads, cached system-turn ids).
Ours+cache = ours, with the system turn's KV cache reused (every step after a run's first).
Further switchable optimisations (forced tool-call scaffolding, static cache / compiled
decoding) are to be added as extra columns.
Writes bench/results/step_latency.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FRAMES = {"desktop 1920x1080": (1920, 1080, "computer"), "phone 1080x2400": (1080, 2400, "mobile")}
BUDGETS = {"1280*28*28": 1280 * 28 * 28, "default": 12845056}
ANSWER = ('<tool_call>\n{"name": "%s", "arguments": {"action": "%s", "coordinate": [%d, %d]}}\n'
          "</tool_call><|im_end|>")


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


def load(model_spec: str, scratch: Path):
    from qvl_agent.models.checkpoint import build_random_checkpoint
    from qvl_agent.models.local import LocalModel

    if model_spec == "tiny":
        return LocalModel(build_random_checkpoint(scratch / "tiny", "tiny"))
    if model_spec == "random-3b":
        return LocalModel(build_random_checkpoint(scratch / "3b", "3b"), random_weights=True)
    return LocalModel(model_spec)


def measure(model, width: int, height: int, space: str, max_pixels: int, steps: int) -> dict:
    import torch

    from qvl_agent.geometry import Frame, Monitor, model_view
    from qvl_agent.parsing import parse
    from qvl_agent.prompts import build_prompt

    timer = Timer(torch, model.device)
    screen = synthetic_screen(width, height)
    frame = Frame.fit(Monitor(width=width, height=height), max_pixels=max_pixels)
    history = ['{"name": "%s", "arguments": {"action": "wait", "time": 1}}' % ("computer_use" if space == "computer" else "mobile_use")] * 2
    prompt = build_prompt("Open the settings and enable dark mode", space, frame, history)
    action = "left_click" if space == "computer" else "click"
    answer = ANSWER % ("computer_use" if space == "computer" else "mobile_use", action,
                       frame.resized_width // 2, frame.resized_height // 2)
    answer_ids = model.tokenizer(answer, return_tensors="pt")["input_ids"][0].to(model.device)
    visual = model.model.model.visual if hasattr(model.model, "model") else model.model.visual

    rows: dict[str, dict[str, list[float]]] = {"baseline": {}, "ours": {}, "ours+cache": {}}
    for run in range(steps + 1):  # the first run warms up (and fills the system-turn cache)
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
                out, forward = timer(model.model, **inputs, use_cache=True)
                times["prefill"] = forward - times["vision"]
                times["ttft"] = times["resize"] + times["preprocess"] + forward
                _, times["decode"] = timer(_teacher_forced_decode, model.model, inputs, out, answer_ids)
            _, times["parse"] = timer(parse, answer, frame, space)
            times["total"] = times["ttft"] + times["decode"] + times["parse"]
            if run > 0:
                for stage, value in times.items():
                    rows[path].setdefault(stage, []).append(value)
            if path == "ours" and model.decoder is not None:
                cached = _with_system_cache(model, inputs, times, timer)
                if run > 0:
                    for stage, value in cached.items():
                        rows["ours+cache"].setdefault(stage, []).append(value)
    decoded = len(answer_ids) - 1
    result = {"resized": f"{frame.resized_width}x{frame.resized_height}",
              "prompt_tokens": int(inputs["input_ids"].shape[1]), "decoded_tokens": decoded}
    for path, stages in rows.items():
        medians = {stage: median_ms(values) for stage, values in stages.items() if stage != "cached_tokens"}
        if stages:
            medians["decode_tokens_per_s"] = round(decoded / (medians["decode"] / 1000), 1)
        if "cached_tokens" in stages:
            medians["cached_prompt_tokens"] = int(stages["cached_tokens"][-1])
        result[path] = medians
    if not rows["ours+cache"]:
        del result["ours+cache"]
    result["ours_over_baseline_total"] = round(result["ours"]["total"] / result["baseline"]["total"], 3)
    if "ours+cache" in result:
        result["ours+cache_over_baseline_total"] = round(
            result["ours+cache"]["total"] / result["baseline"]["total"], 3)
    return result


def _with_system_cache(model, inputs: dict, ours: dict, timer) -> dict:
    """Our path, with the prefill reusing the system turn's KV cache (as every step after
    the first does); the decode is the same as ours."""
    import torch

    with torch.inference_mode():
        decoded, _ = timer(model.decoder.decode, inputs, 1, timer.sync)
    times = dict(ours)
    times["prefill"] = decoded.timings["prefill"] / 1000 - ours["vision"]
    times["ttft"] = ours["resize"] + ours["preprocess"] + decoded.timings["prefill"] / 1000
    times["total"] = times["ttft"] + ours["decode"] + ours["parse"]
    times["cached_tokens"] = decoded.reused_tokens
    return times


def _cookbook_inputs(model, prompt, screen, max_pixels: int) -> dict:
    """The stock processor on the full-size frame, then the expanded text tokenized."""
    vision = model.image_processor(images=[screen], size={"shortest_edge": 3136, "longest_edge": max_pixels},
                                   return_tensors="pt")
    pads = int(vision["image_grid_thw"].prod()) // 4
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

    cache = prefill.past_key_values
    length = inputs["input_ids"].shape[1]
    device = inputs["input_ids"].device
    for index, token in enumerate(answer_ids[:-1]):
        # No attention mask (one unpadded sequence): the model then places the token at
        # cache_position + the rope offset the prefill stored, as generate() does.
        step = network(input_ids=token.view(1, 1), past_key_values=cache,
                       cache_position=torch.tensor([length + index], device=device), use_cache=True)
        step.logits[0, -1].argmax()  # greedy's pick, as generate would make it
        cache = step.past_key_values


def print_table(results: dict) -> None:
    stages = ["resize", "preprocess", "vision", "prefill", "ttft", "decode", "parse", "total"]
    for name, result in results["runs"].items():
        print(f"\n{name}: resized {result['resized']}, {result['prompt_tokens']} prompt tokens, "
              f"{result['decoded_tokens']} decoded")
        paths = [p for p in ("baseline", "ours", "ours+cache") if p in result]
        print(f"{'stage (ms)':<22}" + "".join(f"{p:>12}" for p in paths))
        for stage in stages:
            print(f"{stage:<22}" + "".join(f"{result[p][stage]:>12.2f}" for p in paths))
        print(f"{'decode tokens/s':<22}" + "".join(f"{result[p]['decode_tokens_per_s']:>12.1f}" for p in paths))
        print(f"{'total / baseline':<22}{1:>12.3f}{result['ours_over_baseline_total']:>12.3f}"
              + (f"{result['ours+cache_over_baseline_total']:>12.3f}" if "ours+cache" in result else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="tiny | random-3b | a checkpoint path or hub id")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--frames", default=",".join(FRAMES))
    parser.add_argument("--budgets", default=",".join(BUDGETS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "step_latency.json")
    args = parser.parse_args()
    import torch

    with tempfile.TemporaryDirectory() as scratch:
        model = load(args.model, Path(scratch))
        results = {"model": args.model, "device": str(model.device), "dtype": str(model.dtype),
                   "attention": model.attn_implementation, "torch": torch.__version__,
                   "gpu": torch.cuda.get_device_name() if model.device.type == "cuda" else None, "runs": {}}
        for frame_name in args.frames.split(","):
            width, height, space = FRAMES[frame_name]
            for budget in args.budgets.split(","):
                results["runs"][f"{frame_name} @ {budget}"] = measure(
                    model, width, height, space, BUDGETS[budget], args.steps)
    print(f"model {results['model']} on {results['device']} ({results['dtype']}, {results['attention']})")
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
