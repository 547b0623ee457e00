"""Fixtures that build a tiny Qwen2.5-VL checkpoint for the local backend."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight Qwen2.5-VL checkpoint directory (config, safetensors, tokenizer)."""
    # No importorskip: the test extra installs torch, and a broken install must fail loudly.
    from qvl_agent.models.checkpoint import build_random_checkpoint

    return build_random_checkpoint(tmp_path_factory.mktemp("checkpoints") / "tiny", size="tiny")


@pytest.fixture(scope="session")
def tiny_local_model(tiny_checkpoint: Path):
    """The tiny checkpoint loaded once through LocalModel (CPU, float32, sdpa)."""
    from qvl_agent.models.local import LocalModel

    return LocalModel(tiny_checkpoint, device="cpu", max_new_tokens=12)
