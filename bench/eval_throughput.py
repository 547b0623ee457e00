"""Eval throughput of the scoring pipeline itself (no model time), with 1 and N workers.

    python bench/eval_throughput.py [--samples 1000] [--workers 1,2,4] [--runs 3]
                                    [--out bench/results/eval_throughput.json]

A synthetic ScreenSpot set (desktop, phone and web screenshots; v1 format) and a scripted
model that answers each instruction from a file, so the figures are what qvl-agent adds
around a model: reading and decoding the image, the resize, the prompt, parsing, scoring,
and writing predictions.jsonl. Each setting runs --runs times into a fresh directory; the
median samples/s is reported, with the speedup over 1 worker from the same run.
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

from bench.figures import write_figures  # noqa: E402
from environments.synthetic_screenspot import write_synthetic_screenspot  # noqa: E402
from qvl_agent.evaluation.runner import EvalConfig, run_eval  # noqa: E402
from qvl_agent.jsonl import read_lines  # noqa: E402
from qvl_agent.models.base import Response  # noqa: E402

MAX_PIXELS = 1280 * 28 * 28


class AnswersByInstruction:
    """A scripted model that answers by the instruction, so any worker order scores the same."""

    name = "scripted-by-instruction"

    def __init__(self, script: Path, count: int) -> None:
        lines = [line.text for line in read_lines(script)]
        self.answers = {f"target {i}": json.loads(lines[i])["response"] for i in range(count)}

    def respond(self, prompt, image) -> Response:
        query = prompt.messages[-1].text  # the computer_use prompt's user turn is the bare query
        return Response(text=self.answers[query])


def measure(data: dict, samples: int, workers: int, scratch: Path) -> tuple[float, dict]:
    config = EvalConfig(format="screenspot", annotations=str(data["annotations"]),
                        images=str(data["images"]), model=AnswersByInstruction.name, max_pixels=MAX_PIXELS)
    model = AnswersByInstruction(data["script"], samples)
    with open("/dev/null", "w") as quiet:
        started = time.perf_counter()
        metrics = run_eval(config, model, Path(tempfile.mkdtemp(dir=scratch)), workers=workers,
                           progress_stream=quiet)
        elapsed = time.perf_counter() - started
    return samples / elapsed, metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--workers", default="1,2,4", help="comma-separated worker counts")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "eval_throughput.json")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        data = write_synthetic_screenspot(scratch / "data", args.samples, max_pixels=MAX_PIXELS)
        rates: dict[int, list[float]] = {w: [] for w in counts}
        for _ in range(args.runs):  # interleaved, so drift on a shared machine hits every setting
            for workers in counts:
                rate, metrics = measure(data, args.samples, workers, scratch)
                # The pipeline must score right, or its speed means nothing.
                assert metrics["correct"] == data["hits"] and metrics["n"] == args.samples, metrics
                rates[workers].append(rate)
    base = statistics.median(rates[counts[0]])
    results = {"samples": args.samples, "runs": args.runs, "max_pixels": MAX_PIXELS,
               "workers": {str(w): {"samples_per_s": round(statistics.median(r), 2),
                                    "ms_per_sample": round(1000 / statistics.median(r), 2),
                                    "speedup": round(statistics.median(r) / base, 2),
                                    "all_runs": [round(x, 2) for x in r]} for w, r in rates.items()}}
    print(f"eval pipeline throughput, {args.samples} synthetic ScreenSpot samples, scripted model, "
          f"median of {args.runs} runs")
    print(f"{'workers':>8}{'samples/s':>12}{'ms/sample':>12}{'speedup':>10}")
    for workers, row in results["workers"].items():
        print(f"{workers:>8}{row['samples_per_s']:>12.1f}{row['ms_per_sample']:>12.2f}{row['speedup']:>9.2f}x")
    write_figures(args.out, results)


if __name__ == "__main__":
    main()
