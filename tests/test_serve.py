"""`qvl-agent serve` as a real child process running the tiny checkpoint, talked to by the
official openai client, by our endpoint backend and by raw HTTP."""

import os
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
from PIL import Image

from environments import hostile_http
from environments.processes import wait_for
from qvl_agent.geometry import Frame, Monitor, model_view, smart_resize
from qvl_agent.models import ModelError
from qvl_agent.models.openai_api import EndpointModel
from qvl_agent.openai_wire import png_data_url
from qvl_agent.prompts import build_prompt
from qvl_agent.server.completions import CompletionService
from qvl_agent.server.httpd import ChatServer, check_bind
from tests.serve_fixtures import SERVE_KEY, SERVED_NAME

ROOT = Path(__file__).resolve().parent.parent
FRAME = Frame.fit(Monitor(width=1080, height=2400), max_pixels=400 * 28 * 28)  # 364x812
IMAGE_TOKENS = FRAME.resized_width * FRAME.resized_height // 28**2  # one per merged 28x28 patch


def screen(seed: int) -> Image.Image:
    blocks = np.random.default_rng(seed).integers(0, 256, (24, 12, 3), dtype=np.uint8)
    return model_view(Image.fromarray(blocks).resize((1080, 2400), Image.Resampling.NEAREST), FRAME)


def case(seed: int):
    """A distinct (prompt, screenshot) pair."""
    return build_prompt(f"Open the app number {seed}", "mobile", FRAME), screen(seed)


def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key=SERVE_KEY, max_retries=0, timeout=60)


def test_the_openai_client_gets_what_the_local_model_answers(tiny_server, tiny_local_model):
    prompt, image = case(1)
    direct = tiny_local_model.respond(prompt, image)
    system, user = prompt.messages
    completion = client(tiny_server).chat.completions.create(
        model=SERVED_NAME,
        max_tokens=12,
        temperature=0,
        messages=[
            {"role": "system", "content": system.text},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": user.text},
                    {"type": "image_url", "image_url": {"url": png_data_url(image)}},
                ],
            },
        ],
    )

    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-")
    assert completion.model == SERVED_NAME
    (choice,) = completion.choices
    assert choice.message.role == "assistant" and choice.finish_reason in ("stop", "length")
    assert choice.message.content == direct.text
    assert (
        completion.usage.prompt_tokens == direct.prompt_tokens > IMAGE_TOKENS
    )  # the image's tokens and the prompt's
    assert completion.usage.completion_tokens == direct.generated_tokens
    assert completion.usage.total_tokens == direct.prompt_tokens + direct.generated_tokens
    assert [model.id for model in client(tiny_server).models.list()] == [SERVED_NAME]


def test_our_backend_gets_the_same_answer_with_the_servers_time(tiny_server, tiny_local_model):
    prompt, image = case(2)
    direct = tiny_local_model.respond(prompt, image)
    answer = EndpointModel(tiny_server.url, SERVED_NAME, api_key=SERVE_KEY).respond(prompt, image)
    assert (answer.text, answer.prompt_tokens, answer.generated_tokens) == (
        direct.text,
        direct.prompt_tokens,
        direct.generated_tokens,
    )
    assert 0 < answer.timings["server"] <= answer.timings["request"]


def test_concurrent_requests_each_get_their_own_answer(tiny_server, tiny_local_model):
    cases = [case(seed) for seed in range(10, 14)]
    expected = [tiny_local_model.respond(prompt, image).text for prompt, image in cases]
    assert len(set(expected)) > 1  # the cases really differ
    model = EndpointModel(tiny_server.url, SERVED_NAME, api_key=SERVE_KEY)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda pair: model.respond(*pair).text, cases))
    assert answers == expected


def test_pixel_bounds_decide_the_size_the_model_sees(tiny_server):
    prompt, image = case(3)
    model = EndpointModel(tiny_server.url, SERVED_NAME, api_key=SERVE_KEY)
    exact = model.respond(prompt, image).prompt_tokens  # sent with min = max = its own area

    http = _http(tiny_server)
    quarter = FRAME.resized_width * FRAME.resized_height // 4
    smaller = http.post(
        "/chat/completions", json=_chat(image, mm_processor_kwargs={"max_pixels": quarter})
    )
    height, width = smart_resize(FRAME.resized_height, FRAME.resized_width, max_pixels=quarter)
    plain = http.post("/chat/completions", json=_chat(image)).json()["usage"]["prompt_tokens"]
    # The server rescaled as told (like vLLM's processor), and only when told.
    assert (
        plain - smaller.json()["usage"]["prompt_tokens"]
        == IMAGE_TOKENS - height * width // 28**2
        > 0
    )
    assert exact > plain  # our backend's prompt is the agent's, longer than _chat's question

    too_big = http.post(
        "/chat/completions", json=_chat(image, mm_processor_kwargs={"max_pixels": 10**9})
    )
    assert too_big.status_code == 400 and "image too large" in too_big.json()["error"]["message"]


@pytest.mark.parametrize(
    ("change", "status", "expected"),
    [
        ({"model": "gpt-4o"}, 404, "The model `gpt-4o` does not exist"),
        ({"messages": [{"role": "user", "content": "no image"}]}, 400, "exactly one image"),
        ({"messages": "hello"}, 400, "invalid request: messages"),
        ({"messages": [{"role": "tool", "content": "x"}]}, 400, "invalid request: messages.0.role"),
        ({"stream": True}, 400, "stream is not supported"),
        ({"image_url": "https://example.com/shot.png"}, 400, "must be a data URL"),
        ({"image_url": "data:image/png;base64,not*base64"}, 400, "not valid base64"),
        ({"image_url": "data:image/png;base64,aGVsbG8="}, 400, "not an image in a format"),
        ({"two_images": True}, 400, "this one has 2"),
        (
            {"mm_processor_kwargs": {"min_pixels": 9000, "max_pixels": 100}},
            400,
            "min_pixels 9000 > max_pixels 100",
        ),
    ],
)
def test_bad_requests_get_openai_errors(tiny_server, change, status, expected):
    image = screen(4)
    body = _chat(image)
    if "image_url" in change:
        body["messages"][1]["content"][1]["image_url"]["url"] = change.pop("image_url")
    if change.pop("two_images", False):
        body["messages"][1]["content"].append(body["messages"][1]["content"][1])
    body.update(change)
    answer = _http(tiny_server).post("/chat/completions", json=body)
    assert answer.status_code == status
    error = answer.json()["error"]
    assert expected in error["message"] and error["type"]


def test_malformed_http_and_a_wrong_key_do_not_stop_the_server(tiny_server):
    http = _http(tiny_server)
    assert (
        http.post("/chat/completions", content=b"{not json")
        .json()["error"]["message"]
        .startswith("the request body is not valid JSON")
    )
    assert http.get("/nope").status_code == 404
    wrong_key = httpx.post(
        tiny_server.url + "/chat/completions",
        json=_chat(screen(5)),
        headers={"Authorization": "Bearer wrong"},
    )
    assert (
        wrong_key.status_code == 401 and wrong_key.json()["error"]["type"] == "authentication_error"
    )
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=tiny_server.url, api_key="wrong", max_retries=0).models.list()
    with pytest.raises(ModelError, match="refused the API key") as raised:
        EndpointModel(tiny_server.url, SERVED_NAME, api_key="wrong-key-123").respond(*case(5))
    assert "wrong-key-123" not in str(raised.value)

    host, port = tiny_server.url.split("//")[1].split("/")[0].split(":")
    for raw in (
        b"POST /v1/chat/completions HTTP/1.x\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + SERVE_KEY.encode()
        + b"\r\nContent-Length: 999999999\r\n\r\n",
    ):
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(raw)
            answer = b"".join(iter(lambda: sock.recv(65536), b""))  # the server closes after it
        assert answer.split()[1] in (b"400", b"413") and b'"error"' in answer

    assert http.get(tiny_server.url.removesuffix("/v1") + "/health").json() == {"status": "ok"}
    assert http.post("/chat/completions", json=_chat(screen(5))).status_code == 200
    assert SERVE_KEY not in tiny_server.log_path.read_text()  # the request log never shows it


def test_a_bind_beyond_loopback_needs_allow_remote_and_a_key(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    missing = str(tmp_path / "no-model")  # the checks come before loading anything

    def serve(*args):
        return subprocess.run(
            [sys.executable, "-m", "qvl_agent", "serve", "--model", missing, *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=ROOT,
        )

    refused = serve("--host", "0.0.0.0")
    assert refused.returncode == 2 and "--allow-remote" in refused.stderr
    keyless = serve("--host", "0.0.0.0", "--allow-remote")
    assert keyless.returncode == 2 and "needs an API key" in keyless.stderr
    assert "Traceback" not in refused.stderr + keyless.stderr
    check_bind("0.0.0.0", allow_remote=True, api_key="k")  # both given: allowed
    check_bind("::1", allow_remote=False, api_key=None)  # loopback needs neither


def _http(server) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {SERVE_KEY}"}, timeout=60
    )


def _chat(image: Image.Image, **extra) -> dict:
    return hostile_http.chat(SERVED_NAME, png_data_url(image), **extra)


def test_a_full_queue_answers_503_and_our_client_waits_its_turn(tiny_local_model):
    """In-process server; the model is held at a gate so the queue fills up."""

    class Gated:
        def __init__(self, model):
            self.model, self.gate = model, threading.Event()

        def __getattr__(self, name):
            return getattr(self.model, name)

        def respond_chat(self, *args):
            self.gate.wait(30)
            return self.model.respond_chat(*args)

    class Counting(CompletionService):
        refused = 0

        def busy_error(self):  # a full queue is refused before the body is read
            self.refused += 1
            return super().busy_error()

    model = Gated(tiny_local_model)
    service = Counting(model, "gated", max_new_tokens=4, max_queue=2)
    server = ChatServer(("127.0.0.1", 0), service)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    client = EndpointModel(server.url, "gated", backoff=0.05, max_retries=3)
    cases = [case(seed) for seed in (20, 21, 22)]
    try:
        with ThreadPoolExecutor(3) as pool:
            first = [pool.submit(client.respond, *pair) for pair in cases[:2]]
            wait_for(lambda: service.in_flight == 2, 10, "two requests in flight")
            full = httpx.post(
                server.url + "/chat/completions",
                json={**_chat(screen(6)), "model": "gated"},
                timeout=10,
            )
            assert full.status_code == 503 and full.headers["retry-after"] == "1"
            assert full.json()["error"]["type"] == "server_overloaded"
            later = pool.submit(client.respond, *cases[2])
            wait_for(lambda: service.refused == 2, 10, "the third request to be refused")
            model.gate.set()  # it is retried after the 1 s the server asked for
            answers = [future.result(timeout=30) for future in (*first, later)]
        assert [a.text for a in answers] == [
            tiny_local_model.respond_chat(p.chat_text(), i, 4).text for p, i in cases
        ]
        assert answers[2].timings["retry"] >= 1000
    finally:
        model.gate.set()
        server.shutdown()
        server.server_close()
        service.close()
