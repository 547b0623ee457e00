"""The fast image path gives the model what the stock path would, in a fraction of the time."""

import numpy as np
import pytest
import torch
from PIL import Image

from qvl_agent.geometry import Frame, Monitor, model_view
from qvl_agent.imaging import resize_bicubic, resizer_name
from qvl_agent.models.local import LocalModel
from qvl_agent.models.vision_input import patchify
from qvl_agent.prompts import build_prompt
from tests.image_cases import screen_like


@pytest.mark.parametrize(("width", "height"), [(1316, 728), (1092, 2408), (56, 28), (28, 56)])
def test_patchify_equals_the_stock_image_processor(tiny_local_model, width, height):
    image = screen_like(width, height)
    processor = tiny_local_model.image_processor
    stock = processor(images=[image], do_resize=False, return_tensors="pt")
    pixel_values, grid = patchify(
        image, mean=list(processor.image_mean), std=list(processor.image_std), patch_size=14,
        merge_size=2, temporal_patch_size=2, device="cpu", dtype=torch.float32,
    )
    assert grid.tolist() == stock["image_grid_thw"].tolist()
    assert pixel_values.shape == stock["pixel_values"].shape
    assert torch.allclose(pixel_values, stock["pixel_values"], atol=1e-5)


def test_patchify_rejects_a_size_that_is_not_whole_merge_groups():
    with pytest.raises(ValueError, match="28-pixel"):
        patchify(Image.new("RGB", (42, 28)), mean=[0.5] * 3, std=[0.5] * 3, patch_size=14,
                 merge_size=2, temporal_patch_size=2, device="cpu", dtype=torch.float32)


@pytest.mark.parametrize(
    ("screen", "resized"), [((1920, 1080), (1316, 728)), ((1920, 1080), (1932, 1092)), ((1080, 2400), (1092, 2408))]
)
def test_resize_is_within_two_grey_levels_of_pillow_bicubic(screen, resized):
    assert resizer_name() == "torch-bicubic-aa"  # torch is installed for the tests
    image = screen_like(*screen)
    ours = np.asarray(resize_bicubic(image, resized)).astype(int)
    pillow = np.asarray(image.resize(resized, Image.Resampling.BICUBIC)).astype(int)
    assert ours.shape == pillow.shape == (resized[1], resized[0], 3)
    difference = np.abs(ours - pillow)
    assert difference.max() <= 2 and difference.mean() < 0.05


def test_fast_and_stock_preprocessing_give_the_same_answer(tiny_checkpoint):
    frame = Frame.fit(Monitor(width=1366, height=768), max_pixels=1280 * 28 * 28)
    image = model_view(screen_like(1366, 768, seed=3), frame)
    prompt = build_prompt("Click the OK button", "computer", frame)
    fast = LocalModel(tiny_checkpoint, device="cpu", max_new_tokens=10)
    stock = LocalModel(tiny_checkpoint, device="cpu", max_new_tokens=10, fast_preprocess=False)
    answer = fast.respond(prompt, image)
    assert answer.text == stock.respond(prompt, image).text
    assert answer.prompt_tokens == stock.respond(prompt, image).prompt_tokens


def test_expanding_pad_ids_equals_tokenizing_the_expanded_text(tiny_local_model):
    frame = Frame.fit(Monitor(width=1366, height=768), max_pixels=1280 * 28 * 28)
    image = model_view(screen_like(1366, 768), frame)
    pads = frame.resized_width * frame.resized_height // (28 * 28)
    # The second prompt reuses the cached system-turn ids.
    for goal, history in (("Type 'héllo 世界' <here>", ['{"a": 1}']), ("Scroll down", [])):
        prompt = build_prompt(goal, "computer", frame, history)
        ids = tiny_local_model.encode(prompt, image)["input_ids"][0].tolist()
        expanded = prompt.chat_text().replace("<|image_pad|>", "<|image_pad|>" * pads)
        assert ids == tiny_local_model.tokenizer(expanded)["input_ids"]


def test_drawing_on_a_model_view_is_seen_by_the_model(tiny_local_model):
    """The resize keeps a tensor copy for speed; it must never hide later changes."""
    from PIL import ImageDraw

    frame = Frame.fit(Monitor(width=1920, height=1080), max_pixels=1280 * 28 * 28)
    view = model_view(Image.new("RGB", (1920, 1080), (10, 20, 30)), frame)
    ImageDraw.Draw(view).rectangle((0, 0, 27, 27), fill=(255, 0, 0))
    processor = tiny_local_model.image_processor
    ours, _ = patchify(view, mean=list(processor.image_mean), std=list(processor.image_std),
                       patch_size=14, merge_size=2, temporal_patch_size=2, device="cpu", dtype=torch.float32)
    stock = processor(images=[view], do_resize=False, return_tensors="pt")["pixel_values"]
    assert torch.allclose(ours, stock, atol=1e-5)
