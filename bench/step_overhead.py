"""Per-step cost of everything but the model's forward pass, against the naive path.

    python bench/step_overhead.py [--steps 20] [--out bench/results/step_overhead.json]

On a 1920x1080 virtual desktop (Xvfb) with the sandbox app, for max_pixels = 1280*28*28
and the checkpoint default, it times each stage of a step, median over --steps steps:

    capture     mss screenshot of the monitor (DesktopDevice.screenshot)
    resize      to the model's size, once (torch antialiased bicubic)
    preprocess  the model's inputs: patches + token ids with the image pads expanded
                (LocalModel.encode, the code a real checkpoint runs; the tokenizer is the
                tiny test checkpoint's, as real weights cannot be downloaded here)
    prompt      rendering the system + user turns
    parse       model text -> resolved action
    execute     a left click through pyautogui on the X server
    record      PNG of the screenshot (on a background thread during the model's forward
                pass, so not part of the total)

The naive path is the cookbook's: the stock image processor on the full-size frame (it
resizes with Pillow and normalises in float), the same tokenizer, prompt, parse, execute.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.figures import write_figures  # noqa: E402
from environments.desktop_sim.session import SandboxProcess  # noqa: E402
from environments.xvfb import VirtualDisplay  # noqa: E402

RESPONSE = '<tool_call>\n{"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [%d, %d]}}\n</tool_call>'
SETTINGS = {"max_pixels=1280*28*28": 1280 * 28 * 28, "max_pixels=default": 12845056}


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - start


def run(steps: int) -> dict:
    from qvl_agent.devices.desktop import DesktopDevice
    from qvl_agent.geometry import Frame, model_view
    from qvl_agent.models.checkpoint import build_random_checkpoint
    from qvl_agent.models.local import LocalModel
    from qvl_agent.parsing import parse
    from qvl_agent.prompts import build_prompt

    results: dict = {"steps": steps, "screen": "1920x1080", "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory() as scratch, VirtualDisplay(1920, 1080) as display:
        os.environ["DISPLAY"] = display.name
        model = LocalModel(build_random_checkpoint(Path(scratch) / "tiny", "tiny"), device="cpu")
        processor = model.image_processor
        with SandboxProcess(display.name, Path(scratch) / "state.json") as app:
            device = DesktopDevice(display=display.name)
            pad = app.centre("pad")
            history = ['{"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [10, 10]}}'] * 3
            for label, max_pixels in SETTINGS.items():
                stages: dict[str, list[float]] = {k: [] for k in (
                    "capture", "resize", "preprocess", "prompt", "parse", "execute", "record",
                    "naive_preprocess")}
                for step in range(steps + 2):  # two warm-up steps
                    observation, t_capture = timed(device.screenshot)
                    frame = Frame.fit(observation.monitor, max_pixels=max_pixels)
                    image, t_resize = timed(model_view, observation.image, frame)
                    prompt, t_prompt = timed(lambda: build_prompt("Click the pad", "computer", frame, history))
                    _, t_pre = timed(model.encode, prompt, image)
                    _, t_naive = timed(naive_encode, model, processor, prompt, observation.image, max_pixels)
                    x, y = frame.to_model(*pad)
                    parsed, t_parse = timed(parse, RESPONSE % (x, y), frame, "computer")
                    _, t_execute = timed(device.execute, parsed.action)
                    _, t_record = timed(lambda: observation.image.save(io.BytesIO(), "PNG", compress_level=1))
                    if step >= 2:
                        for name, value in (("capture", t_capture), ("resize", t_resize), ("preprocess", t_pre),
                                            ("prompt", t_prompt), ("parse", t_parse), ("execute", t_execute),
                                            ("record", t_record), ("naive_preprocess", t_naive)):
                            stages[name].append(value)
                medians = {name: median_ms(values) for name, values in stages.items()}
                ours = sum(medians[k] for k in ("capture", "resize", "preprocess", "prompt", "parse", "execute"))
                naive = sum(medians[k] for k in ("capture", "naive_preprocess", "prompt", "parse", "execute"))
                results[label] = {
                    "resized": f"{frame.resized_width}x{frame.resized_height}",
                    "visual_tokens": frame.resized_width * frame.resized_height // 784,
                    "median_ms": medians,
                    "overhead_ms": round(ours, 2),
                    "naive_overhead_ms": round(naive, 2),
                    "naive_over_ours": round(naive / ours, 2),
                }
            device.close()
    return results


def naive_encode(model, processor, prompt, full_image, max_pixels: int):
    """The cookbook path: the stock processor resizes and normalises the full frame."""
    vision = processor(images=[full_image], size={"shortest_edge": 3136, "longest_edge": max_pixels},
                       return_tensors="pt")
    pads = int(vision["image_grid_thw"].prod()) // 4
    text = prompt.chat_text().replace("<|image_pad|>", "<|image_pad|>" * pads)
    return model.tokenizer(text, return_tensors="pt"), vision


def print_table(results: dict) -> None:
    rows = ["capture", "resize", "preprocess", "prompt", "parse", "execute", "record", "naive_preprocess"]
    labels = list(SETTINGS)
    print(f"step overhead on a {results['screen']} Xvfb frame, median of {results['steps']} steps "
          f"({results['cpu_count']} cores), ms")
    print(f"{'stage':<20}" + "".join(f"{label:>24}" for label in labels))
    print(f"{'(resized)':<20}" + "".join(f"{results[l]['resized']:>24}" for l in labels))
    for row in rows:
        print(f"{row:<20}" + "".join(f"{results[l]['median_ms'][row]:>24.2f}" for l in labels))
    print(f"{'overhead (ours)':<20}" + "".join(f"{results[l]['overhead_ms']:>24.2f}" for l in labels))
    print(f"{'overhead (naive)':<20}" + "".join(f"{results[l]['naive_overhead_ms']:>24.2f}" for l in labels))
    print(f"{'naive / ours':<20}" + "".join(f"{results[l]['naive_over_ours']:>23.2f}x" for l in labels))
    print("record runs on a background thread during the model's forward pass; not in the totals")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "step_overhead.json")
    args = parser.parse_args()
    results = run(args.steps)
    print_table(results)
    write_figures(args.out, results)
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
