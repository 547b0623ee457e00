"""The endpoint client against `qvl-agent serve`: overhead per request, and throughput with
several requests in flight.

    python bench/serve_client.py [--model tiny|PATH] [--requests 32] [--runs 3] [--levels 1,4,16]

The server runs the tiny checkpoint by default (a child process, as `qvl-agent serve` runs);
every request is an agent step: the phone prompt (1080x2400 at max_pixels 1280*28*28, the
screenshot seen at 672x1484) and a fixed answer length (--max-new-tokens).

1. Overhead per request, sequential, median over --requests after a warm-up:
       encode     screenshot -> PNG data URL -> messages (EndpointModel.respond's first stage)
       request    the HTTP round trip the client sees
       server     the model's own time, as the server reports it (openai-processing-ms):
                  LocalModel answering the rendered chat, what a step costs in-process
       transport  request - server: HTTP both ways, the server's JSON parsing, PNG decoding
                  and chat template; the cost of serving the model instead of holding it
       parse      the answer's JSON -> Response
       overhead   encode + transport + parse: what the endpoint adds to a step
2. Throughput (requests/s) with 1, 4 and 16 requests in flight: that many threads share one
   EndpointModel, --requests per run, median of --runs runs; speedup over 1 in flight.
   The server answers one request at a time (one worker owns the model); what concurrency
   buys here is the client's encoding and the transport overlapping the model's work.
Writes bench/results/serve_client.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.figures import write_figures  # noqa: E402
from environments.model_server import ModelServer  # noqa: E402

SERVED = "bench-model"


def agent_step():
    """The prompt and screenshot of a phone step, as the agent would send them."""
    from bench.step_latency import synthetic_screen
    from qvl_agent.geometry import Frame, Monitor, model_view
    from qvl_agent.prompts import build_prompt

    frame = Frame.fit(Monitor(width=1080, height=2400), max_pixels=1280 * 28 * 28)
    history = ['{"name": "mobile_use", "arguments": {"action": "open", "text": "Settings"}}']
    prompt = build_prompt("Open Settings and turn on airplane mode", "mobile", frame, history)
    return prompt, model_view(synthetic_screen(1080, 2400), frame), frame


def median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def overhead(model, prompt, image, requests: int) -> dict:
    model.respond(prompt, image)  # warm-up: connection, the server's caches
    stages: dict[str, list[float]] = {
        k: [] for k in ("encode", "request", "server", "transport", "parse", "overhead")
    }
    for _ in range(requests):
        timings = model.respond(prompt, image).timings
        transport = timings["request"] - timings["server"]
        for name, value in (
            ("encode", timings["encode"]),
            ("request", timings["request"]),
            ("server", timings["server"]),
            ("transport", transport),
            ("parse", timings["parse"]),
            ("overhead", timings["encode"] + transport + timings["parse"]),
        ):
            stages[name].append(value)
    return {name: median(values) for name, values in stages.items()}


def throughput(model, prompt, image, in_flight: int, requests: int) -> float:
    with ThreadPoolExecutor(in_flight) as pool:
        list(
            pool.map(lambda _: model.respond(prompt, image), range(in_flight))
        )  # warm every connection
        started = time.perf_counter()
        list(pool.map(lambda _: model.respond(prompt, image), range(requests)))
    return requests / (time.perf_counter() - started)


def print_table(results: dict) -> None:
    print(
        f"qvl-agent serve with {results['model']} ({results['image']} screenshot, "
        f"{results['prompt_tokens']} prompt tokens, {results['max_new_tokens']} new tokens), "
        f"{results['cpu_count']} CPUs, "
        f"server on {results['server_threads']} threads"
    )
    print(f"\nper request, median of {results['requests']} (ms)")
    for name, value in results["per_request_ms"].items():
        print(f"  {name:<12}{value:>10.2f}")
    print(f"\nthroughput, median of {results['runs']} runs of {results['requests']} requests")
    print(f"  {'in flight':<12}{'req/s':>10}{'speedup':>10}")
    for level, figures in results["throughput"].items():
        print(f"  {level:<12}{figures['requests_per_s']:>10.2f}{figures['speedup']:>10.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default="tiny", help="tiny (built here) or a checkpoint directory"
    )
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--levels", default="1,4,16", help="requests in flight, comma-separated")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument(
        "--server-threads",
        type=int,
        default=max(1, (os.cpu_count() or 2) // 2),
        help="the server's torch threads (default half the CPUs: this client needs some too, "
        "and OpenMP threads that outnumber free cores slow every request by several times)",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "serve_client.json"
    )
    args = parser.parse_args()
    from qvl_agent.models.checkpoint import build_random_checkpoint
    from qvl_agent.models.openai_api import EndpointModel

    prompt, image, frame = agent_step()
    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = args.model
        if checkpoint == "tiny":
            checkpoint = str(build_random_checkpoint(Path(scratch) / "tiny", "tiny"))
        with ModelServer(
            [
                "--model",
                checkpoint,
                "--served-model-name",
                SERVED,
                "--max-new-tokens",
                str(args.max_new_tokens),
            ],
            env={"OMP_NUM_THREADS": str(args.server_threads)},
        ) as server:
            model = EndpointModel(server.url, SERVED, max_new_tokens=args.max_new_tokens)
            per_request = overhead(model, prompt, image, args.requests)
            prompt_tokens = model.respond(prompt, image).prompt_tokens
            rates = {
                level: median(
                    [
                        throughput(model, prompt, image, level, args.requests)
                        for _ in range(args.runs)
                    ]
                )
                for level in (int(text) for text in args.levels.split(","))
            }
            model.close()

    base = rates[min(rates)]
    results = {
        "model": args.model,
        "image": f"{frame.resized_width}x{frame.resized_height}",
        "prompt_tokens": prompt_tokens,
        "max_new_tokens": args.max_new_tokens,
        "cpu_count": os.cpu_count(),
        "server_threads": args.server_threads,
        "requests": args.requests,
        "runs": args.runs,
        "per_request_ms": per_request,
        "throughput": {
            str(level): {"requests_per_s": rate, "speedup": round(rate / base, 2)}
            for level, rate in rates.items()
        },
    }
    print_table(results)
    write_figures(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
