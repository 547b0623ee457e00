"""How fast the AndroidControl reader gets through a GZIP TFRecord shard, against plain gunzip.

    python bench/androidcontrol_read.py [--episodes 40] [--steps 5] [--nodes 300] [--runs 3]
                                        [--out bench/results/androidcontrol_read.json]

A synthetic shard written as the official ones are (tests/dataset_builders.py): episodes of
1080x2400 PNG screenshots drawn with UI-like boxes and text, an accessibility forest of
--nodes nodes per screenshot, JSON actions. The reader's time covers everything an eval does
before the model loads: gunzip, both CRC32C checks per record, the Example and forest
protobufs, element boxes, writing each screenshot to the eval's images/ folder and reading its
header. The floor is gunzip alone; an episode outside the chosen split costs the framing,
checksums and Example parse ("skip"). Medians of --runs.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.figures import write_figures  # noqa: E402
from qvl_agent.evaluation.protos import parse_example  # noqa: E402
from qvl_agent.evaluation.runner import EvalConfig, load_dataset  # noqa: E402
from qvl_agent.evaluation.tfrecord import read_records  # noqa: E402
from tests.dataset_builders import example, forest, node, write_shard  # noqa: E402

SCREEN = (1080, 2400)


def screenshot(rng: random.Random) -> bytes:
    image = Image.new("RGB", SCREEN, "white")
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y = rng.randrange(0, 1000), rng.randrange(0, 2300)
        draw.rectangle((x, y, x + rng.randrange(40, 400), y + rng.randrange(30, 120)),
                       fill=tuple(rng.randrange(180, 256) for _ in range(3)), outline="grey")
        draw.text((x + 8, y + 8), f"item {rng.randrange(1000)}", fill="black")
    from io import BytesIO

    buffer = BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def tree(rng: random.Random, nodes: int) -> bytes:
    out = [node(0, (0, 0, *SCREEN), "android.widget.FrameLayout", children=tuple(range(1, nodes)))]
    for i in range(1, nodes):
        x, y = rng.randrange(0, 1000), rng.randrange(0, 2300)
        out.append(node(i, (x, y, x + rng.randrange(20, 300), y + rng.randrange(20, 150)),
                        text=f"label {i}" if i % 3 else "", visible=i % 7 != 0))
    return forest([out])


def write_data(folder: Path, episodes: int, steps: int, nodes: int) -> Path:
    rng = random.Random(0)
    shots = [screenshot(rng) for _ in range(8)]  # reused: drawing is not what is measured
    trees = [tree(rng, nodes) for _ in range(4)]
    records = []
    for episode in range(episodes):
        count = steps + 1
        records.append(example({
            "episode_id": [episode],
            "goal": [b"find the settings"],
            "screenshots": [shots[(episode + i) % len(shots)] for i in range(count)],
            "screenshot_widths": [SCREEN[0]] * count,
            "screenshot_heights": [SCREEN[1]] * count,
            "accessibility_trees": [trees[(episode + i) % len(trees)] for i in range(count)],
            "actions": [json.dumps({"action_type": "click", "x": 540, "y": 1200}).encode()] * steps,
            "step_instructions": [b"tap it"] * steps,
        }))
    return write_shard(folder / "android_control-00000-of-00001", records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--nodes", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "bench" / "results" / "androidcontrol_read.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        shard = write_data(scratch, args.episodes, args.steps, args.nodes)
        compressed = shard.stat().st_size
        gunzip, reader, skip = [], [], []
        for run in range(args.runs):
            started = time.perf_counter()
            with gzip.open(shard, "rb") as stream:
                raw = len(stream.read())
            gunzip.append(time.perf_counter() - started)
            started = time.perf_counter()
            episodes = sum(parse_example(data)["episode_id"][0] >= 0
                           for _, data in read_records(shard))
            skip.append(time.perf_counter() - started)
            assert episodes == args.episodes
            config = EvalConfig(format="androidcontrol", annotations=str(scratch), model="none")
            started = time.perf_counter()
            samples, skipped = load_dataset(config, scratch / f"images{run}")
            reader.append(time.perf_counter() - started)
            assert len(samples) == args.episodes * args.steps and not skipped, skipped[:3]
    read_s, floor_s = statistics.median(reader), statistics.median(gunzip)
    skip_s = statistics.median(skip)
    figures = {
        "episodes": args.episodes, "steps_per_episode": args.steps, "nodes_per_tree": args.nodes,
        "shard_mb": round(compressed / 1e6, 2), "uncompressed_mb": round(raw / 1e6, 2),
        "reader_s": round(read_s, 3), "gunzip_s": round(floor_s, 3), "skip_s": round(skip_s, 3),
        "reader_mb_per_s": round(compressed / 1e6 / read_s, 1),
        "gunzip_mb_per_s": round(compressed / 1e6 / floor_s, 1),
        "ms_per_step": round(1000 * read_s / (args.episodes * args.steps), 2),
    }
    print(f"shard {figures['shard_mb']} MB ({figures['uncompressed_mb']} MB uncompressed), "
          f"{args.episodes} episodes x {args.steps} steps, {args.nodes} nodes a tree")
    print(f"reader: {figures['reader_s']} s = {figures['reader_mb_per_s']} MB/s of shard, "
          f"{figures['ms_per_step']} ms a step; gunzip alone: {figures['gunzip_s']} s = "
          f"{figures['gunzip_mb_per_s']} MB/s; skipping every episode: {figures['skip_s']} s")
    write_figures(args.out, figures)


if __name__ == "__main__":
    main()
