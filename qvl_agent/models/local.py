"""The local backend: a Qwen2.5-VL or Qwen3-VL checkpoint run with transformers on this machine.

Both architectures load through ``AutoModelForImageTextToText`` (config.json's model_type
picks ``Qwen2_5_VLForConditionalGeneration`` or ``Qwen3VLForConditionalGeneration``) and
take their input the same way, so everything below serves both; only the image processor's
settings differ (Qwen2.5-VL: 14-pixel patches, CLIP mean/std, resize factor 28; Qwen3-VL:
16-pixel patches, mean = std = 0.5, factor 32), and those are read from the checkpoint.

Processing is done here rather than by the checkpoint's processor, which in transformers 5
insists on a video processor that needs torchvision: the tokenizer encodes
``Prompt.chat_text()`` with the single ``<|image_pad|>`` expanded to one pad per merged
2x2 patch, and the image processor (its Pillow backend loads without torchvision) turns
the screenshot into patches *without resizing it*: the agent has already resized it to
the frame's size, and the coordinates the model answers in refer to exactly that size.

torch and transformers are imported only when a LocalModel is built, so that
``import qvl_agent`` stays light and works without the ``local`` extra.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qvl_agent.models.base import ModelError, Response, check_resized
from qvl_agent.models.decoding import GreedyDecoder
from qvl_agent.models.forcing import Scaffold, offered_tool
from qvl_agent.models.vision_input import patchify
from qvl_agent.prompts import VISION_PLACEHOLDER

if TYPE_CHECKING:
    from PIL import Image

    from qvl_agent.prompts import Prompt

IMAGE_PAD = "<|image_pad|>"
STOP_TOKENS = ("<|im_end|>", "<|endoftext|>")
SYSTEM_END = "<|im_end|>"
DEFAULT_MODEL = "Qwen/Qwen2.5-VL-3B-Instruct"
# config.json model_type -> the architecture's name. Both take the same inputs (image pads
# expanded per merged patch, mm_token_type_ids, 3D rope positions) and the same fast paths.
ARCHITECTURES = {"qwen2_5_vl": "Qwen2.5-VL", "qwen3_vl": "Qwen3-VL"}
# How decode passes run: "dynamic" (a growing KV cache, transformers' default), "static"
# (preallocated, fixed addresses), "compiled" (static + torch.compile of the decode pass;
# CUDA graphs on a GPU). "dynamic" is the default until the static/compiled columns of
# bench/step_latency.py show a gain on the device at hand (on this CPU they do not).
DECODE_MODES = ("dynamic", "static", "compiled")

# "org/name" or "name", as the Hub spells repository ids.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")

_DTYPES = {
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
}


def _import_backend() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as error:
        raise ModelError(
            f"the local model backend needs torch and transformers ({error.name} is missing): "
            "pip install 'qvl-agent[local]'"
        ) from None
    _check_transformers_version(transformers.__version__)
    return torch, transformers


def _check_transformers_version(version: str) -> None:
    from packaging.version import Version

    # These releases give still images the video position ids: grounding silently shifts.
    if Version("5.4.0") <= Version(version) < Version("5.5.4"):
        raise ModelError(
            f"transformers {version} mis-positions image tokens (get_rope_index bug, fixed in "
            "5.5.4): pip install 'transformers>=5.20,<6'"
        )


class LocalModel:
    """Qwen2.5-VL or Qwen3-VL from the Hugging Face cache or a local directory, greedy by default.

    ``random_weights=True`` reads only the config, tokenizer and image processor from
    ``model_id_or_path`` and initialises the weights randomly on the device: the real
    architecture's cost without its weights (see ``checkpoint.build_random_checkpoint``).
    """

    def __init__(
        self,
        model_id_or_path: str | Path = DEFAULT_MODEL,
        device: str | None = None,
        dtype: str | Any | None = None,
        max_new_tokens: int = 256,
        attn_implementation: str | None = None,
        do_sample: bool = False,
        random_weights: bool = False,
        fast_preprocess: bool = True,
        reuse_system_cache: bool = True,
        force_scaffold: bool = True,
        decode: str = "dynamic",
    ) -> None:
        torch, transformers = _import_backend()
        self._torch = torch
        source = _resolve_source(str(model_id_or_path))
        self.name = f"local:{model_id_or_path}"
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = _choose_dtype(torch, dtype, self.device)
        self.attn_implementation = attn_implementation or _choose_attention(torch, self, decode)
        self._check_decode_mode(decode)  # before the weights load: a mistake fails fast
        self.max_new_tokens = max_new_tokens
        self.do_sample = do_sample
        # False: the stock image processor (the cookbook path), kept as the benchmark baseline.
        self.fast_preprocess = fast_preprocess
        # Greedy only: forcing verifies drafts against the greedy choice.
        self.force_scaffold = force_scaffold and not do_sample
        self._scaffolds: dict[str, Scaffold] = {}
        # Reused by every step (same screen, same size): see vision_input.patchify.
        self._pixel_buffer: Any = None
        self._system_cache: tuple[str | None, Any] = (None, None)
        # One request at a time: generate() is not re-entrant and the buffer is shared.
        self._lock = threading.Lock()

        config = _load(source, transformers.AutoConfig.from_pretrained, "config")
        model_type = getattr(config, "model_type", None)
        if model_type not in ARCHITECTURES:
            raise ModelError(
                f"{source} is a {model_type or 'unknown'!r} model; the local backend runs "
                "Qwen2.5-VL and Qwen3-VL checkpoints (model_type 'qwen2_5_vl' or 'qwen3_vl')"
            )
        self.architecture = ARCHITECTURES[model_type]
        self.tokenizer = _load(source, transformers.AutoTokenizer.from_pretrained, "tokenizer")
        self.image_processor = _load(
            source, transformers.AutoImageProcessor.from_pretrained, "image processor"
        )
        self.merge_size = int(self.image_processor.merge_size)
        self.factor = int(self.image_processor.patch_size) * self.merge_size
        self.stop_ids = [self.tokenizer.convert_tokens_to_ids(token) for token in STOP_TOKENS]
        self.pad_id = self.tokenizer.pad_token_id
        self.image_pad_id = self.tokenizer.convert_tokens_to_ids(IMAGE_PAD)
        if self.image_pad_id != config.image_token_id:
            raise ModelError(
                f"{source}: the tokenizer's {IMAGE_PAD} id differs from the config's "
                f"image_token_id {config.image_token_id}; the checkpoint is inconsistent"
            )

        model_class = transformers.AutoModelForImageTextToText
        if random_weights:
            with self.device:
                self.model = model_class.from_config(
                    config, dtype=self.dtype, attn_implementation=self.attn_implementation
                )
            self.model.generation_config = _load(
                source, transformers.GenerationConfig.from_pretrained, "generation config"
            )
        else:
            self.model = _load(
                source,
                model_class.from_pretrained,
                "weights",
                dtype=self.dtype,
                attn_implementation=self.attn_implementation,
                device_map=str(self.device),
            )
        self.model.eval()
        # Greedy answers go through our decoder (system-turn cache reuse, forced scaffolding,
        # static/compiled decoding); sampling, or greedy with all of those off, through
        # generate().
        self.decoder = (
            self.new_decoder(decode, reuse_system_cache)
            if not do_sample and (reuse_system_cache or self.force_scaffold or decode != "dynamic")
            else None
        )
        # What a run records (meta.json's config) about how this model answers.
        self.options = {
            "architecture": self.architecture,
            "device": str(self.device), "dtype": str(self.dtype).removeprefix("torch."),
            "attention": self.attn_implementation, "max_new_tokens": max_new_tokens,
            "do_sample": do_sample, "fast_preprocess": fast_preprocess,
            "reuse_system_cache": reuse_system_cache and self.decoder is not None,
            "force_scaffold": self.force_scaffold, "decode": decode,
            "random_weights": random_weights,
        }

    def respond(self, prompt: Prompt, image: Image.Image) -> Response:
        return self.respond_chat(prompt.chat_text(), prompt.images(image))

    def respond_chat(self, chat_text: str, image: Image.Image | list[Image.Image],
                     max_new_tokens: int | None = None) -> Response:
        """Answer a chat already rendered with the Qwen2.5-VL template (one image placeholder
        per screenshot, ``image`` the screenshot or the list of them in order): what
        ``qvl-agent serve`` gets from a chat-completions request."""
        with self._lock:
            return self._respond(chat_text, image, max_new_tokens or self.max_new_tokens)

    def _respond(self, chat_text: str, image: Image.Image | list[Image.Image],
                 max_new_tokens: int) -> Response:
        torch = self._torch
        started = time.perf_counter()
        inputs = self.encode_chat(chat_text, image)
        prompt_tokens = int(inputs["input_ids"].shape[1])
        preprocessed = time.perf_counter()
        with torch.inference_mode():
            if self.decoder is not None:
                decoded = self.decoder.decode(
                    inputs, max_new_tokens,
                    sync=lambda: _synchronize(torch, self.device),
                    scaffold=self.scaffold_for(chat_text),
                )
                generated, timings = decoded.token_ids, dict(decoded.timings)
                cached_tokens: int | None = decoded.reused_tokens
                forced_tokens: int | None = decoded.forced_tokens if self.force_scaffold else None
            else:
                generated, timings = self._generate(inputs, prompt_tokens, preprocessed, max_new_tokens)
                cached_tokens = forced_tokens = None
        finished = time.perf_counter()
        timings["preprocess"] = (preprocessed - started) * 1000
        timings["generate"] = (finished - preprocessed) * 1000
        return Response(
            text=self.tokenizer.decode(generated, skip_special_tokens=True),
            prompt_tokens=prompt_tokens,
            generated_tokens=len(generated),
            cached_prompt_tokens=cached_tokens,
            forced_tokens=forced_tokens,
            timings=timings,
        )

    def new_decoder(self, decode: str = "dynamic", reuse_system_cache: bool = True,
                    compile_options: dict[str, Any] | None = None) -> GreedyDecoder:
        """A greedy decoder over this model (benchmarks compare several on one model)."""
        self._check_decode_mode(decode)
        return GreedyDecoder(self.model, self.stop_ids, self.model.generation_config.repetition_penalty,
                             system_end_id=self.tokenizer.convert_tokens_to_ids(SYSTEM_END),
                             reuse_prefix=reuse_system_cache,
                             cache="dynamic" if decode == "dynamic" else "static",
                             compiled=decode == "compiled", compile_options=compile_options)

    def _check_decode_mode(self, decode: str) -> None:
        if decode not in DECODE_MODES:
            raise ModelError(f"unknown decode mode {decode!r}; use one of {', '.join(DECODE_MODES)}")
        if decode != "dynamic" and self.attn_implementation.startswith("flash"):
            # Without a padding mask flash-attention reads a static cache's unfilled slots.
            raise ModelError(f"decode={decode!r} needs attn_implementation='sdpa' (or 'eager')")

    def scaffold_for(self, chat_text: str) -> Scaffold | None:
        """The tool-call scaffold for the one tool the rendered chat offers (None when forcing
        is off, or the chat offers no single computer_use/mobile_use tool)."""
        tool = offered_tool(chat_text) if self.force_scaffold else None
        if tool is None:
            return None
        if tool not in self._scaffolds:
            self._scaffolds[tool] = Scaffold(self.tokenizer, tool)
        return self._scaffolds[tool]

    def _generate(self, inputs: dict[str, Any], prompt_tokens: int, preprocessed: float,
                  max_new_tokens: int) -> tuple[list[int], dict[str, float]]:
        """transformers' generate: sampling, or greedy with every decoder option off."""
        clock = _FirstTokenClock(self.device)
        options: dict[str, Any] = {"do_sample": self.do_sample}
        if not self.do_sample:
            # Unset the checkpoint's sampling knobs so greedy decoding does not warn about them.
            options.update(temperature=None, top_p=None, top_k=None)
        output = self.model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            eos_token_id=self.stop_ids,
            pad_token_id=self.pad_id,
            logits_processor=[clock],
            **options,
        )
        _synchronize(self._torch, self.device)
        finished = time.perf_counter()
        timings: dict[str, float] = {}
        if clock.first_token_at is not None:
            # Prefill = vision encoder + prompt forward pass; decode = every later token.
            timings["prefill"] = (clock.first_token_at - preprocessed) * 1000
            timings["decode"] = (finished - clock.first_token_at) * 1000
        return output[0, prompt_tokens:].tolist(), timings

    def encode(self, prompt: Prompt, image: Image.Image) -> dict[str, Any]:
        """Token ids with the image pads expanded, plus the images' patches, on the device."""
        return self.encode_chat(prompt.chat_text(), prompt.images(image))

    def encode_chat(self, text: str, image: Image.Image | list[Image.Image]) -> dict[str, Any]:
        """:meth:`encode` for a chat already rendered to text."""
        images = list(image) if isinstance(image, (list, tuple)) else [image]
        for each in images:
            check_resized(each, self.factor)
        if text.count(VISION_PLACEHOLDER) != len(images):
            raise ModelError(
                f"the prompt must hold exactly one image placeholder per screenshot; it holds "
                f"{text.count(VISION_PLACEHOLDER)} for {len(images)}"
            )
        if len(images) == 1:
            pixel_values, grid = self._pixels(images[0])
        else:  # earlier screenshots of a history: no shared buffer (it holds one image)
            parts = [self._pixels(each, reuse_buffer=False) for each in images]
            pixel_values = self._torch.cat([values for values, _ in parts])
            grid = self._torch.cat([rows for _, rows in parts])
        pads = [int(rows.prod()) // self.merge_size**2 for rows in grid]
        input_ids = self._token_ids(text, pads)
        return {
            "input_ids": input_ids.to(self.device),
            "attention_mask": self._torch.ones_like(input_ids).to(self.device),
            # 1 marks image tokens. transformers 5 computes Qwen2.5-VL's 3D (t, h, w) image
            # positions only when it has these; without them every image token gets a plain
            # text position and grounding silently shifts.
            "mm_token_type_ids": (input_ids == self.image_pad_id).int().to(self.device),
            "pixel_values": pixel_values,
            "image_grid_thw": grid,
        }

    def _token_ids(self, text: str, pads: int | list[int]) -> Any:
        """The ids of ``text`` with each image pad repeated ``pads[i]`` times (one per merged
        2x2 patch of image i, as Qwen2_5_VLProcessor expands it). ``<|image_pad|>`` is an
        added token, so expanding the ids equals tokenizing the expanded text, without
        thousands of pads going through the tokenizer."""
        torch = self._torch
        pads = [pads] if isinstance(pads, int) else pads
        ids = torch.cat([self._system_ids(text), self._ids(text[self._system_end(text):])])
        (where,) = (ids == self.image_pad_id).nonzero(as_tuple=True)
        if len(where) != len(pads):
            raise ModelError(f"the prompt tokenized to {len(where)} image pads, expected {len(pads)}")
        pieces, start = [], 0
        for at, count in zip(where.tolist(), pads):
            pieces += [ids[start:at], torch.full((count,), self.image_pad_id, dtype=ids.dtype)]
            start = at + 1
        return torch.cat([*pieces, ids[start:]]).unsqueeze(0)

    def _ids(self, text: str) -> Any:
        return self.tokenizer(text, return_tensors="pt")["input_ids"][0]

    @staticmethod
    def _system_end(text: str) -> int:
        """Where the system turn ends: just after its ``<|im_end|>`` (an added token, so the
        text splits there exactly as the tokenizer would split it)."""
        end = text.find(SYSTEM_END)
        return 0 if end == -1 else end + len(SYSTEM_END)

    def _system_ids(self, text: str) -> Any:
        """The system turn's ids (~1000 tokens, the same every step), tokenized once."""
        system = text[: self._system_end(text)]
        if self._system_cache[0] != system:
            self._system_cache = (system, self._ids(system))
        return self._system_cache[1]

    def _pixels(self, image: Image.Image, reuse_buffer: bool = True) -> tuple[Any, Any]:
        """The vision encoder's input for an image already at the model's size."""
        if self.fast_preprocess:
            processor = self.image_processor
            # Always in inference mode: the buffer is refilled in place, and one made under a
            # caller's inference mode could not be written outside it.
            with self._torch.inference_mode():
                pixels, grid = patchify(
                    image,
                    mean=list(processor.image_mean),
                    std=list(processor.image_std),
                    patch_size=int(processor.patch_size),
                    merge_size=self.merge_size,
                    temporal_patch_size=int(processor.temporal_patch_size),
                    device=self.device,
                    dtype=self.dtype,
                    out=self._pixel_buffer if reuse_buffer else None,
                )
            if reuse_buffer:
                self._pixel_buffer = pixels
            return pixels, grid
        # do_resize=False: the image already has the size the model's coordinates refer to.
        vision = self.image_processor(
            images=[image.convert("RGB")], do_resize=False, return_tensors="pt"
        )
        return (
            vision["pixel_values"].to(self.device, self.dtype),
            vision["image_grid_thw"].to(self.device),
        )


class _FirstTokenClock:
    """A logits processor that notes when the first token's logits exist (end of prefill)."""

    def __init__(self, device: Any) -> None:
        self.device = device
        self.first_token_at: float | None = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.first_token_at is None:
            import torch

            _synchronize(torch, self.device)
            self.first_token_at = time.perf_counter()
        return scores


def _synchronize(torch: Any, device: Any) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _resolve_source(model_id_or_path: str) -> str:
    """A local checkpoint directory, or a Hub id; anything else is a clear error."""
    path = Path(model_id_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelError(
                f"{path} is not a model checkpoint directory (it has no config.json); pass the "
                "directory that holds config.json and the *.safetensors files"
            )
        return str(path)
    if (
        path.is_absolute()
        or model_id_or_path.startswith((".", "~"))
        or not _HUB_ID.match(model_id_or_path)
    ):
        raise ModelError(
            f"model directory not found: {model_id_or_path}; pass an existing checkpoint "
            f"directory or a Hugging Face model id such as {DEFAULT_MODEL}"
        )
    return model_id_or_path


def _load(source: str, loader: Any, what: str, **options: Any) -> Any:
    """Call a ``from_pretrained`` and turn "not there" into a ModelError that says what to do."""
    try:
        return loader(source, **options)
    except OSError as error:
        if Path(source).exists():
            raise ModelError(f"could not load the {what} from {source}: {error}") from None
        raise ModelError(
            f"model {source!r} is neither a local directory nor in the local Hugging Face cache, "
            f"and could not be downloaded ({what}: {str(error).splitlines()[0]}). Download it "
            f"where there is a network with `huggingface-cli download {source}` "
            f"(or `hf download {source}`), or pass a local checkpoint directory"
        ) from None


def _choose_dtype(torch: Any, dtype: Any, device: Any) -> Any:
    if dtype is None or dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32  # CPUs are slow at half precision
    if isinstance(dtype, torch.dtype):
        return dtype
    name = _DTYPES.get(str(dtype).lower().removeprefix("torch."))
    if name is None:
        raise ModelError(f"unknown dtype {dtype!r}; use one of bfloat16, float16, float32")
    return getattr(torch, name)


def _choose_attention(torch: Any, model: LocalModel, decode: str) -> str:
    """flash_attention_2 where it can run (CUDA, half precision, package installed, a
    dynamic cache), else sdpa."""
    if decode == "dynamic" and model.device.type == "cuda" and model.dtype in (torch.float16, torch.bfloat16):
        try:
            import flash_attn  # noqa: F401
        except ImportError:
            return "sdpa"
        return "flash_attention_2"
    return "sdpa"
