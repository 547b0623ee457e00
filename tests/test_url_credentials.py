"""A password in ``--endpoint http://user:pass@host`` is masked wherever the API key is: the
terminal, meta.json, steps.jsonl, eval.json/metrics.json and every error message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from environments.synthetic_screenspot import write_synthetic_screenspot
from qvl_agent.geometry import Frame, Monitor
from qvl_agent.models import ModelError
from qvl_agent.models.openai_api import EndpointModel, normalise_base_url
from qvl_agent.prompts import build_prompt
from qvl_agent.redaction import mask_url_credentials, without_url_credentials
from tests.fault_server import FaultServer, completion, error

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "pw-7f3c9e1a"
SMALL = str(160 * 28 * 28)


def qvl(*args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "qvl_agent", *args], capture_output=True, text=True,
        timeout=timeout, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def with_credentials(url: str) -> str:
    return url.replace("http://", f"http://alice:{PASSWORD}@")


def files_holding(directory: Path, secret: str) -> list[str]:
    return [str(path) for path in directory.rglob("*")
            if path.is_file() and secret.encode() in path.read_bytes()]


@pytest.fixture
def server():
    with FaultServer(models=["qwen-test"]) as fault:
        yield fault


def test_a_run_that_fails_at_the_endpoint_shows_and_records_no_password(server, tmp_path):
    Image.new("RGB", (800, 600), "white").save(tmp_path / "shot.png")
    server.plan = [error(400, "the prompt was rejected")]
    result = qvl("run", "Click the centre", "--device", f"image:{tmp_path / 'shot.png'}",
                 "--endpoint", with_credentials(server.url), "--model", "qwen-test",
                 "--max-pixels", SMALL, "--record", str(tmp_path / "run"))
    assert result.returncode == 1, result.stderr
    assert "the prompt was rejected" in result.stderr  # the failure is shown ...
    assert "alice:***@127.0.0.1" in result.stderr  # ... with the endpoint it came from
    assert PASSWORD not in result.stdout + result.stderr
    steps = (tmp_path / "run" / "steps.jsonl").read_text()
    assert "the prompt was rejected" in steps and "alice:***@" in steps
    assert files_holding(tmp_path / "run", PASSWORD) == []
    # The password still reached the server, as HTTP basic auth.
    assert all(r.headers["authorization"].startswith("Basic ") for r in server.requests)


def test_a_wrong_model_name_names_the_endpoint_without_its_password(server, tmp_path):
    Image.new("RGB", (800, 600)).save(tmp_path / "shot.png")
    result = qvl("run", "x", "--device", f"image:{tmp_path / 'shot.png'}",
                 "--endpoint", with_credentials(server.url), "--model", "gpt-4o")
    assert result.returncode == 2 and "it serves: qwen-test" in result.stderr
    assert PASSWORD not in result.stderr and "alice:***@" in result.stderr


def test_an_unusable_endpoint_url_is_shown_masked(tmp_path):
    Image.new("RGB", (800, 600)).save(tmp_path / "shot.png")
    result = qvl("run", "x", "--device", f"image:{tmp_path / 'shot.png'}", "--endpoint",
                 f"ftp://alice:{PASSWORD}@gpu:8000/v1")
    assert result.returncode == 2 and "must be an http(s) URL" in result.stderr
    assert PASSWORD not in result.stderr and "ftp://alice:***@gpu:8000/v1" in result.stderr
    for url in (f"gpu.local://bob:{PASSWORD}@x", f"bob:{PASSWORD}@gpu:8000"):
        with pytest.raises(ModelError, match="must be an http") as raised:
            normalise_base_url(url)
        assert PASSWORD not in str(raised.value)


def test_an_eval_that_fails_at_the_endpoint_shows_and_records_no_password(server, tmp_path):
    data = write_synthetic_screenspot(tmp_path, 3, hit_share=1.0)
    answers = [line for line in data["script"].read_text().split("\n") if line]
    server.plan = [completion(json.loads(answers[0])["response"]),
                   error(400, "the image was rejected")]
    out = tmp_path / "out"
    result = qvl("eval", "--format", "screenspot", "--annotations", str(data["annotations"]),
                 "--images", str(data["images"]), "--endpoint", with_credentials(server.url),
                 "--model", "qwen-test", "--max-pixels", SMALL, "--out", str(out))
    assert result.returncode == 2 and "the image was rejected" in result.stderr
    assert PASSWORD not in result.stdout + result.stderr and "alice:***@" in result.stderr
    assert out.is_dir() and files_holding(out, PASSWORD) == []


def test_the_endpoint_model_keeps_the_password_out_of_its_name_and_messages(server):
    server.plan = [error(500, f"upstream http://alice:{PASSWORD}@127.0.0.1 said no")] * 3
    model = EndpointModel(with_credentials(server.url), "qwen-test", backoff=0.01, max_retries=2)
    assert model.name == f"endpoint:qwen-test@{server.url}"
    assert PASSWORD not in repr(model)
    image = Image.new("RGB", (56, 56))
    prompt = build_prompt("x", "computer", Frame.fit(Monitor(width=56, height=56)))
    with pytest.raises(ModelError) as raised:
        model.respond(prompt, image)
    assert PASSWORD not in str(raised.value) and "alice:***@" in str(raised.value)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("http://alice:secret@host:8000/v1", "http://alice:***@host:8000/v1"),
        ("see https://tok@host/x and http://a:b@c", "see https://***@host/x and http://a:***@c"),
        ("http://a:p@ss@host/v1", "http://a:***@host/v1"),  # an unencoded @ in the password
        ("http://a:%40x@host", "http://a:***@host"),
        ("http://host:8000/v1?user=a@b", "http://host:8000/v1?user=a@b"),  # no userinfo
        ("mailto:a@b and plain a:b@c", "mailto:a@b and plain a:b@c"),
        ("'http://a:b@h'", "'http://a:***@h'"),
    ],
)
def test_mask_url_credentials(text, masked):
    assert mask_url_credentials(text) == masked


def test_without_url_credentials():
    assert without_url_credentials("http://a:b@host:8000/v1") == "http://host:8000/v1"
    assert without_url_credentials("http://host/v1") == "http://host/v1"
