"""Qwen3-VL through the local backend: the tiny checkpoint loads through the Auto classes
like Qwen/Qwen3-VL-4B-Instruct, the image is patched as its processor patches it (16-pixel
patches, mean = std = 0.5, factor 32), the prompt tokens are the stock processor's, every
fast path gives generate()'s answer, and a 0-1000 answer lands on the right screen pixel.

Nothing here touches the network (conftest sets HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from PIL import Image

from qvl_agent.geometry import (
    QWEN3_VL_FACTOR,
    QWEN3_VL_MAX_PIXELS,
    QWEN3_VL_MIN_PIXELS,
    CoordinateError,
    Frame,
    Monitor,
    model_view,
    smart_resize,
)
from qvl_agent.families import get_family
from qvl_agent.models import ModelError
from qvl_agent.models.checkpoint import QWEN3_VL_CHAT_TEMPLATE, build_random_checkpoint
from qvl_agent.models.local import LocalModel
from qvl_agent.models.vision_input import patchify
from qvl_agent.prompts import build_prompt
from tests.model_fixtures import fit_answers
from tests.image_cases import boundary_sizes, rejected_or, screen_like

pytestmark = pytest.mark.local_model

IMAGE_PAD = "<|image_pad|>"
SMALL = 160 * 32 * 32  # keeps the CPU tests fast: 1920x1080 -> 512x288


def qwen3_frame(width: int, height: int, max_pixels: int = SMALL) -> Frame:
    return Frame.fit(
        Monitor(width=width, height=height), QWEN3_VL_MIN_PIXELS, max_pixels, QWEN3_VL_FACTOR
    )


# -- the checkpoint --------------------------------------------------------------------------


def test_tiny_qwen3_checkpoint_loads_through_the_auto_classes(tiny_qwen3_checkpoint):
    model = transformers.AutoModelForImageTextToText.from_pretrained(tiny_qwen3_checkpoint)
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_qwen3_checkpoint)
    processor = transformers.AutoImageProcessor.from_pretrained(tiny_qwen3_checkpoint)
    assert type(model).__name__ == "Qwen3VLForConditionalGeneration"
    config = model.config
    assert config.model_type == "qwen3_vl" and config.vision_config.model_type == "qwen3_vl_vision"

    vision, text = config.vision_config, config.text_config
    assert (vision.patch_size, vision.spatial_merge_size, vision.temporal_patch_size) == (16, 2, 2)
    assert all(0 <= i < vision.depth for i in vision.deepstack_visual_indexes)
    rope = text.rope_parameters
    assert rope["mrope_interleaved"] and sum(rope["mrope_section"]) == text.head_dim // 2
    assert text.vocab_size >= len(tokenizer)

    ids = tokenizer.convert_tokens_to_ids
    assert config.image_token_id == ids(IMAGE_PAD)
    assert config.vision_start_token_id == ids("<|vision_start|>")
    assert config.vision_end_token_id == ids("<|vision_end|>")
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    # The Qwen3 tokenizer: Qwen2.5's added tokens, then <tool_response> ... </think>.
    assert (
        ids("</think>") == ids("<|endoftext|>") + 25
        and ids("<tool_call>") == ids("<|endoftext|>") + 14
    )
    assert tokenizer.chat_template == QWEN3_VL_CHAT_TEMPLATE

    assert (processor.patch_size, processor.merge_size, processor.temporal_patch_size) == (16, 2, 2)
    assert tuple(processor.image_mean) == tuple(processor.image_std) == (0.5, 0.5, 0.5)
    assert (processor.size["shortest_edge"], processor.size["longest_edge"]) == (65536, 16777216)


def test_4b_config_is_the_released_one(tmp_path):
    path = build_random_checkpoint(tmp_path / "4b", size="4b", architecture="qwen3-vl")
    assert not list(path.glob("*.safetensors"))  # config only unless asked

    config = transformers.AutoConfig.from_pretrained(path)
    text, vision = config.text_config, config.vision_config
    assert (text.hidden_size, text.intermediate_size, text.num_hidden_layers) == (2560, 9728, 36)
    assert (text.num_attention_heads, text.num_key_value_heads, text.head_dim) == (32, 8, 128)
    assert text.vocab_size == 151936 and text.rope_parameters["mrope_section"] == [24, 20, 20]
    assert text.rope_parameters["rope_theta"] == 5000000 and config.tie_word_embeddings
    assert (vision.depth, vision.hidden_size, vision.intermediate_size) == (24, 1024, 4096)
    assert (vision.out_hidden_size, list(vision.deepstack_visual_indexes)) == (2560, [5, 11, 17])
    assert (config.vision_start_token_id, config.image_token_id) == (151652, 151655)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    assert tokenizer.convert_tokens_to_ids(["<|im_end|>", "<tool_call>", "</think>"]) == [
        151645,
        151657,
        151668,
    ]
    # The architecture without memory: the 4B's 4.44e9 parameters (8.88 GB in bf16).
    with torch.device("meta"):
        model = transformers.AutoModelForImageTextToText.from_config(config)
    assert sum(p.numel() for p in model.parameters()) == 4_437_815_808


def test_an_unknown_architecture_is_refused_clearly(tmp_path):
    with pytest.raises(ValueError, match="use one of tiny, 4b"):
        build_random_checkpoint(tmp_path / "x", size="3b", architecture="qwen3-vl")
    path = tmp_path / "bert"
    path.mkdir()
    (path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ModelError, match="'bert' model.*Qwen2.5-VL and Qwen3-VL checkpoints"):
        LocalModel(path, random_weights=True)


# -- the prompt and the image, as the stock processor prepares them -----------------------


def test_chat_template_renders_what_prompt_chat_text_renders(tiny_qwen3_model):
    tokenizer = tiny_qwen3_model.tokenizer
    frame = qwen3_frame(1920, 1080)
    for prompt in (
        build_prompt("Öffne die Einstellungen 设置", "computer", frame),
        get_family("qwen3-vl-ground").grounding().prompt("the Save button", frame),
    ):
        messages = []
        for message in prompt.messages:
            content = [{"type": "text", "text": message.text}]
            if message.image:
                content.insert(0 if message.image_first else 1, {"type": "image"})
            messages.append({"role": message.role, "content": content})
        assert prompt.chat_text() == tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
    # Unlike Qwen2.5-VL's template, Qwen3-VL's adds no system turn of its own.
    assert "system" not in get_family("qwen3-vl-ground").grounding().prompt("x", frame).chat_text()


def test_prompt_tokens_are_the_stock_processors(tiny_qwen3_model):
    """Our ids equal the tokenizer over the text Qwen3VLProcessor expands (its own
    replace_image_token over the stock image processor's grid), image tokens marked 1."""
    from transformers.models.qwen3_vl.processing_qwen3_vl import Qwen3VLProcessor

    frame = qwen3_frame(1366, 768)
    image = model_view(screen_like(1366, 768), frame)
    processor = tiny_qwen3_model.image_processor
    stock = processor(images=[image], return_tensors="pt")  # the checkpoint's own resize: none
    stub = SimpleNamespace(image_processor=processor, image_token=IMAGE_PAD)
    pads = Qwen3VLProcessor.replace_image_token(stub, stock, 0)
    for prompt in (
        build_prompt("Click OK", "computer", frame, ['{"a": 1}']),
        get_family("qwen3-vl-ground").grounding().prompt("the OK button", frame),
    ):
        inputs = tiny_qwen3_model.encode(prompt, image)
        expected = tiny_qwen3_model.tokenizer(prompt.chat_text().replace(IMAGE_PAD, pads, 1))[
            "input_ids"
        ]
        assert inputs["input_ids"][0].tolist() == expected
        assert inputs["mm_token_type_ids"][0].tolist() == [
            int(i == tiny_qwen3_model.image_pad_id) for i in expected
        ]
        assert inputs["image_grid_thw"].tolist() == stock["image_grid_thw"].tolist()
        assert torch.allclose(inputs["pixel_values"], stock["pixel_values"], atol=1e-5)


@pytest.mark.parametrize(("width", "height"), [(1376, 768), (1088, 2400), (64, 32), (32, 64)])
def test_patchify_equals_the_stock_qwen3_image_processor(tiny_qwen3_model, width, height):
    image = screen_like(width, height)
    processor = tiny_qwen3_model.image_processor
    stock = processor(images=[image], do_resize=False, return_tensors="pt")
    pixel_values, grid = patchify(
        image,
        mean=list(processor.image_mean),
        std=list(processor.image_std),
        patch_size=16,
        merge_size=2,
        temporal_patch_size=2,
        device="cpu",
        dtype=torch.float32,
    )
    assert grid.tolist() == stock["image_grid_thw"].tolist() == [[1, height // 16, width // 16]]
    assert torch.allclose(pixel_values, stock["pixel_values"], atol=1e-5)
    # The normalisation is Qwen3-VL's 0.5/0.5: white is exactly 1, black exactly -1.
    for colour, value in (("white", 1.0), ("black", -1.0)):
        flat, _ = patchify(
            Image.new("RGB", (64, 64), colour),
            mean=[0.5] * 3,
            std=[0.5] * 3,
            patch_size=16,
            merge_size=2,
            temporal_patch_size=2,
            device="cpu",
            dtype=torch.float32,
        )
        assert torch.allclose(flat, torch.full_like(flat, value))


def test_a_screenshot_not_resized_with_factor_32_is_refused(tiny_qwen3_model):
    frame = Frame.fit(Monitor(width=1920, height=1080), max_pixels=SMALL)  # factor 28: 560x308
    prompt = build_prompt("Open it", "computer", frame)
    with pytest.raises(ModelError, match="multiples of 32"):
        tiny_qwen3_model.respond(prompt, Image.new("RGB", frame.resized_size))


# -- answering -------------------------------------------------------------------------------


def test_respond_counts_32_pixel_merged_patches(tiny_qwen3_model):
    frame = qwen3_frame(1920, 1080)
    assert frame.resized_size == (512, 288)
    prompt = build_prompt("Open the settings", "computer", frame)
    response = tiny_qwen3_model.respond(prompt, model_view(screen_like(1920, 1080), frame))
    text_tokens = len(
        tiny_qwen3_model.tokenizer(prompt.chat_text().replace(IMAGE_PAD, ""))["input_ids"]
    )
    assert response.prompt_tokens == text_tokens + (512 // 32) * (288 // 32)
    assert 1 <= response.generated_tokens <= tiny_qwen3_model.max_new_tokens
    assert tiny_qwen3_model.options["architecture"] == "Qwen3-VL"
    assert (
        tiny_qwen3_model.options["reuse_system_cache"]
        and tiny_qwen3_model.options["force_scaffold"]
    )


def test_every_fast_path_gives_generates_answer(tiny_qwen3_checkpoint):
    """Cached system turn, forced scaffold, static cache, compiled decoding (dynamo's graph
    capture, eager backend: no minute of C++ compilation) and the fast image path against
    plain generate() with the stock image processor, step after step, token for token."""
    fast = LocalModel(tiny_qwen3_checkpoint, device="cpu", max_new_tokens=12)
    static = LocalModel(tiny_qwen3_checkpoint, device="cpu", max_new_tokens=12, decode="static")
    compiled = LocalModel(tiny_qwen3_checkpoint, device="cpu", max_new_tokens=12, decode="static")
    compiled.decoder = compiled.new_decoder("compiled", compile_options={"backend": "eager"})
    plain = LocalModel(
        tiny_qwen3_checkpoint,
        device="cpu",
        max_new_tokens=12,
        fast_preprocess=False,
        reuse_system_cache=False,
        force_scaffold=False,
    )
    assert plain.decoder is None and fast.decoder is not None
    frame = qwen3_frame(1366, 768)
    rng = np.random.default_rng(5)
    history: list[str] = []
    for step in range(2):
        screen = Image.fromarray(rng.integers(0, 256, (768, 1366, 3), dtype=np.uint8))
        prompt = build_prompt("Open the settings", "computer", frame, history)
        image = model_view(screen, frame)
        reference = plain.respond(prompt, image)
        system = prompt.chat_text().split("<|im_end|>")[0] + "<|im_end|>"
        reused = 0 if step == 0 else len(fast.tokenizer(system)["input_ids"])
        for model in (fast, static, compiled):
            ours = model.respond(prompt, image)
            assert (ours.text, ours.generated_tokens, ours.prompt_tokens) == (
                reference.text,
                reference.generated_tokens,
                reference.prompt_tokens,
            )
            assert ours.cached_prompt_tokens == reused
        history.append(
            '{"name": "computer_use", "arguments": {"action": "wait", "time": %d}}' % step
        )


# A desktop and a phone screenshot, each with the 0-1000 box the fitted model answers, and
# the screen pixel the box's centre is: (x1 + x2) / 2 / 1000 * width.
GROUNDING_CASES = [
    (
        (1920, 1080),
        "the OK button",
        1,
        '```json\n[\n\t{"bbox_2d": [450, 300, 550, 400], "label": "the OK button"}\n]\n```',
        (960, 378),
    ),
    (
        (1080, 2400),
        "the Send icon",
        2,
        '[{"bbox_2d": [100, 900, 300, 950], "label": "Send"}]',
        (216, 2220),
    ),
]


@pytest.fixture(scope="module")
def grounding_qwen3(tiny_qwen3_checkpoint):
    """The tiny Qwen3-VL with its output layer fitted to answer GROUNDING_CASES."""
    model = LocalModel(tiny_qwen3_checkpoint, device="cpu", max_new_tokens=64)
    family = get_family("qwen3-vl-ground")
    cases = []
    for size, target, seed, answer, _ in GROUNDING_CASES:
        frame = family.frame(Monitor(width=size[0], height=size[1]), max_pixels=SMALL)
        cases.append(
            (
                family.grounding().prompt(target, frame),
                model_view(screen_like(*size, seed), frame),
                answer,
            )
        )
    fit_answers(model, cases)
    return model


@pytest.mark.parametrize("case", GROUNDING_CASES, ids=lambda case: case[1])
def test_greedy_0_1000_answer_lands_on_the_right_screen_pixel(grounding_qwen3, case):
    size, target, seed, answer, pixel = case
    family = get_family("qwen3-vl-ground")
    monitor = Monitor(width=size[0], height=size[1])
    frame = family.frame(monitor, max_pixels=SMALL)
    assert frame.factor == 32 and frame.resized_width % 32 == 0 == frame.resized_height % 32
    response = grounding_qwen3.respond(
        family.grounding().prompt(target, frame), model_view(screen_like(*size, seed), frame)
    )
    assert response.text == answer
    located = family.grounding().parse(response.text, frame)
    assert frame.to_screen(*located.point) == pixel
    # On a monitor to the right of a 1920-wide one, the same answer lands there.
    moved = family.frame(Monitor(left=1920, width=size[0], height=size[1]), max_pixels=SMALL)
    assert moved.to_screen(*family.grounding().parse(response.text, moved).point) == (
        1920 + pixel[0],
        pixel[1],
    )


# -- geometry: Qwen3-VL's resize and its 0-1000 grid -----------------------------------------

try:  # The torchvision module is the canonical one; its Pillow twin is a verbatim copy.
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import (
        smart_resize as hf_smart_resize,
    )
except ImportError:
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        smart_resize as hf_smart_resize,
    )


@pytest.mark.parametrize(
    "min_pixels,max_pixels",
    [
        (QWEN3_VL_MIN_PIXELS, QWEN3_VL_MAX_PIXELS),  # Qwen3-VL-*-Instruct preprocessor_config.json
        (256 * 32 * 32, 1280 * 32 * 32),  # the Qwen3-VL README's example budget
        (64 * 32 * 32, 9800 * 32 * 32),  # the 2D grounding cookbook's API budget
        (4 * 32 * 32, 16384 * 32 * 32),  # qwen-vl-utils' defaults for factor 32
        (3136, 12845056),  # the computer_use cookbook's (Qwen2.5-VL's) bounds with factor 32
    ],
)
def test_smart_resize_with_factor_32_matches_transformers(min_pixels, max_pixels):
    for height, width in boundary_sizes(32):
        ours = rejected_or(smart_resize, height, width, 32, min_pixels, max_pixels)
        assert ours == rejected_or(hf_smart_resize, height, width, 32, min_pixels, max_pixels), (
            height,
            width,
        )


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (1920, 1080),
        (1366, 768),
        (1080, 2400),
        (2560, 1440),
        (3840, 2160),
        (800, 600),
        (100, 37),
        (7000, 40),
    ],
)
def test_frame_is_the_size_qwen3s_processor_resizes_to(tiny_qwen3_model, width, height):
    """The checkpoint's own image processor, left to resize, arrives at the Frame's size."""
    frame = Frame.fit(
        Monitor(width=width, height=height), QWEN3_VL_MIN_PIXELS, QWEN3_VL_MAX_PIXELS, 32
    )
    grid = tiny_qwen3_model.image_processor(
        images=[Image.new("RGB", (width, height), "gray")], return_tensors="pt"
    )["image_grid_thw"]
    assert grid.tolist() == [[1, frame.resized_height // 16, frame.resized_width // 16]]


def test_the_0_1000_grid_maps_onto_the_whole_screen():
    frame = qwen3_frame(1920, 1080).model_copy(update={"coordinates": "rel1000"})
    assert frame.to_screen(0, 0) == (0, 0)
    assert frame.to_screen(500, 500) == (960, 540)
    assert frame.to_screen(1000, 1000) == (1919, 1079)  # the far edge, kept on the screen
    # The mobile cookbook's 999 grid: 999 is the last pixel, x / 999 * width.
    mobile = frame.model_copy(update={"coordinates": "rel999"})
    assert mobile.to_screen(999, 999) == (1919, 1079)
    assert mobile.to_screen(333, 0)[0] == round(333 / 999 * 1920)
    for bad in ((1100, 5), (-60, 5), (float("nan"), 5), (5, float("inf"))):
        with pytest.raises(CoordinateError, match="0 <= x <= 1000"):
            frame.to_screen(*bad)


def test_tool_grids_map_as_the_qwen3_cookbooks_map_them():
    """Mobile: rescale_coordinates, round(x / 999 * width) on the screenshot
    (cookbooks/mobile_agent.ipynb); computer: x / 1000 * resized_width on the resized image
    (cookbooks/computer_use.ipynb), the same point of the screen."""

    def rescale_coordinates(point, width, height):  # mobile_agent.ipynb, verbatim
        point = [round(point[0] / 999 * width), round(point[1] / 999 * height)]
        return point

    rng = random.Random(999)
    for width, height in [(1080, 2400), (720, 1280), (1440, 3200), (1920, 1080), (1366, 768)]:
        fitted = Frame.fit(
            Monitor(width=width, height=height), QWEN3_VL_MIN_PIXELS, QWEN3_VL_MAX_PIXELS, 32
        )
        mobile = fitted.model_copy(update={"coordinates": "rel999"})
        for x, y in [(0, 0), (999, 999), (500, 1)] + [
            (rng.randint(0, 999), rng.randint(0, 999)) for _ in range(300)
        ] + [(rng.randint(0, 1998) / 2, rng.randint(0, 1998) / 2) for _ in range(300)]:
            expected = rescale_coordinates([x, y], width, height)
            # The cookbook can round onto the pixel past the edge; a click stays on the screen.
            expected = [min(expected[0], width - 1), min(expected[1], height - 1)]
            assert list(mobile.to_screen(x, y)) == expected, (x, y)

        computer = fitted.model_copy(update={"coordinates": "rel1000"})
        for x, y in [(0, 0), (1000, 1000)] + [
            (rng.randint(0, 1000), rng.randint(0, 1000)) for _ in range(300)
        ]:
            resized = (x / 1000 * fitted.resized_width, y / 1000 * fitted.resized_height)
            assert computer.to_resized(x, y) == resized  # the cookbook's own arithmetic
            assert computer.to_image(x, y) == pytest.approx(
                (
                    resized[0] * width / fitted.resized_width,
                    resized[1] * height / fitted.resized_height,
                )
            )


def test_qvl_serve_answers_a_qwen3_request_as_the_model_does(tiny_qwen3_model):
    """What our endpoint backend sends for a Qwen3-VL prompt (image first, factor-32 pixels
    pinned), answered by `qvl-agent serve`'s completion service around the same model: the
    checkpoint's chat template gives the same prompt, the image keeps its size."""
    import json

    from qvl_agent.models.openai_api import EndpointModel
    from qvl_agent.openai_wire import chat_messages, png_data_url
    from qvl_agent.server.completions import CompletionService

    family = get_family("qwen3-vl-ground")
    frame = family.frame(Monitor(width=1080, height=2400), max_pixels=SMALL)
    prompt, image = (
        family.grounding().prompt("the Send icon", frame),
        model_view(screen_like(1080, 2400, 4), frame),
    )
    direct = tiny_qwen3_model.respond(prompt, image)
    client = EndpointModel("http://127.0.0.1:9/v1", "q3", factor=32, max_new_tokens=12)
    body = client._body(chat_messages(prompt, png_data_url(image)), image.width * image.height)
    completion, _ = CompletionService(tiny_qwen3_model, "q3", max_new_tokens=12).complete(body)
    assert (
        json.loads(body)["mm_processor_kwargs"]["size"]["longest_edge"]
        == image.width * image.height
    )
    assert completion["choices"][0]["message"]["content"] == direct.text
    assert completion["usage"]["prompt_tokens"] == direct.prompt_tokens


def test_a_prompt_that_opens_with_the_image_never_reuses_an_old_screenshot(tiny_qwen3_checkpoint):
    """Without a system turn the first turn holds the screenshot, and its image tokens are the
    same ids whatever it shows: the cached prefix must stop before them, or the second
    screenshot would be answered with the first one's keys and values."""
    cached = LocalModel(tiny_qwen3_checkpoint, device="cpu", max_new_tokens=8)
    plain = LocalModel(
        tiny_qwen3_checkpoint,
        device="cpu",
        max_new_tokens=8,
        reuse_system_cache=False,
        force_scaffold=False,
    )
    family = get_family("qwen3-vl-ground")
    frame = family.frame(Monitor(width=1920, height=1080), max_pixels=SMALL)
    prompt = family.grounding().prompt("the OK button", frame)
    answers = []
    for seed in (1, 2):
        image = model_view(screen_like(1920, 1080, seed), frame)
        ours, reference = cached.respond(prompt, image), plain.respond(prompt, image)
        assert ours.text == reference.text and ours.prompt_tokens == reference.prompt_tokens
        answers.append(ours.text)
    assert answers[0] != answers[1]  # the two screenshots really lead to different answers
