"""What ``--watch`` costs a run, and how soon a recorded step reaches a watching page.

    python bench/watch_latency.py [--steps 30] [--out bench/results/watch_latency.json]

The agent runs a scripted model on a still 1920x1080 screenshot (no settle time), once
unwatched and once watched by one client that does what the page does: reads the event
stream and fetches each new screenshot. It prints, medians over --steps steps:

    step        the whole step (capture, resize, prompt, answer, parse, act, record), without
                and with the watch server (the hooks keep a reference to the screenshot; the
                JPEG is encoded on the server's thread when the page asks)
    delivery    from the moment a step is recorded to the moment the client has read the
                event that carries it (server-sent events over loopback); p95 and max too
    jpeg        encoding one screenshot for the page (on the server's thread)
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.figures import write_figures  # noqa: E402

CLICK = ('<tool_call>\n{"name": "computer_use", "arguments": {"action": "left_click", '
         '"coordinate": [658, 364]}}\n</tool_call>')


def _ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 2)


def _run(steps: int, scratch: Path, watched: bool) -> dict:
    from PIL import Image

    from qvl_agent.agent import Agent, AgentConfig
    from qvl_agent.devices.still import StillImageDevice
    from qvl_agent.models.scripted import ScriptedModel
    from qvl_agent.watch.session import WatchSession

    image = Image.radial_gradient("L").resize((1920, 1080)).convert("RGB")
    model = ScriptedModel([CLICK] * steps)
    config = AgentConfig(max_steps=steps, settle_seconds=0, max_pixels=1280 * 28 * 28)
    totals: list[float] = []
    recorded: dict[int, float] = {}
    received: dict[int, float] = {}
    session = WatchSession.start() if watched else None
    reader = None
    if session is not None:
        host, port = session.server.server_address[:2]
        token = session.url.split("token=")[1]
        connected = threading.Event()

        fetched: set[str] = set()

        def fetch(url: str) -> None:
            connection = http.client.HTTPConnection(host, port, timeout=30)
            connection.request("GET", f"{url}?token={token}")
            connection.getresponse().read()
            connection.close()

        def read() -> None:
            connection = http.client.HTTPConnection(host, port, timeout=30)
            connection.request("GET", f"/events?token={token}")
            answer = connection.getresponse()
            connected.set()
            for line in answer.fp:
                if not line.startswith(b"data: "):
                    continue
                now = time.perf_counter()
                message = json.loads(line[6:])
                for run in message["runs"].values():
                    for step in run["steps"]:
                        received.setdefault(step["index"], now)
                    shot = (run.get("current") or {}).get("shot")
                    if shot and shot not in fetched:  # as the page's <img> does
                        fetched.add(shot)
                        threading.Thread(target=fetch, args=(shot,), daemon=True).start()
                if message["closed"]:
                    break
            connection.close()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        connected.wait(10)
        control = session.control
        original = control.recorded

        def recorded_now(step) -> None:
            recorded[step.index] = time.perf_counter()
            original(step)

        control.recorded = recorded_now
    agent = Agent(model, StillImageDevice(image), config,
                  on_step=lambda step: totals.append(step.timings["total"] / 1000),
                  steering=session.control if session is not None else None)
    agent.run("bench", record=scratch / ("watched" if watched else "plain"))
    figures: dict = {"step_ms": _ms(totals)}
    if session is not None:
        session.close()
        reader.join(10)
        delays = sorted(received[i] - recorded[i] for i in recorded if i in received)
        figures.update(
            delivery_ms=_ms(delays),
            delivery_p95_ms=round(delays[int(0.95 * (len(delays) - 1))] * 1000, 2),
            delivery_max_ms=round(delays[-1] * 1000, 2),
            delivered=f"{len(delays)}/{len(recorded)}",
        )
        encode = []
        for _ in range(5):
            started = time.perf_counter()
            from qvl_agent.imaging import preview_jpeg
            from qvl_agent.watch.feed import PAGE_WIDTH

            preview_jpeg(image, max_width=PAGE_WIDTH, exact=False)
            encode.append(time.perf_counter() - started)
        figures["jpeg_ms"] = _ms(encode)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "bench" / "results" / "watch_latency.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        plain = _run(args.steps, Path(scratch), watched=False)
        watched = _run(args.steps, Path(scratch), watched=True)
    figures = {"steps": args.steps, "unwatched": plain, "watched": watched}
    print(f"step (median of {args.steps}): unwatched {plain['step_ms']} ms, watched "
          f"{watched['step_ms']} ms")
    print(f"recorded -> read by the page's event stream: median {watched['delivery_ms']} ms, "
          f"p95 {watched['delivery_p95_ms']} ms, max {watched['delivery_max_ms']} ms "
          f"({watched['delivered']} steps)")
    print(f"JPEG of a 1920x1080 screenshot for the page: {watched['jpeg_ms']} ms")
    write_figures(args.out, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
