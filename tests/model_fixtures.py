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


# Answers the format-following model is fitted to give, one per (space, goal, screenshot
# seed). Most are well-formed tool calls; three leave the format where a scaffold draft is
# offered (prose first; "position" after a click; "parameters" in the header), so that
# forcing must fall back to the model's own tokens there.
_CALL = '<tool_call>\n{"name": "%s", "arguments": {"action": '
_END = "}}\n</tool_call>"
FORMAT_ANSWERS: list[tuple[str, str, int, str]] = [
    ("computer", "Open the settings", 1,
     _CALL % "computer_use" + '"left_click", "coordinate": [658, 364]' + _END),
    ("computer", "Close the dialog", 2,
     "I will press escape.\n" + _CALL % "computer_use" + '"key", "keys": ["esc"]' + _END),
    ("computer", "Click the OK button", 3,
     _CALL % "computer_use" + '"left_click", "position": [10, 20]' + _END),
    ("mobile", "Scroll down", 4,
     _CALL % "mobile_use" + '"swipe", "coordinate": [540, 1800], "coordinate2": [540, 600]' + _END),
    ("mobile", "Go back", 5, _CALL % "mobile_use" + '"system_button", "button": "Back"' + _END),
    ("mobile", "Finish", 6,
     '<tool_call>\n{"name": "mobile_use", "parameters": {"action": "terminate", "status": "success"'
     + _END),
]


def format_case(space: str, goal: str, seed: int):
    """The prompt and screenshot of one FORMAT_ANSWERS case (small frames: fast on a CPU)."""
    import numpy as np
    from PIL import Image

    from qvl_agent.geometry import Frame, Monitor
    from qvl_agent.prompts import build_prompt

    size = (1920, 1080) if space == "computer" else (1080, 2400)
    frame = Frame.fit(Monitor(width=size[0], height=size[1]), max_pixels=160 * 28 * 28)
    pixels = np.random.default_rng(seed).integers(0, 256, (frame.resized_height, frame.resized_width, 3))
    return build_prompt(goal, space, frame), Image.fromarray(pixels.astype(np.uint8))


@pytest.fixture(scope="session")
def format_model(tiny_checkpoint: Path):
    """The tiny checkpoint whose greedy answers are FORMAT_ANSWERS: the real Qwen2.5-VL
    classes, with only the output layer (lm_head, untied from the embeddings) fitted to the
    final hidden states of those answers, teacher-forced after their prompts."""
    from qvl_agent.models.local import LocalModel

    model = LocalModel(tiny_checkpoint, device="cpu", max_new_tokens=64)
    fit_answers(model, [(*format_case(space, goal, seed), answer)
                        for space, goal, seed, answer in FORMAT_ANSWERS])
    return model


def fit_answers(model, cases) -> None:
    """Fit ``model``'s output layer so that its greedy answer to each (prompt, screenshot)
    of ``cases`` is that case's answer (prompts may hold earlier screenshots too)."""
    import torch

    end = model.tokenizer.convert_tokens_to_ids("<|im_end|>")
    features, labels = [], []
    with torch.inference_mode():
        for prompt, image, answer in cases:
            inputs = model.encode(prompt, image)
            answer_ids = model.tokenizer(answer, add_special_tokens=False)["input_ids"] + [end]
            ids = torch.cat([inputs["input_ids"], torch.tensor([answer_ids[:-1]])], dim=1)
            text = torch.zeros(1, len(answer_ids) - 1, dtype=inputs["mm_token_type_ids"].dtype)
            model.model.model.rope_deltas = None
            hidden = model.model.model(
                input_ids=ids, attention_mask=torch.ones_like(ids),
                mm_token_type_ids=torch.cat([inputs["mm_token_type_ids"], text], dim=1),
                pixel_values=inputs["pixel_values"], image_grid_thw=inputs["image_grid_thw"],
            ).last_hidden_state[0, inputs["input_ids"].shape[1] - 1 :]
            features.append(hidden.clone())
            labels += answer_ids
    model.model.lm_head.weight = torch.nn.Parameter(_fit_readout(torch.cat(features), labels,
                                                                 model.model.lm_head.weight.shape[0]))


def _fit_readout(features, labels: list[int], vocab_size: int):
    """Output-layer rows for the answer tokens (cross-entropy against each other and a zero
    logit standing for every other token, which keeps its zero row)."""
    import torch

    classes = sorted(set(labels))
    target = torch.tensor([classes.index(label) for label in labels])
    rows = torch.zeros(len(classes), features.shape[1], requires_grad=True)
    optimiser = torch.optim.Adam([rows], lr=0.1)
    for _ in range(300):
        logits = torch.cat([features @ rows.T, torch.zeros(len(labels), 1)], dim=1)
        loss = torch.nn.functional.cross_entropy(logits, target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    weight = torch.zeros(vocab_size, features.shape[1])
    weight[classes] = rows.detach()
    return weight


@pytest.fixture(scope="session")
def tiny_qwen3_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight Qwen3-VL checkpoint, loaded like Qwen/Qwen3-VL-4B-Instruct."""
    from qvl_agent.models.checkpoint import build_random_checkpoint

    return build_random_checkpoint(tmp_path_factory.mktemp("checkpoints") / "qwen3-tiny",
                                   size="tiny", architecture="qwen3-vl")


@pytest.fixture(scope="session")
def tiny_qwen3_model(tiny_qwen3_checkpoint: Path):
    """The tiny Qwen3-VL checkpoint loaded once through LocalModel (CPU, float32, sdpa)."""
    from qvl_agent.models.local import LocalModel

    return LocalModel(tiny_qwen3_checkpoint, device="cpu", max_new_tokens=12)
