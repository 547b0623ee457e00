"""A synthetic ScreenSpot set with known answers, for eval tests and the eval benchmark.

Screenshots at desktop, phone and web sizes, each the subject of two instructions (as in
ScreenSpot, about 1,272 instructions over 610 screenshots); ``n`` instructions in the v1/v2
format (bbox = x, y, w, h), and a scripted model file whose answers hit the box for a known
share of the samples.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

from qvl_agent.geometry import Frame, Monitor

SCREENS = {"desktop": ("windows", (1920, 1080)), "mobile": ("android", (1080, 2400)), "web": ("shop", (1280, 720))}


def tool_call_text(point: tuple[int, int]) -> str:
    call = {"name": "computer_use", "arguments": {"action": "left_click", "coordinate": list(point)}}
    return f"<tool_call>\n{json.dumps(call)}\n</tool_call>"


def write_synthetic_screenspot(root: Path, n: int, hit_share: float = 0.75, seed: int = 0,
                               max_pixels: int = 1280 * 28 * 28) -> dict:
    """Writes ``root/images``, ``root/screenspot_synthetic.json`` and ``root/answers.jsonl``.

    Returns the paths and the number of answers that hit their box.
    """
    rng = random.Random(seed)
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    records, answers, hits = [], [], 0
    for index in range(n):
        platform = list(SCREENS)[index % len(SCREENS)]
        source, (width, height) = SCREENS[platform]
        image_name = f"{platform}_{index // (2 * len(SCREENS))}.png"  # two instructions per image
        if not (images / image_name).exists():
            _draw_screen(images / image_name, width, height, rng)
        w, h = rng.randint(40, 200), rng.randint(30, 120)
        x, y = rng.randint(0, width - w - 1), rng.randint(0, height - h - 1)
        records.append({"img_filename": image_name, "instruction": f"target {index}",
                        "bbox": [x, y, w, h], "data_type": "text" if index % 2 else "icon",
                        "data_source": source})
        frame = Frame.fit(Monitor(width=width, height=height), max_pixels=max_pixels)
        hit = rng.random() < hit_share
        # The box's centre (a hit), or a point well outside it (a miss).
        target = (x + w / 2, y + h / 2) if hit else ((x + w + 60) % width, (y + h + 60) % height)
        hits += hit
        answers.append({"response": tool_call_text(frame.to_model(*target))})
    annotations = root / "screenspot_synthetic.json"
    annotations.write_text(json.dumps(records), encoding="utf-8")
    script = root / "answers.jsonl"
    script.write_text("".join(json.dumps(a) + "\n" for a in answers), encoding="utf-8")
    return {"annotations": annotations, "images": images, "script": script, "hits": hits}


def _draw_screen(path: Path, width: int, height: int, rng: random.Random) -> None:
    picture = Image.new("RGB", (width, height), (235, 235, 235))
    pen = ImageDraw.Draw(picture)
    for _ in range(12):  # some widgets, so each screenshot is its own
        x, y = rng.randint(0, width - 200), rng.randint(0, height - 100)
        pen.rectangle((x, y, x + rng.randint(40, 200), y + rng.randint(20, 100)),
                      fill=(rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255)))
    picture.save(path, compress_level=1)
