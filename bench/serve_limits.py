"""`qvl-agent serve` under hostile load: what it answers and what it costs the server.

    python bench/serve_limits.py [--model tiny|PATH] [--serve-args "--read-timeout 3"]
                                 [--idle 200] [--wait 8] [--prompt-words 10000] [--huge-kb 150]

Starts the server on the tiny checkpoint (a child process) and measures:

1. --idle idle sockets plus one request without its blank line: the server's threads
   while they are open, the time a normal request takes meanwhile, and the threads --wait
   seconds later (they fall back only if the server times idle connections out);
2. three concurrent requests with a 13000x13000 PNG (~170 KB, 169 MP): their statuses and
   the growth of the server's peak memory (VmHWM, reset first);
3. one request with a --prompt-words text ("word " is 2 tokens to the tiny tokenizer), and
   one of --huge-kb kilobytes when given: status, seconds, peak memory growth (the tiny
   model's CPU attention grows with the square of the prompt: keep --huge-kb for a server
   with a prompt limit);
4. last (a server without limits may still be busy with one of them), the hostile requests
   (environments/hostile_http.py): how many, how many got another status than the table's,
   and how many of those were no 4xx at all (a 5xx, no answer within 10 s, or a server
   that stopped answering /health).

It only uses options every version of serve has, plus --serve-args, so that the same
script measures a checkout from before the limits (run it from that checkout's root).
Writes bench/results/serve_limits.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import socket
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.figures import write_figures  # noqa: E402
from environments import hostile_http  # noqa: E402
from environments.model_server import ModelServer  # noqa: E402

SERVED = "bench-limits"
MAX_BODY_BYTES = 64 * 1024 * 1024  # serve's default


def proc_field(pid: int, field: str) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split(f"{field}:")[1].split()[0])


def answered(address) -> bool:
    try:
        status, _ = hostile_http.exchange(address, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        return status == 200
    except OSError:
        return False


def hostile(address, good_url: str, skip: list[str]) -> dict:
    cases = hostile_http.hostile_requests(SERVED, good_url, MAX_BODY_BYTES)
    skipped = [what for what, _, _ in cases if any(part in what for part in skip)]
    cases = [case for case in cases if case[0] not in skipped]
    failures, not_4xx = [], 0
    for what, raw, expected in cases:
        try:
            status, _ = hostile_http.exchange(address, raw, half_close="half-closed" in what)
        except OSError as error:  # socket.timeout included: no answer in 10 s
            status = f"no answer ({type(error).__name__})"
        still = answered(address)
        if status != expected or not still:
            failures.append(f"{what}: {status} (expected {expected})"
                            + ("" if still else "; /health no longer answered"))
            not_4xx += not (isinstance(status, int) and 400 <= status < 500 and still)
    return {"cases": len(cases), "other_status": len(failures), "not_4xx": not_4xx,
            "failed": failures, "skipped": skipped}


def idle_sockets(address, pid: int, count: int, wait: float, request: bytes) -> dict:
    baseline = proc_field(pid, "Threads")
    sockets = [socket.create_connection(address) for _ in range(count)]
    partial = socket.create_connection(address)
    partial.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n")
    time.sleep(1.5)
    held = proc_field(pid, "Threads")
    started = time.perf_counter()
    try:
        status, _ = hostile_http.exchange(address, request, timeout=30)
    except OSError as error:
        status = f"no answer ({type(error).__name__})"
    took = time.perf_counter() - started
    time.sleep(wait)
    after = proc_field(pid, "Threads")
    for sock in [*sockets, partial]:
        sock.close()
    return {"idle_sockets": count, "threads_before": baseline, "threads_while_open": held,
            "normal_request_status": status, "normal_request_s": round(took, 2),
            f"threads_after_{wait:g}_s": after}


def peak_growth_mb(pid: int, act) -> tuple[object, float]:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = proc_field(pid, "VmHWM")
    result = act()
    return result, round((proc_field(pid, "VmHWM") - before) / 1024, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="tiny (built here) or a checkpoint")
    parser.add_argument("--serve-args", default="", help="extra `qvl-agent serve` options")
    parser.add_argument("--idle", type=int, default=200)
    parser.add_argument("--wait", type=float, default=8.0)
    parser.add_argument("--prompt-words", type=int, default=10000)
    parser.add_argument("--huge-kb", type=int, default=0)
    parser.add_argument(
        "--skip-cases", default="",
        help="comma-separated parts of hostile case names not to send (for a server without "
        "a prompt limit: '600 KB,20k messages' would run the model on 100k+ tokens)",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "serve_limits.json"
    )
    args = parser.parse_args()
    from PIL import Image

    from qvl_agent.models.checkpoint import build_random_checkpoint
    from qvl_agent.openai_wire import png_data_url

    good_url = png_data_url(Image.new("RGB", (112, 84), "white"))
    normal = hostile_http.post(json.dumps(hostile_http.chat(SERVED, good_url)).encode())
    bomb = hostile_http.post(json.dumps(hostile_http.chat(
        SERVED, hostile_http.data_url(hostile_http.zero_png(13000, 13000)))).encode())
    prompts = {"long_prompt": ("word " * args.prompt_words, args.prompt_words * 5)}
    if args.huge_kb:
        prompts["huge_prompt"] = ("word " * (args.huge_kb * 1024 // 5), args.huge_kb * 1024)
    figures: dict = {"serve_args": args.serve_args, "root": str(ROOT)}
    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = args.model
        if checkpoint == "tiny":
            checkpoint = str(build_random_checkpoint(Path(scratch) / "tiny", "tiny"))
        arguments = ["--model", checkpoint, "--served-model-name", SERVED,
                     "--max-new-tokens", "4", *shlex.split(args.serve_args)]

        @contextlib.contextmanager
        def fresh_server():
            """A new server per measurement: one that is still busy with an earlier
            request (a server without limits may be, for minutes) would skew the next."""
            with ModelServer(arguments, env={"OMP_NUM_THREADS": "1"}) as server:
                host, port = server.url.split("//")[1].split("/")[0].rsplit(":", 1)
                yield (host, int(port)), server.process.pid

        with fresh_server() as (address, pid):
            figures["idle"] = idle_sockets(address, pid, args.idle, args.wait, normal)

        def send_bomb(address) -> tuple[object, float]:
            started = time.perf_counter()
            try:
                status = hostile_http.exchange(address, bomb, timeout=300)[0]
            except OSError as error:
                status = f"no answer ({type(error).__name__})"
            return status, round(time.perf_counter() - started, 1)

        with fresh_server() as (address, pid):
            def three_bombs():
                with ThreadPoolExecutor(3) as pool:
                    return list(pool.map(send_bomb, [address] * 3))

            answers, growth = peak_growth_mb(pid, three_bombs)
        figures["png_13000x13000_x3"] = {
            "statuses": [status for status, _ in answers],
            "seconds": [seconds for _, seconds in answers], "peak_growth_mb": growth,
        }
        print(json.dumps(figures, indent=2), flush=True)

        for name, (text, size) in prompts.items():
            request = hostile_http.post(
                json.dumps(hostile_http.chat(SERVED, good_url, text)).encode()
            )
            with fresh_server() as (address, pid):
                def ask(address=address, request=request):
                    started = time.perf_counter()
                    try:
                        status, body = hostile_http.exchange(address, request, timeout=600)
                    except OSError as error:
                        status, body = f"no answer ({type(error).__name__})", b""
                    usage = json.loads(body).get("usage", {}) if status == 200 else {}
                    return status, round(time.perf_counter() - started, 2), usage

                (status, seconds, usage), growth = peak_growth_mb(pid, ask)
            figures[name] = {"text_bytes": size, "status": status, "seconds": seconds,
                             "prompt_tokens": usage.get("prompt_tokens"),
                             "peak_growth_mb": growth}
            print(json.dumps(figures[name]), flush=True)

        with fresh_server() as (address, pid):
            skip = [part for part in args.skip_cases.split(",") if part]
            figures["hostile"] = hostile(address, good_url, skip)
            figures["still_answering"] = answered(address)
    print(json.dumps(figures, indent=2))
    write_figures(args.out, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
