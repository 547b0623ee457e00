"""Fixtures: ``qvl-agent serve`` running the tiny checkpoint as a real child process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from environments.model_server import ModelServer

SERVE_KEY = "serve-key-4e1d9b"
SERVED_NAME = "tiny-qwen"


@pytest.fixture(scope="session")
def tiny_server(tiny_checkpoint, tmp_path_factory) -> Iterator[ModelServer]:
    """One server for the session (loading torch costs seconds), guarded by SERVE_KEY."""
    with ModelServer(
        [
            "--model",
            str(tiny_checkpoint),
            "--served-model-name",
            SERVED_NAME,
            "--max-new-tokens",
            "12",
            "--api-key-env",
            "QVL_TEST_SERVE_KEY",
        ],
        # One torch thread: on a busy 2-core machine two OpenMP threads make each request
        # several times slower; the answers are the same (compared with the in-process model).
        env={"QVL_TEST_SERVE_KEY": SERVE_KEY, "OMP_NUM_THREADS": "1"},
        log_path=tmp_path_factory.mktemp("serve") / "requests.log",
    ) as server:
        yield server
