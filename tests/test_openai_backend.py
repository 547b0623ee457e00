"""The endpoint backend against a loopback server whose answers each test scripts: what it
sends, retries and their pauses, the errors a user sees, and that the key stays secret."""

import base64
import io
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from environments.android_sim.session import free_port
from qvl_agent.geometry import Frame, Monitor, model_view
from qvl_agent.models import ModelError, load_model
from qvl_agent.models.openai_api import EndpointModel, normalise_base_url
from qvl_agent.parsing import parse
from qvl_agent.prompts import build_prompt
from qvl_agent.trajectory import read_run
from tests.agent_helpers import tool_call
from tests.fault_server import HANG, FaultServer, Reply, completion, error

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-test-7d3f0a9c1b"
FRAME = Frame.fit(Monitor(width=1080, height=2400), max_pixels=1280 * 28 * 28)
CLICK = tool_call("mobile", action="click", coordinate=[300, 500])


def screen(seed: int = 0) -> Image.Image:
    """A phone screenshot of flat random blocks (noise would make every PNG megabytes)."""
    blocks = np.random.default_rng(seed).integers(0, 256, (24, 12, 3), dtype=np.uint8)
    return model_view(Image.fromarray(blocks).resize((1080, 2400), Image.Resampling.NEAREST), FRAME)


def prompt(goal: str = "Turn on Wi-Fi"):
    return build_prompt(
        goal,
        "mobile",
        FRAME,
        ['{"name": "mobile_use", "arguments": {"action": "open", "text": "Settings"}}'],
    )


@pytest.fixture
def fault():
    with FaultServer() as server:
        yield server


def endpoint(server: FaultServer, **options) -> EndpointModel:
    options = {"timeout": 5.0, "backoff": 0.01, "max_retries": 2, **options}
    return EndpointModel(server.url, "qwen-test", api_key=KEY, **options)


def test_sends_the_same_prompt_and_exactly_the_resized_screenshot(fault):
    fault.plan = [completion(CLICK, prompt_tokens=1350, completion_tokens=31, cached_tokens=900)]
    image, asked = screen(), prompt()
    response = endpoint(fault, max_new_tokens=77).respond(asked, image)

    (request,) = fault.chat_requests()
    assert request.headers["authorization"] == f"Bearer {KEY}"
    body = request.json()
    assert body["model"] == "qwen-test" and body["max_tokens"] == 77 and body["temperature"] == 0
    system, user = body["messages"]
    assert system == {"role": "system", "content": asked.messages[0].text}
    text_part, image_part = user["content"]
    assert user["role"] == "user" and text_part == {"type": "text", "text": asked.messages[1].text}
    url = image_part["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert sent.format == "PNG" and sent.size == FRAME.resized_size == (672, 1484)
    assert np.array_equal(
        np.asarray(sent.convert("RGB")), np.asarray(image)
    )  # lossless, not rescaled
    # Equal bounds, in both spellings Qwen processors read: a vLLM server cannot pick another size.
    pixels = 672 * 1484
    assert body["mm_processor_kwargs"] == {
        "min_pixels": pixels,
        "max_pixels": pixels,
        "size": {"shortest_edge": pixels, "longest_edge": pixels},
    }

    assert response.text == CLICK
    assert (response.prompt_tokens, response.generated_tokens, response.cached_prompt_tokens) == (
        1350,
        31,
        900,
    )
    assert {"encode", "request", "parse"} <= set(
        response.timings
    ) and "retry" not in response.timings
    assert parse(response.text, FRAME, "mobile").action.coordinate.model == (300, 500)


def test_a_qwen3_vl_endpoint_gets_its_factor_32_image_pinned_and_before_the_text(fault):
    """Qwen3-VL sees 32-pixel merged patches: the image is sent exactly at its factor-32 size,
    pinned with the ``size`` bounds its processor reads, in the order the prompt puts it."""
    from qvl_agent.families import get_family

    family = get_family("qwen3-vl-ground")
    frame = family.frame(Monitor(width=1080, height=2400), max_pixels=1280 * 32 * 32)
    assert frame.resized_size == (768, 1696) and frame.factor == 32
    image = model_view(Image.new("RGB", (1080, 2400), (30, 60, 90)), frame)
    answer = '[{"bbox_2d": [100, 900, 300, 950], "label": "Send"}]'
    fault.plan = [completion(answer)]
    model = endpoint(fault, factor=32)
    response = model.respond(family.grounding().prompt("the Send icon", frame), image)

    body = fault.chat_requests()[0].json()
    pinned = {"shortest_edge": 768 * 1696, "longest_edge": 768 * 1696}
    assert body["mm_processor_kwargs"]["size"] == pinned
    (user,) = body["messages"]  # Qwen3-VL's grounding prompt has no system turn
    image_part, text_part = user["content"]
    assert image_part["type"] == "image_url"
    assert text_part["text"].startswith("Locate the Send icon")
    sent = Image.open(io.BytesIO(base64.b64decode(image_part["image_url"]["url"].split(",", 1)[1])))
    assert sent.size == (768, 1696)
    assert np.array_equal(np.asarray(sent.convert("RGB")), np.asarray(image))
    assert frame.to_screen(*family.grounding().parse(response.text, frame).point) == (216, 2220)

    # A screenshot resized with Qwen2.5-VL's factor 28 would be resized again by the server:
    # it is refused before anything is sent.
    with pytest.raises(ModelError, match="multiples of 32"):
        model.respond(family.grounding().prompt("the Send icon", frame), screen())
    assert len(fault.chat_requests()) == 1
    with pytest.raises(ModelError, match="factor"):
        endpoint(fault, factor=0)


def test_429_is_retried_after_the_pause_the_server_asks_for(fault):
    fault.plan = [error(429, "slow down", {"Retry-After": "1"}), completion(CLICK)]
    started = time.monotonic()
    response = endpoint(fault).respond(prompt(), screen())
    assert response.text == CLICK
    requests = fault.chat_requests()
    assert len(requests) == 2 and requests[1].at - requests[0].at >= 1.0  # Retry-After honoured
    assert response.timings["retry"] >= 1000 and time.monotonic() - started < 4


def test_server_errors_back_off_exponentially_then_give_up_with_the_reason(fault):
    fault.plan = [error(503, "loading"), error(502, "bad gateway"), completion(CLICK)]
    assert endpoint(fault, backoff=0.2).respond(prompt(), screen()).text == CLICK
    first, second, third = (r.at for r in fault.chat_requests())
    assert second - first >= 0.2 and third - second >= 0.4  # 0.2 s, then twice that

    fault.plan = [error(500, "CUDA out of memory")] * 3
    with pytest.raises(
        ModelError, match=r"HTTP 500: CUDA out of memory \(gave up after 3 attempts\)"
    ):
        endpoint(fault).respond(prompt(), screen())


def test_malformed_answers_are_clear_errors_not_retried(fault):
    fault.plan = [Reply(body=b"<html>proxy error</html>")]
    with pytest.raises(ModelError, match="not JSON: '<html>proxy error</html>'"):
        endpoint(fault).respond(prompt(), screen())
    fault.plan = [Reply(body={"id": "x", "choices": []})]
    with pytest.raises(ModelError, match="not a chat completion"):
        endpoint(fault).respond(prompt(), screen())
    assert len(fault.chat_requests()) == 2


def test_a_hanging_server_is_a_prompt_clear_error(fault):
    fault.plan = [HANG, HANG]
    started = time.monotonic()
    with pytest.raises(
        ModelError, match=r"gave no answer within 0.5 s \(gave up after 2 attempts\)"
    ):
        endpoint(fault, timeout=0.5, max_retries=1).respond(prompt(), screen())
    assert time.monotonic() - started < 3


def test_an_unreachable_endpoint_says_so():
    model = EndpointModel(
        f"http://127.0.0.1:{free_port()}", "m", timeout=2, max_retries=1, backoff=0.01
    )
    with pytest.raises(
        ModelError, match=r"could not reach http://127.0.0.1:\d+/v1/chat/completions.*2 attempts"
    ):
        model.respond(prompt(), screen())


def test_a_wrong_model_name_lists_what_the_endpoint_serves(fault):
    fault.models = ["Qwen/Qwen2.5-VL-7B-Instruct", "Qwen/Qwen2.5-VL-3B-Instruct"]
    fault.plan = [error(404, "The model `qwen-test` does not exist.")]
    with pytest.raises(ModelError) as raised:
        endpoint(fault).respond(prompt(), screen())
    assert "does not exist" in str(raised.value)
    assert "it serves: Qwen/Qwen2.5-VL-7B-Instruct, Qwen/Qwen2.5-VL-3B-Instruct" in str(
        raised.value
    )
    with pytest.raises(ModelError, match="no model 'qwen-test'"):
        endpoint(fault).check()  # what the CLI calls before the first step


@pytest.mark.parametrize(
    ("status", "message", "advice"),
    [
        (
            400,
            "This model's maximum context length is 8192 tokens. However, you requested 9650 tokens",
            "lower --max-pixels",
        ),
        (413, "Request Entity Too Large", "lower --max-pixels"),
        (400, "gpt-3.5-turbo is not a multimodal model", "does not take images"),
        (422, "temperature: must be >= 0", "temperature"),
    ],
)
def test_client_errors_say_what_to_change(fault, status, message, advice):
    fault.plan = [error(status, message)]
    with pytest.raises(ModelError, match=f"HTTP {status}") as raised:
        endpoint(fault).respond(prompt(), screen())
    assert message in str(raised.value) and advice in str(raised.value)
    assert len(fault.chat_requests()) == 1  # not retried


def test_vllm_flat_error_bodies_are_read_too(fault):
    fault.plan = [
        Reply(
            status=400,
            body={
                "object": "error",
                "message": "Prompt length of 16601 is longer than "
                "the maximum model length of 10000.",
                "type": "BadRequestError",
            },
        )
    ]
    with pytest.raises(ModelError, match="16601.*lower --max-pixels"):
        endpoint(fault).respond(prompt(), screen())


def test_a_server_without_pixel_bounds_gets_the_image_alone(fault):
    fault.plan = [
        error(400, "Unrecognized request argument supplied: mm_processor_kwargs"),
        completion(CLICK),
    ]
    model = endpoint(fault)
    assert model.respond(prompt(), screen()).text == CLICK
    first, second = fault.chat_requests()
    assert "mm_processor_kwargs" in first.json() and "mm_processor_kwargs" not in second.json()
    model.respond(prompt(), screen())
    assert "mm_processor_kwargs" not in fault.chat_requests()[-1].json()  # remembered


def test_tool_calls_parsed_by_the_server_come_back_as_the_trained_format(fault):
    call = {
        "id": "c1",
        "type": "function",
        "function": {
            "name": "mobile_use",
            "arguments": json.dumps({"action": "click", "coordinate": [10, 20]}),
        },
    }
    fault.plan = [completion(None, tool_calls=[call])]
    text = endpoint(fault).respond(prompt(), screen()).text
    assert text.startswith("<tool_call>\n") and parse(
        text, FRAME, "mobile"
    ).action.coordinate.model == (10, 20)


def test_the_key_is_never_in_names_or_errors(fault):
    fault.plan = [
        error(401, f"Incorrect API key provided: {KEY}. You can find your API key at ...")
    ]
    model = endpoint(fault)
    with pytest.raises(ModelError) as raised:
        model.respond(prompt(), screen())
    assert KEY not in str(raised.value) and KEY not in repr(model) and KEY not in model.name
    assert "refused the API key" in str(raised.value) and "--api-key-env" in str(raised.value)


def test_one_backend_serves_many_threads_each_its_own_answer(fault):
    def by_goal(request):
        user = request.json()["messages"][1]["content"][0]["text"]
        time.sleep(0.05)  # keep several requests in flight at once
        return completion(user.split("query:  ", 1)[1].split("\n", 1)[0])

    fault.respond = by_goal
    model, image = endpoint(fault), screen()
    goals = [f"goal number {i}" for i in range(16)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda goal: model.respond(prompt(goal), image).text, goals))
    assert answers == goals


def test_base_urls_are_normalised():
    assert normalise_base_url("http://gpu:8000") == "http://gpu:8000/v1"
    assert normalise_base_url("http://gpu:8000/v1/") == "http://gpu:8000/v1"
    assert normalise_base_url("http://gpu:8000/v1/chat/completions") == "http://gpu:8000/v1"
    assert (
        normalise_base_url("https://dashscope.aliyuncs.com/compatible-mode/v1")
        == "https://dashscope.aliyuncs.com/compatible-mode/v1"
    )
    with pytest.raises(ModelError, match="http"):
        normalise_base_url("gpu:8000")
    model = load_model("m", endpoint="http://user:pw@gpu:8000")
    assert model.name == "endpoint:m@http://gpu:8000/v1"


# -- through the command line ------------------------------------------------------------


def qvl(*args, env=None, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "qvl_agent", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


def test_a_run_through_an_endpoint_records_usage_and_never_the_key(fault, tmp_path):
    Image.new("RGB", (1366, 768), "white").save(tmp_path / "shot.png")
    fault.plan = [
        completion(tool_call(action="left_click", coordinate=[683, 384]), 1400, 25),
        completion(tool_call(action="terminate", status="success"), 1420, 20),
    ]
    result = qvl(
        "run",
        "Click the centre",
        "--device",
        f"image:{tmp_path / 'shot.png'}",
        "--dry-run",
        "--endpoint",
        fault.url,
        "--model",
        "qwen-test",
        "--api-key-env",
        "MY_ENDPOINT_KEY",
        "--record",
        str(tmp_path / "run"),
        env={"MY_ENDPOINT_KEY": KEY},
    )
    assert result.returncode == 0, result.stderr
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in fault.requests)

    run = read_run(tmp_path / "run")
    assert run.meta.model == f"endpoint:qwen-test@{fault.url}"
    assert [(s.attempts[0].prompt_tokens, s.attempts[0].generated_tokens) for s in run.steps] == [
        (1400, 25),
        (1420, 20),
    ]
    assert "model.encode" in run.steps[0].timings and "model.request" in run.steps[0].timings
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    assert KEY not in result.stdout + result.stderr


def run_on_a_screenshot(tmp_path, *args):
    Image.new("RGB", (800, 600)).save(tmp_path / "shot.png")
    return qvl("run", "x", "--device", f"image:{tmp_path / 'shot.png'}", *args)


def test_the_command_line_says_when_the_key_variable_is_missing(fault, tmp_path):
    result = run_on_a_screenshot(tmp_path, "--endpoint", fault.url, "--api-key-env", "NO_KEY_VAR")
    assert result.returncode == 2 and "NO_KEY_VAR is not set" in result.stderr


def test_the_command_line_names_the_served_models_for_a_wrong_one(fault, tmp_path):
    result = run_on_a_screenshot(tmp_path, "--endpoint", fault.url, "--model", "Qwen/Qwen-72B")
    assert result.returncode == 2 and "it serves: qwen-test" in result.stderr
    assert "Traceback" not in result.stderr and not fault.chat_requests()
