"""`qvl-agent serve` cannot be taken down: hostile requests get 4xx and the server goes on
answering; prompts past the limit, huge images, idle sockets and floods of connections
cost it nothing lasting. One real child server with small limits, talked to over raw
sockets; plus in-process servers where the model must be watched or held."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from environments import hostile_http
from environments.model_server import ModelServer
from environments.processes import wait_for
from qvl_agent.openai_wire import png_data_url
from qvl_agent.server.completions import CompletionService, RequestError
from qvl_agent.server.httpd import ChatServer

ROOT = Path(__file__).resolve().parent.parent
NAME = "tiny-limits"
CONTEXT = 1024  # the checkpoint copy's max_position_embeddings
NEW_TOKENS = 4
READ_TIMEOUT = 3.0
MAX_BODY = 4_000_000
MAX_IMAGE_PIXELS = 2_000_000
MAX_CONNECTIONS = 240


def small_image(seed: int = 0, size: tuple[int, int] = (112, 84)) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels)


GOOD_URL = png_data_url(small_image())


def chat(image_url: str, text: str = "What is on the screen?", model: str = NAME, **extra) -> dict:
    return hostile_http.chat(model, image_url, text, **{"max_tokens": NEW_TOKENS, **extra})


@pytest.fixture(scope="module")
def server(tiny_checkpoint, tmp_path_factory):
    """`qvl-agent serve` with small limits, on a copy of the tiny checkpoint whose context
    is CONTEXT tokens (the limit the server must read from the model's config)."""
    checkpoint = tmp_path_factory.mktemp("short-context") / "tiny"
    shutil.copytree(tiny_checkpoint, checkpoint)
    config = json.loads((checkpoint / "config.json").read_text())
    config["max_position_embeddings"] = CONTEXT
    (checkpoint / "config.json").write_text(json.dumps(config))
    with ModelServer(
        [
            "--model", str(checkpoint), "--served-model-name", NAME,
            "--max-new-tokens", str(NEW_TOKENS),
            "--read-timeout", str(READ_TIMEOUT), "--max-body-bytes", str(MAX_BODY),
            "--max-image-pixels", str(MAX_IMAGE_PIXELS),
            "--max-connections", str(MAX_CONNECTIONS),
        ],
        env={"OMP_NUM_THREADS": "1"},
        log_path=tmp_path_factory.mktemp("serve-limits") / "requests.log",
    ) as child:
        yield child


def address(server) -> tuple[str, int]:
    host, port = server.url.split("//")[1].split("/")[0].rsplit(":", 1)
    return host, int(port)


def exchange(server, data: bytes, **options):
    return hostile_http.exchange(address(server), data, **options)


def threads_of(server) -> int:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return int(status.split("Threads:")[1].split()[0])


def reset_peak_memory(server) -> None:
    Path(f"/proc/{server.process.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS


def peak_memory_mb(server) -> float:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def answered(server) -> bool:
    return httpx.get(server.url.removesuffix("/v1") + "/health", timeout=10).status_code == 200


def test_hostile_requests_get_4xx_and_the_server_goes_on_answering(server):
    hostile = hostile_http.hostile_requests(NAME, GOOD_URL, MAX_BODY)
    wrong = []
    for what, raw, expected in hostile:
        half_close = "half-closed" in what
        status, answer = exchange(server, raw, half_close=half_close)
        if status != expected or len(answer) > 4096 or not answered(server):
            wrong.append(f"{what}: {status} {answer[:200]!r}")
            continue
        error = json.loads(answer)["error"]
        assert error["message"] and error["type"], what
    assert not wrong, f"{len(wrong)} of {len(hostile)} hostile requests:\n" + "\n".join(wrong)
    good = httpx.post(server.url + "/chat/completions", json=chat(GOOD_URL), timeout=60)
    assert good.status_code == 200, good.text
    assert "Traceback" not in server.log_path.read_text()


def test_a_prompt_past_the_models_context_is_refused_with_its_count(server):
    refused = httpx.post(
        server.url + "/chat/completions", json=chat(GOOD_URL, "word " * 2000), timeout=60
    )
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "context_length_exceeded" and error["param"] == "messages"
    assert f"the model's context of {CONTEXT} tokens" in error["message"]
    assert f"more than the {CONTEXT - NEW_TOKENS} allowed" in error["message"]


def test_a_huge_declared_image_is_refused_before_it_is_decoded(server):
    # 13000x13000 (a 170 KB file, 169 MP): three at once; decoding each would cost >500 MB.
    bomb = json.dumps(chat(hostile_http.data_url(hostile_http.zero_png(13000, 13000)))).encode()
    reset_peak_memory(server)
    before = peak_memory_mb(server)
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: exchange(server, hostile_http.post(bomb)), range(3)))
    for status, answer in answers:
        assert status == 400
        assert "13000x13000" in json.loads(answer)["error"]["message"]
    assert peak_memory_mb(server) - before < 100
    assert answered(server)


def test_idle_and_half_open_connections_free_their_threads(server):
    baseline = threads_of(server)
    idle = [socket.create_connection(address(server)) for _ in range(200)]
    partial = socket.create_connection(address(server))
    partial.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n")
    try:
        wait_for(lambda: threads_of(server) >= baseline + 150, 10, "the connections' threads")
        started = time.monotonic()
        good = httpx.post(server.url + "/chat/completions", json=chat(GOOD_URL), timeout=30)
        assert good.status_code == 200 and time.monotonic() - started < 10
        # Nothing arrives on them for READ_TIMEOUT: the server closes them all.
        wait_for(lambda: threads_of(server) <= baseline + 2, 15, "the threads to end")
        partial.settimeout(5)
        assert partial.recv(100) == b""  # closed by the server, without an answer
    finally:
        for sock in [*idle, partial]:
            sock.close()


def test_connections_past_the_limit_get_503_at_once(server):
    baseline = threads_of(server)
    held = [socket.create_connection(address(server)) for _ in range(MAX_CONNECTIONS)]
    try:
        wait_for(
            lambda: threads_of(server) >= baseline + MAX_CONNECTIONS - 5, 10, "every thread"
        )
        status, answer = exchange(server, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
        assert status == 503 and "limit" in json.loads(answer)["error"]["message"]
        assert threads_of(server) <= baseline + MAX_CONNECTIONS + 2
    finally:
        for sock in held:
            sock.close()
    wait_for(lambda: answered(server), 10, "the server to answer again")


# -- in process: the model watched or held -------------------------------------------------


class Watched:
    """The tiny model, counting its forward passes, optionally held at a gate."""

    def __init__(self, model, gate: threading.Event | None = None):
        self.model, self.gate, self.calls = model, gate, 0

    def __getattr__(self, name):
        return getattr(self.model, name)

    def respond_chat(self, *args):
        self.calls += 1
        if self.gate is not None:
            self.gate.wait(30)
        return self.model.respond_chat(*args)


def serving(service: CompletionService):
    server = ChatServer(("127.0.0.1", 0), service)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return server


def stop(server: ChatServer) -> None:
    server.shutdown()
    server.server_close()
    server.service.close()


def test_the_prompt_count_equals_the_models_and_the_limit_is_exact(tiny_local_model):
    request = chat(png_data_url(small_image(1, (364, 252))), "Describe it. " * 40, model="m")
    counted = CompletionService(Watched(tiny_local_model), "m", max_new_tokens=NEW_TOKENS)
    server = serving(counted)
    try:
        usage = httpx.post(server.url + "/chat/completions", json=request, timeout=60).json()
        prompt_tokens = usage["usage"]["prompt_tokens"]
    finally:
        stop(server)
    assert prompt_tokens > 13 * 9  # the image's 117 tokens and the text's

    for limit, status in ((prompt_tokens, 200), (prompt_tokens - 1, 400)):
        model = Watched(tiny_local_model)
        server = serving(CompletionService(model, "m", max_new_tokens=NEW_TOKENS,
                                           max_prompt_tokens=limit))
        try:
            answer = httpx.post(server.url + "/chat/completions", json=request, timeout=60)
        finally:
            stop(server)
        assert answer.status_code == status
        assert model.calls == (status == 200)  # refused before any forward pass
    message = answer.json()["error"]["message"]
    assert f"{prompt_tokens} (" in message and "117 image" in message
    assert "--max-prompt-tokens" in message


def test_a_full_queue_refuses_before_reading_or_decoding(tiny_local_model):
    gate = threading.Event()
    model = Watched(tiny_local_model, gate)
    service = CompletionService(model, "m", max_new_tokens=NEW_TOKENS, max_queue=1)
    server = serving(service)
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(
                httpx.post, server.url + "/chat/completions",
                json=chat(GOOD_URL, model="m"), timeout=60,
            )
            wait_for(lambda: model.calls == 1, 10, "the first request at the model")
            # An unreadable image would be a 400 if it were decoded: the queue comes first.
            full = httpx.post(
                server.url + "/chat/completions",
                json=chat("data:image/png;base64,aGVsbG8=", model="m"), timeout=10,
            )
            assert full.status_code == 503 and full.headers["retry-after"] == "1"
            with pytest.raises(RequestError) as refused:  # the service's own check, too
                service.complete(b"[" * 100_000)
            assert refused.value.status == 503
            gate.set()
            assert first.result(timeout=30).status_code == 200
    finally:
        gate.set()
        stop(server)


@pytest.mark.parametrize(
    ("option", "value"),
    [("--max-prompt-tokens", "0"), ("--max-image-pixels", "-1"), ("--max-body-bytes", "0"),
     ("--read-timeout", "nan"), ("--read-timeout", "0"), ("--max-connections", "0")],
)
def test_a_nonsense_limit_is_a_one_line_error_before_the_model_loads(option, value, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "qvl_agent", "serve", "--model", str(tmp_path / "no-model"),
         option, value],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()  # one line, and no model was loaded
    assert line.startswith(f"error: {option} ") and "is out of range: use" in line
