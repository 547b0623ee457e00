"""The local transformers backend, on a tiny random-weight Qwen2.5-VL checkpoint.

The checkpoint loads through the same ``from_pretrained`` calls as the real
``Qwen/Qwen2.5-VL-3B-Instruct``; nothing here touches the network (HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import json
import random
import sys

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from PIL import Image

from qvl_agent.geometry import Frame, Monitor, smart_resize
from qvl_agent.models import ModelError, load_model
from qvl_agent.models.checkpoint import build_random_checkpoint
from qvl_agent.models.local import LocalModel
from qvl_agent.models.scripted import ScriptedModel
from qvl_agent.prompts import VISION_PLACEHOLDER, build_prompt
from tests.image_cases import boundary_sizes, rejected_or

pytestmark = pytest.mark.local_model

IMAGE_PAD = "<|image_pad|>"
CLICK = '{"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [1, 2]}}'

try:  # The torchvision module is the canonical one; its Pillow twin is a verbatim copy.
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import (
        smart_resize as hf_smart_resize,
    )
except ImportError:
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        smart_resize as hf_smart_resize,
    )


def desktop_frame() -> Frame:
    # 1920x1080 with the README's max_pixels: the model sees 1316x728 (47x26 merged patches).
    return Frame.fit(Monitor(width=1920, height=1080), max_pixels=1280 * 28 * 28)


def screenshot(frame: Frame, seed: int = 0) -> Image.Image:
    """A noisy screenshot already resized to the frame's size, as the agent hands it over."""
    rng = random.Random(seed)
    data = rng.randbytes(frame.resized_width * frame.resized_height * 3)
    return Image.frombytes("RGB", frame.resized_size, data)


# -- the checkpoint ------------------------------------------------------------------------


def test_tiny_checkpoint_loads_through_from_pretrained(tiny_checkpoint):
    model = transformers.Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_checkpoint)
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_checkpoint)
    processor = transformers.AutoImageProcessor.from_pretrained(tiny_checkpoint)
    config = model.config

    vision = config.vision_config
    assert (vision.patch_size, vision.spatial_merge_size, vision.temporal_patch_size) == (14, 2, 2)
    assert all(0 <= index < vision.depth for index in vision.fullatt_block_indexes)
    text = config.text_config
    head_dim = text.hidden_size // text.num_attention_heads
    assert sum(text.rope_parameters["mrope_section"]) == head_dim // 2
    assert text.vocab_size >= len(tokenizer)

    ids = tokenizer.convert_tokens_to_ids
    assert config.image_token_id == ids(IMAGE_PAD)
    assert config.video_token_id == ids("<|video_pad|>")
    assert config.vision_start_token_id == ids("<|vision_start|>")
    assert config.vision_end_token_id == ids("<|vision_end|>")
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    # Qwen's order: <|endoftext|>, <|im_start|>, <|im_end|>, ... consecutive ids.
    assert ids("<|im_start|>") == ids("<|endoftext|>") + 1 == ids("<|im_end|>") - 1

    assert (processor.patch_size, processor.merge_size, processor.temporal_patch_size) == (14, 2, 2)
    assert processor.size["shortest_edge"] == 3136
    assert processor.size["longest_edge"] == 12845056


def test_3b_config_is_the_released_one(tmp_path):
    path = build_random_checkpoint(tmp_path / "3b", size="3b")
    assert not list(path.glob("*.safetensors"))  # config only unless asked

    config = transformers.AutoConfig.from_pretrained(path)
    text, vision = config.text_config, config.vision_config
    assert (text.hidden_size, text.intermediate_size, text.num_hidden_layers) == (2048, 11008, 36)
    assert (text.num_attention_heads, text.num_key_value_heads, text.vocab_size) == (16, 2, 151936)
    assert text.rope_parameters["mrope_section"] == [16, 24, 24]
    assert text.rope_parameters["rope_theta"] == 1000000.0
    assert config.tie_word_embeddings
    assert (vision.depth, vision.hidden_size, vision.intermediate_size) == (32, 1280, 3420)
    assert (vision.num_heads, vision.out_hidden_size, vision.window_size) == (16, 2048, 112)
    assert list(vision.fullatt_block_indexes) == [7, 15, 23, 31]
    assert (config.vision_start_token_id, config.image_token_id) == (151652, 151655)

    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    ids = tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_end|>", "<tool_call>"])
    assert ids == [151643, 151645, 151657]
    # The architecture without memory: the 3B's 3.75e9 parameters.
    with torch.device("meta"):
        model = transformers.Qwen2_5_VLForConditionalGeneration._from_config(config)
    assert sum(p.numel() for p in model.parameters()) == 3_754_622_976


# -- tokenizer and prompt ------------------------------------------------------------------


def test_chat_template_renders_exactly_what_prompt_chat_text_renders(tiny_local_model):
    tokenizer = tiny_local_model.tokenizer
    prompt = build_prompt("Öffne die Einstellungen 设置", "mobile", desktop_frame(), [CLICK])
    retry = prompt.with_retry("I will click it.", "no <tool_call> found", "mobile")

    for rendered in (prompt, retry):
        messages = []
        for message in rendered.messages:
            content = [{"type": "text", "text": message.text}]
            if message.image:
                content.append({"type": "image"})
            messages.append({"role": message.role, "content": content})
        expected = tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        assert rendered.chat_text() == expected


def test_tool_call_tags_survive_decoding_and_unicode_round_trips(tiny_local_model):
    tokenizer = tiny_local_model.tokenizer
    answer = f"Ich klicke auf „OK“ 👍\n<tool_call>\n{CLICK}\n</tool_call>"
    ids = tokenizer(f"<|im_start|>assistant\n{answer}<|im_end|>")["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == f"assistant\n{answer}"
    assert tokenizer.convert_tokens_to_ids("<tool_call>") in ids

    for text in ["日本語のテキスト", "emoji 🧪🚀 and \t tabs  ", "Ωμέγα\u00a0nbsp", "x" * 300]:
        assert tokenizer.decode(tokenizer(text)["input_ids"]) == text


# -- respond() -----------------------------------------------------------------------------


def test_respond_counts_image_tokens_and_times_its_stages(tiny_local_model):
    frame = desktop_frame()
    assert frame.resized_size == (1316, 728)
    prompt = build_prompt("Open the settings", "computer", frame, [CLICK])

    response = tiny_local_model.respond(prompt, screenshot(frame))

    text_only = prompt.chat_text().replace(IMAGE_PAD, "")
    text_tokens = len(tiny_local_model.tokenizer(text_only)["input_ids"])
    assert response.prompt_tokens == text_tokens + (1316 // 28) * (728 // 28)
    assert 1 <= response.generated_tokens <= tiny_local_model.max_new_tokens
    assert isinstance(response.text, str) and response.text
    for stage in ("preprocess", "generate", "prefill", "decode"):
        assert response.timings[stage] > 0
    assert response.timings["prefill"] <= response.timings["generate"]


def test_greedy_answers_are_deterministic_and_depend_on_the_image(tiny_local_model):
    frame = desktop_frame()
    prompt = build_prompt("Open the settings", "computer", frame)
    first = tiny_local_model.respond(prompt, screenshot(frame, seed=1))
    second = tiny_local_model.respond(prompt, screenshot(frame, seed=1))
    other = tiny_local_model.respond(prompt, Image.new("RGB", frame.resized_size, "white"))
    assert first.text == second.text
    assert other.text != first.text


@pytest.mark.parametrize("decode", ["dynamic", "static", "generate"])
def test_answering_uses_no_argument_transformers_deprecates(tiny_checkpoint, decode):
    """transformers 5.24 renamed forward's past_key_values to cache and warns on every call
    with the old name ("will be removed in version 5.40.0"); every decode path must use the
    name this transformers takes, so a user sees no warning and 5.40 breaks nothing."""
    import warnings

    options = {"generate": {"reuse_system_cache": False, "force_scaffold": False}}.get(
        decode, {"decode": decode})
    model = LocalModel(tiny_checkpoint, device="cpu", max_new_tokens=4, **options)
    assert (model.decoder is None) == (decode == "generate")
    frame = desktop_frame()
    prompt = build_prompt("Open the settings", "computer", frame)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):  # the second answer reuses the cache
            model.respond(prompt, screenshot(frame))
    deprecations = [str(w.message) for w in caught
                    if issubclass(w.category, (FutureWarning, DeprecationWarning))]
    assert deprecations == []


def test_a_run_through_the_cli_prints_no_deprecation_warning(tiny_checkpoint, tmp_path):
    """What a user sees on the terminal: transformers' warnings and its logger's warnings."""
    import subprocess

    Image.new("RGB", (800, 600), "white").save(tmp_path / "shot.png")
    result = subprocess.run(
        [sys.executable, "-m", "qvl_agent", "run", "Click OK", "--device", f"image:{tmp_path / 'shot.png'}",
         "--model", str(tiny_checkpoint), "--max-new-tokens", "6", "--max-steps", "1", "--dry-run",
         "--max-pixels", str(160 * 28 * 28), "--record", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=120)
    assert "recorded in" in result.stderr, result.stderr
    assert "deprecated" not in result.stderr.lower() and "Warning" not in result.stderr, result.stderr


def test_respond_rejects_an_image_that_was_not_resized(tiny_local_model):
    frame = desktop_frame()
    prompt = build_prompt("Open the settings", "computer", frame)
    with pytest.raises(ModelError, match="multiples of 28"):
        tiny_local_model.respond(prompt, Image.new("RGB", (1920, 1080)))


def test_image_processor_keeps_the_pre_resized_size(tiny_local_model):
    processor = tiny_local_model.image_processor
    for height, width in [(1080, 1920), (2400, 1080), (1, 199), (5000, 25), (13, 13)]:
        resized_h, resized_w = smart_resize(height, width)
        image = Image.new("RGB", (resized_w, resized_h), "gray")
        grid = processor(images=[image], do_resize=False, return_tensors="pt")["image_grid_thw"]
        assert grid.tolist() == [[1, resized_h // 14, resized_w // 14]]
        # The checkpoint's own resize settings would not change it either.
        default = processor(images=[image], return_tensors="pt")["image_grid_thw"]
        assert default.tolist() == grid.tolist()


# -- loading and its errors ----------------------------------------------------------------


def test_load_model_picks_the_backend(tiny_checkpoint, tmp_path):
    local = load_model(f"local:{tiny_checkpoint}", max_new_tokens=3)
    assert isinstance(local, LocalModel) and local.max_new_tokens == 3
    assert isinstance(load_model(str(tiny_checkpoint)), LocalModel)

    script = tmp_path / "answers.jsonl"
    script.write_text(json.dumps({"response": "done"}) + "\n", encoding="utf-8")
    scripted = load_model(f"scripted:{script}", max_new_tokens=3)
    assert isinstance(scripted, ScriptedModel)
    frame = desktop_frame()
    assert scripted.respond(build_prompt("x", "computer", frame), screenshot(frame)).text == "done"


def test_random_weights_need_no_weight_files(tmp_path):
    path = build_random_checkpoint(tmp_path / "config-only", size="tiny", write_weights=False)
    assert not list(path.glob("*.safetensors"))
    with pytest.raises(ModelError, match="could not load the weights"):
        LocalModel(path)

    model = LocalModel(path, random_weights=True, max_new_tokens=2)
    frame = desktop_frame()
    response = model.respond(build_prompt("Open it", "computer", frame), screenshot(frame))
    assert response.prompt_tokens > 1222 and 1 <= response.generated_tokens <= 2


def test_missing_directory_is_a_clear_error(tmp_path):
    missing = tmp_path / "no-such-checkpoint"
    with pytest.raises(ModelError) as error:
        LocalModel(missing)
    assert str(missing) in str(error.value) and "directory" in str(error.value)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        LocalModel(empty)


def test_hub_id_missing_from_the_offline_cache_is_a_clear_error():
    # An id no cache holds (conftest sets HF_HUB_OFFLINE=1, so nothing is fetched).
    model_id = "qvl-agent-tests/Qwen2.5-VL-not-cached"
    with pytest.raises(ModelError) as error:
        load_model(model_id)
    message = str(error.value)
    assert f"huggingface-cli download {model_id}" in message
    assert "local checkpoint directory" in message


def test_missing_torch_names_the_extra_to_install(monkeypatch, tiny_checkpoint):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(ModelError, match=r"pip install 'qvl-agent\[local\]'"):
        LocalModel(tiny_checkpoint)


def test_prompt_with_one_image_placeholder_is_required(tiny_local_model):
    frame = desktop_frame()
    prompt = build_prompt("Open the settings", "computer", frame)
    prompt.messages[0].text += VISION_PLACEHOLDER
    with pytest.raises(ModelError, match="exactly one image"):
        tiny_local_model.respond(prompt, screenshot(frame))


# -- smart_resize agrees with transformers -------------------------------------------------

PIXEL_SETTINGS = [
    (3136, 12845056),  # the checkpoint's preprocessor_config.json
    (56 * 56, 28 * 28 * 1280),  # transformers' class defaults
    (256 * 28 * 28, 1280 * 28 * 28),  # the README's suggestion
    (512 * 28 * 28, 2048 * 28 * 28),  # the spatial cookbook
    (3136, 99999999),  # ScreenSpot-Pro harness: no downscaling
    (3136, 4 * 3136),
]


@pytest.mark.parametrize("min_pixels,max_pixels", PIXEL_SETTINGS)
def test_smart_resize_matches_transformers(min_pixels, max_pixels):
    for height, width in boundary_sizes(28):
        ours = rejected_or(smart_resize, height, width, 28, min_pixels, max_pixels)
        theirs = rejected_or(hf_smart_resize, height, width, 28, min_pixels, max_pixels)
        assert ours == theirs, (height, width)
    # Beyond 1:200 both refuse.
    assert rejected_or(smart_resize, 10, 2010) == rejected_or(hf_smart_resize, 10, 2010) == "rejected"


def test_image_tokens_get_the_3d_grid_positions(tiny_local_model):
    """Qwen2.5-VL places image tokens by (t, h, w); text positions would shift every click."""
    import torch
    from PIL import Image

    from qvl_agent.geometry import Frame, Monitor, model_view
    from qvl_agent.prompts import build_prompt

    frame = Frame.fit(Monitor(width=800, height=600))  # 812x588: 29x21 merged patches
    image = model_view(Image.new("RGB", (800, 600), (90, 90, 90)), frame)
    inputs = tiny_local_model.encode(build_prompt("Click OK", "computer", frame), image)
    network = tiny_local_model.model.model
    network.rope_deltas = None
    from qvl_agent.models.decoding import cache_argument

    positions = network.compute_3d_position_ids(
        input_ids=inputs["input_ids"], image_grid_thw=inputs["image_grid_thw"], video_grid_thw=None,
        inputs_embeds=None, attention_mask=inputs["attention_mask"],
        mm_token_type_ids=inputs["mm_token_type_ids"],
        **{cache_argument(network.compute_3d_position_ids): None})
    assert positions is not None
    image_at = (inputs["input_ids"][0] == tiny_local_model.image_pad_id).nonzero()[:, 0]
    t, h, w = (positions[axis, 0, image_at] - positions[axis, 0, image_at[0]] for axis in range(3))
    columns, rows = 812 // 28, 588 // 28
    assert len(image_at) == columns * rows
    assert torch.equal(t, torch.zeros_like(t))
    assert torch.equal(h, torch.arange(rows).repeat_interleave(columns))
    assert torch.equal(w, torch.arange(columns).repeat(rows))


def test_reusing_the_system_turn_cache_changes_no_answer(tiny_checkpoint):
    """Step after step (new history, new screen), greedy answers with the cached system turn
    equal generate()'s without it, token for token."""
    import numpy as np
    from PIL import Image

    from qvl_agent.geometry import Frame, Monitor, model_view
    from qvl_agent.prompts import build_prompt

    cached = LocalModel(tiny_checkpoint, device="cpu", max_new_tokens=16)
    plain = LocalModel(tiny_checkpoint, device="cpu", max_new_tokens=16, reuse_system_cache=False,
                       force_scaffold=False)
    assert cached.decoder is not None and plain.decoder is None
    frame = Frame.fit(Monitor(width=1366, height=768), max_pixels=1280 * 28 * 28)
    rng = np.random.default_rng(5)
    history: list[str] = []
    for step in range(3):
        screen = Image.fromarray(rng.integers(0, 256, (768, 1366, 3), dtype=np.uint8))
        prompt = build_prompt("Open the settings", "computer", frame, history)
        image = model_view(screen, frame)
        ours, reference = cached.respond(prompt, image), plain.respond(prompt, image)
        assert ours.text == reference.text and ours.generated_tokens == reference.generated_tokens
        assert ours.prompt_tokens == reference.prompt_tokens
        reused = ours.cached_prompt_tokens
        # The system turn as the chat template renders it, through <|im_end|>.
        system = prompt.chat_text().split("<|im_end|>")[0] + "<|im_end|>"
        system_tokens = len(cached.tokenizer(system)["input_ids"])
        assert reused == (0 if step == 0 else system_tokens) and system_tokens > 500
        history.append('{"name": "computer_use", "arguments": {"action": "wait", "time": %d}}' % step)
