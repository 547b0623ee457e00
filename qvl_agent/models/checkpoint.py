"""Write Qwen2.5-VL and Qwen3-VL checkpoint directories with random weights (tests, latency
figures).

Real weights cannot be downloaded everywhere, so tests build a checkpoint that has the
real structure and loads through the very same ``from_pretrained`` calls that load
``Qwen/Qwen2.5-VL-3B-Instruct`` (``architecture="qwen2.5-vl"``) or
``Qwen/Qwen3-VL-4B-Instruct`` (``architecture="qwen3-vl"``, see the Qwen3-VL section below):

* ``config.json`` in the flat layout the Hub checkpoints use (text fields at the top,
  a full ``vision_config``), so the compatibility path of newer transformers is exercised;
* ``model.safetensors`` with random weights (legacy key names, as on the Hub);
* a byte-level BPE tokenizer trained here on the prompt templates, with the Qwen added
  tokens in Qwen's order and flags (``<tool_call>`` is *not* special) and the real
  Qwen2.5-VL chat template;
* ``preprocessor_config.json`` and ``generation_config.json`` with the 3B's values.

``size="tiny"`` is a few-layer model that answers in well under a second on a CPU.
``size="3b"`` (Qwen2.5-VL) and ``size="4b"`` (Qwen3-VL) are exactly the released configs
(their special tokens sit at the real ids 151643...); they are written without weights by
default: load them with ``LocalModel(path, random_weights=True)`` to time the real
architecture on a GPU.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

Size = Literal["tiny", "3b", "4b"]
Architecture = Literal["qwen2.5-vl", "qwen3-vl"]
# The sizes each architecture can be built at ("tiny" for tests, the rest are real configs).
SIZES: dict[str, tuple[str, ...]] = {"qwen2.5-vl": ("tiny", "3b"), "qwen3-vl": ("tiny", "4b")}

# The added tokens of the Qwen2.5 tokenizer in id order (151643...), with their "special"
# flag: decoding with skip_special_tokens=True drops the special ones only, so the
# tool-call tags survive, as they do with the real tokenizer.
ADDED_TOKENS: list[tuple[str, bool]] = [
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True),
    ("<|box_start|>", True),
    ("<|box_end|>", True),
    ("<|quad_start|>", True),
    ("<|quad_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),
]
QWEN_FIRST_ADDED_ID = 151643

# The chat template shipped with Qwen/Qwen2.5-VL-*-Instruct (tokenizer_config.json and
# chat_template.json), verbatim.
QWEN2_5_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}"
    "Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# preprocessor_config.json of Qwen/Qwen2.5-VL-3B-Instruct.
PREPROCESSOR_CONFIG: dict[str, Any] = {
    "min_pixels": 3136,
    "max_pixels": 12845056,
    "patch_size": 14,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "image_processor_type": "Qwen2VLImageProcessor",
    "processor_class": "Qwen2_5_VLProcessor",
}

# -- Qwen3-VL ------------------------------------------------------------------------------
# Qwen3-VL-*-Instruct: the Qwen3 tokenizer (the Qwen2.5 added tokens plus four more, ids
# 151665-151668, none special), its own chat template (no default system turn; an image is
# the same <|vision_start|><|image_pad|><|vision_end|>), a 16-pixel patch merged 2x2 (resize
# factor 32) normalised with mean = std = 0.5, pixel bounds given as ``size``.
QWEN3_ADDED_TOKENS: list[tuple[str, bool]] = [
    *ADDED_TOKENS,
    ("<tool_response>", False),
    ("</tool_response>", False),
    ("<think>", False),
    ("</think>", False),
]

# chat_template.json of Qwen/Qwen3-VL-4B-Instruct and Qwen3-VL-30B-A3B-Instruct, verbatim
# (two public copies agree: sophgo/LLM-TPU@2097a5a:models/Qwen3_VL/config/chat_template.json
# and a llama.cpp server log that printed the 30B's template).
QWEN3_VL_CHAT_TEMPLATE = (
    '{%- if tools %}\n'
    "    {{- '<|im_start|>system\\n' }}\n"
    "    {%- if messages[0].role == 'system' %}\n"
    '        {%- if messages[0].content is string %}\n'
    '            {{- messages[0].content }}\n'
    '        {%- else %}\n'
    '            {%- for content in messages[0].content %}\n'
    "                {%- if 'text' in content %}\n"
    '                    {{- content.text }}\n'
    '                {%- endif %}\n'
    '            {%- endfor %}\n'
    '        {%- endif %}\n'
    "        {{- '\\n\\n' }}\n"
    '    {%- endif %}\n'
    '    {{- "# Tools\\n\\nYou may call one or more functions to assist with th'
    'e user query.\\n\\nYou are provided with function signatures within <tools'
    '></tools> XML tags:\\n<tools>" }}\n'
    '    {%- for tool in tools %}\n'
    '        {{- "\\n" }}\n'
    '        {{- tool | tojson }}\n'
    '    {%- endfor %}\n'
    '    {{- "\\n</tools>\\n\\nFor each function call, return a json object with'
    ' function name and arguments within <tool_call></tool_call> XML tags:\\n<'
    'tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object'
    '>}\\n</tool_call><|im_end|>\\n" }}\n'
    '{%- else %}\n'
    "    {%- if messages[0].role == 'system' %}\n"
    "        {{- '<|im_start|>system\\n' }}\n"
    '        {%- if messages[0].content is string %}\n'
    '            {{- messages[0].content }}\n'
    '        {%- else %}\n'
    '            {%- for content in messages[0].content %}\n'
    "                {%- if 'text' in content %}\n"
    '                    {{- content.text }}\n'
    '                {%- endif %}\n'
    '            {%- endfor %}\n'
    '        {%- endif %}\n'
    "        {{- '<|im_end|>\\n' }}\n"
    '    {%- endif %}\n'
    '{%- endif %}\n'
    '{%- set image_count = namespace(value=0) %}\n'
    '{%- set video_count = namespace(value=0) %}\n'
    '{%- for message in messages %}\n'
    '    {%- if message.role == "user" %}\n'
    "        {{- '<|im_start|>' + message.role + '\\n' }}\n"
    '        {%- if message.content is string %}\n'
    '            {{- message.content }}\n'
    '        {%- else %}\n'
    '            {%- for content in message.content %}\n'
    "                {%- if content.type == 'image' or 'image' in content or "
    "'image_url' in content %}\n"
    '                    {%- set image_count.value = image_count.value + 1 %}'
    '\n'
    '                    {%- if add_vision_id %}Picture {{ image_count.value '
    '}}: {% endif -%}\n'
    '                    <|vision_start|><|image_pad|><|vision_end|>\n'
    "                {%- elif content.type == 'video' or 'video' in content %"
    '}\n'
    '                    {%- set video_count.value = video_count.value + 1 %}'
    '\n'
    '                    {%- if add_vision_id %}Video {{ video_count.value }}'
    ': {% endif -%}\n'
    '                    <|vision_start|><|video_pad|><|vision_end|>\n'
    "                {%- elif 'text' in content %}\n"
    '                    {{- content.text }}\n'
    '                {%- endif %}\n'
    '            {%- endfor %}\n'
    '        {%- endif %}\n'
    "        {{- '<|im_end|>\\n' }}\n"
    '    {%- elif message.role == "assistant" %}\n'
    "        {{- '<|im_start|>' + message.role + '\\n' }}\n"
    '        {%- if message.content is string %}\n'
    '            {{- message.content }}\n'
    '        {%- else %}\n'
    '            {%- for content_item in message.content %}\n'
    "                {%- if 'text' in content_item %}\n"
    '                    {{- content_item.text }}\n'
    '                {%- endif %}\n'
    '            {%- endfor %}\n'
    '        {%- endif %}\n'
    '        {%- if message.tool_calls %}\n'
    '            {%- for tool_call in message.tool_calls %}\n'
    '                {%- if (loop.first and message.content) or (not loop.fir'
    'st) %}\n'
    "                    {{- '\\n' }}\n"
    '                {%- endif %}\n'
    '                {%- if tool_call.function %}\n'
    '                    {%- set tool_call = tool_call.function %}\n'
    '                {%- endif %}\n'
    '                {{- \'<tool_call>\\n{"name": "\' }}\n'
    '                {{- tool_call.name }}\n'
    '                {{- \'", "arguments": \' }}\n'
    '                {%- if tool_call.arguments is string %}\n'
    '                    {{- tool_call.arguments }}\n'
    '                {%- else %}\n'
    '                    {{- tool_call.arguments | tojson }}\n'
    '                {%- endif %}\n'
    "                {{- '}\\n</tool_call>' }}\n"
    '            {%- endfor %}\n'
    '        {%- endif %}\n'
    "        {{- '<|im_end|>\\n' }}\n"
    '    {%- elif message.role == "tool" %}\n'
    '        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") '
    '%}\n'
    "            {{- '<|im_start|>user' }}\n"
    '        {%- endif %}\n'
    "        {{- '\\n<tool_response>\\n' }}\n"
    '        {%- if message.content is string %}\n'
    '            {{- message.content }}\n'
    '        {%- else %}\n'
    '            {%- for content in message.content %}\n'
    "                {%- if content.type == 'image' or 'image' in content or "
    "'image_url' in content %}\n"
    '                    {%- set image_count.value = image_count.value + 1 %}'
    '\n'
    '                    {%- if add_vision_id %}Picture {{ image_count.value '
    '}}: {% endif -%}\n'
    '                    <|vision_start|><|image_pad|><|vision_end|>\n'
    "                {%- elif content.type == 'video' or 'video' in content %"
    '}\n'
    '                    {%- set video_count.value = video_count.value + 1 %}'
    '\n'
    '                    {%- if add_vision_id %}Video {{ video_count.value }}'
    ': {% endif -%}\n'
    '                    <|vision_start|><|video_pad|><|vision_end|>\n'
    "                {%- elif 'text' in content %}\n"
    '                    {{- content.text }}\n'
    '                {%- endif %}\n'
    '            {%- endfor %}\n'
    '        {%- endif %}\n'
    "        {{- '\\n</tool_response>' }}\n"
    '        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %'
    '}\n'
    "            {{- '<|im_end|>\\n' }}\n"
    '        {%- endif %}\n'
    '    {%- endif %}\n'
    '{%- endfor %}\n'
    '{%- if add_generation_prompt %}\n'
    "    {{- '<|im_start|>assistant\\n' }}\n"
    '{%- endif %}\n'
)

# preprocessor_config.json of Qwen/Qwen3-VL-{2B,4B,8B}-Instruct: min 65536 = 64*32*32 and max
# 16777216 = 16384*32*32 pixels (64 to 16384 visual tokens), as "size" (the Qwen2-VL
# processor's min_pixels/max_pixels names are not read from this config).
QWEN3_VL_PREPROCESSOR_CONFIG: dict[str, Any] = {
    "size": {"longest_edge": 16777216, "shortest_edge": 65536},
    "patch_size": 16,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "processor_class": "Qwen3VLProcessor",
    "image_processor_type": "Qwen2VLImageProcessorFast",
}

_QWEN3_SIZES: dict[str, dict[str, Any]] = {
    # Qwen/Qwen3-VL-4B-Instruct, config.json.
    "4b": {
        "text": {
            "hidden_size": 2560,
            "intermediate_size": 9728,
            "num_hidden_layers": 36,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "head_dim": 128,
            "vocab_size": 151936,
            "max_position_embeddings": 262144,
            "mrope_section": [24, 20, 20],  # sums to head_dim / 2 = 64
            "initializer_range": 0.02,
            "dtype": "bfloat16",
        },
        "vision": {
            "depth": 24,
            "hidden_size": 1024,
            "intermediate_size": 4096,
            "num_heads": 16,
            "out_hidden_size": 2560,
            "num_position_embeddings": 2304,
            "deepstack_visual_indexes": [5, 11, 17],
            "initializer_range": 0.02,
        },
    },
    # Same structure, tiny: head_dim 16, deepstack features from both vision blocks.
    "tiny": {
        "text": {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "vocab_size": None,  # the tokenizer's size rounded up to a multiple of 64
            "max_position_embeddings": 262144,
            # Interleaved like [24, 20, 20]: t gets the rest, h and w every third frequency.
            "mrope_section": [4, 2, 2],
            "initializer_range": 0.3,  # see the Qwen2.5-VL tiny size
            "dtype": "float32",
        },
        "vision": {
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": 64,
            "num_position_embeddings": 64,  # an 8x8 grid (a square, as the model needs)
            "deepstack_visual_indexes": [0, 1],
            "initializer_range": 0.3,
        },
    },
}

# Text and vision sizes; everything else is shared by both sizes (see model_config).
_SIZES: dict[str, dict[str, Any]] = {
    # Qwen/Qwen2.5-VL-3B-Instruct, config.json.
    "3b": {
        "text": {
            "hidden_size": 2048,
            "intermediate_size": 11008,
            "num_hidden_layers": 36,
            "num_attention_heads": 16,
            "num_key_value_heads": 2,
            "vocab_size": 151936,
            "mrope_section": [16, 24, 24],  # sums to head_dim / 2 = 64
            "torch_dtype": "bfloat16",
            "initializer_range": 0.02,
        },
        "vision": {
            "depth": 32,
            "hidden_size": 1280,
            "intermediate_size": 3420,
            "num_heads": 16,
            "out_hidden_size": 2048,
            "fullatt_block_indexes": [7, 15, 23, 31],
        },
    },
    # Same structure, tiny: head_dim 16, window attention in block 0, full in block 1.
    "tiny": {
        "text": {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "vocab_size": None,  # the tokenizer's size rounded up to a multiple of 64
            "mrope_section": [2, 3, 3],  # sums to head_dim / 2 = 8
            "torch_dtype": "float32",
            # Large enough that the random answer depends on the prompt and the image
            # (at 0.02 a tiny tied-embedding model only echoes its last token).
            "initializer_range": 0.3,
        },
        "vision": {
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": 64,
            "fullatt_block_indexes": [1],
        },
    },
}

TINY_BPE_VOCAB = 1024


def tokenizer_corpus() -> list[str]:
    """Text the tiny tokenizer learns its merges from: the prompts it will encode."""
    from qvl_agent.prompts import template

    names = ["system.txt", "user.txt", "retry.txt", "computer_use.json", "mobile_use.json"]
    calls = [
        (
            '<tool_call>\n{"name": "computer_use", "arguments": {"action": "left_click", '
            '"coordinate": [1294, 811]}}\n</tool_call>'
        ),
        (
            '<tool_call>\n{"name": "mobile_use", "arguments": {"action": "type", '
            '"text": "Hello world"}}\n</tool_call>'
        ),
        'Step 1: {"name": "mobile_use", "arguments": {"action": "open", "text": "Settings"}}; ',
        '```json\n[{"bbox_2d": [43, 571, 209, 753], "label": "the search button"}]\n```',
    ]
    # Repeated so that pairs in the templates are frequent enough to be merged.
    return [template(name) for name in names] * 3 + calls * 3


def build_tokenizer(
    first_added_id: int | None = None, architecture: Architecture = "qwen2.5-vl"
):
    """A Qwen2Tokenizer (byte-level BPE: every string round-trips) with the Qwen added tokens
    and the chat template of ``architecture``'s Instruct checkpoints.

    The added tokens follow the BPE vocabulary; ``first_added_id`` pads the vocabulary with
    unreachable entries so they land on given ids (151643 for the real layout).
    """
    if architecture not in SIZES:
        raise ValueError(f"unknown architecture {architecture!r}; use one of {', '.join(SIZES)}")
    added = QWEN3_ADDED_TOKENS if architecture == "qwen3-vl" else ADDED_TOKENS
    from tokenizers import AddedToken, Regex, Tokenizer, normalizers, pre_tokenizers, trainers
    from tokenizers.models import BPE
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX, Qwen2Tokenizer

    # Train with Qwen2's own normalizer and pre-tokenizer so merges fit how it splits text.
    trainer_model = Tokenizer(BPE())
    trainer_model.normalizer = normalizers.NFC()
    trainer_model.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=TINY_BPE_VOCAB,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes
        min_frequency=2,
        show_progress=False,
    )
    trainer_model.train_from_iterator(tokenizer_corpus(), trainer)
    model_json = json.loads(trainer_model.to_str())["model"]
    vocab: dict[str, int] = model_json["vocab"]
    merges = [tuple(pair) for pair in model_json["merges"]]

    if first_added_id is not None:
        if first_added_id < len(vocab):
            raise ValueError(f"first_added_id {first_added_id} is inside the BPE vocabulary")
        # No merge produces these, so encoding never emits them.
        for index in range(len(vocab), first_added_id):
            vocab[f"<|reserved_{index}|>"] = index

    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges)  # adds <|endoftext|> next
    tokenizer.add_tokens(
        [AddedToken(text, special=True, normalized=False) for text, special in ADDED_TOKENS[1:14]],
        special_tokens=True,
    )
    tokenizer.add_tokens(
        [AddedToken(text, special=False, normalized=False) for text, special in added[14:]]
    )
    # As in the Instruct checkpoints: a chat turn ends with <|im_end|>.
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.pad_token = "<|endoftext|>"
    if architecture == "qwen3-vl":
        tokenizer.model_max_length = 262144
        tokenizer.chat_template = QWEN3_VL_CHAT_TEMPLATE
    else:
        tokenizer.model_max_length = 131072
        tokenizer.chat_template = QWEN2_5_VL_CHAT_TEMPLATE

    first = len(vocab)
    for offset, (text, _) in enumerate(added):
        if tokenizer.convert_tokens_to_ids(text) != first + offset:
            raise RuntimeError(f"added token {text} did not get id {first + offset}")
    return tokenizer


def token_ids(tokenizer) -> dict[str, int]:
    """The config's token-id fields, read from ``tokenizer``."""
    ids = tokenizer.convert_tokens_to_ids
    return {
        "bos_token_id": ids("<|endoftext|>"),
        "eos_token_id": ids("<|im_end|>"),
        "vision_start_token_id": ids("<|vision_start|>"),
        "vision_end_token_id": ids("<|vision_end|>"),
        "vision_token_id": ids("<|vision_pad|>"),
        "image_token_id": ids("<|image_pad|>"),
        "video_token_id": ids("<|video_pad|>"),
    }


def model_config(size: Size, ids: dict[str, int], vocab_size: int) -> dict[str, Any]:
    """config.json in the Hub's flat layout; for "3b" every value is the released one."""
    if size not in _SIZES:
        raise ValueError(f"unknown checkpoint size {size!r}; use 'tiny' or '3b'")
    text = dict(_SIZES[size]["text"])
    vision = _SIZES[size]["vision"]
    mrope_section = text.pop("mrope_section")
    head_dim = text["hidden_size"] // text["num_attention_heads"]
    if sum(mrope_section) != head_dim // 2:
        raise ValueError(f"mrope_section {mrope_section} must sum to head_dim/2 = {head_dim // 2}")
    if max(vision["fullatt_block_indexes"]) >= vision["depth"]:
        raise ValueError("fullatt_block_indexes must lie within the vision depth")
    text["vocab_size"] = text["vocab_size"] or vocab_size
    if text["vocab_size"] < vocab_size:
        raise ValueError(f"vocab_size {text['vocab_size']} does not cover {vocab_size} tokens")
    return {
        "architectures": ["Qwen2_5_VLForConditionalGeneration"],
        "model_type": "qwen2_5_vl",
        "attention_dropout": 0.0,
        **ids,
        "hidden_act": "silu",
        "max_position_embeddings": 128000,
        "max_window_layers": 70,
        "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0,
        "sliding_window": 32768,
        "tie_word_embeddings": True,
        "use_cache": True,
        "use_sliding_window": False,
        **text,
        "vision_config": {
            **vision,
            "hidden_act": "silu",
            "in_chans": 3,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "spatial_patch_size": 14,
            "temporal_patch_size": 2,
            "tokens_per_second": 2,
            "window_size": 112,
        },
        "rope_scaling": {"type": "mrope", "mrope_section": mrope_section},
    }


def generation_config(ids: dict[str, int]) -> dict[str, Any]:
    """generation_config.json of the Instruct checkpoints, with this tokenizer's ids."""
    return {
        "bos_token_id": ids["bos_token_id"],
        "pad_token_id": ids["bos_token_id"],
        "do_sample": True,
        "eos_token_id": [ids["eos_token_id"], ids["bos_token_id"]],
        "repetition_penalty": 1.05,
        "temperature": 0.1,
        "top_p": 0.001,
        "top_k": 1,
    }


def qwen3_vl_model_config(size: Size, ids: dict[str, int], vocab_size: int) -> dict[str, Any]:
    """Qwen3-VL config.json in the Hub's nested layout (``text_config``, ``vision_config``);
    for "4b" every value is the released one."""
    if size not in _QWEN3_SIZES:
        raise ValueError(f"unknown Qwen3-VL checkpoint size {size!r}; use 'tiny' or '4b'")
    text = dict(_QWEN3_SIZES[size]["text"])
    vision = _QWEN3_SIZES[size]["vision"]
    mrope_section = text.pop("mrope_section")
    if sum(mrope_section) != text["head_dim"] // 2:
        half = text["head_dim"] // 2
        raise ValueError(f"mrope_section {mrope_section} must sum to head_dim/2 = {half}")
    if max(vision["deepstack_visual_indexes"]) >= vision["depth"]:
        raise ValueError("deepstack_visual_indexes must lie within the vision depth")
    if len(vision["deepstack_visual_indexes"]) > text["num_hidden_layers"]:
        raise ValueError("each deepstack feature needs a text layer to join")
    if math.isqrt(vision["num_position_embeddings"]) ** 2 != vision["num_position_embeddings"]:
        raise ValueError("num_position_embeddings must be a square (a grid of positions)")
    text["vocab_size"] = text["vocab_size"] or vocab_size
    if text["vocab_size"] < vocab_size:
        raise ValueError(f"vocab_size {text['vocab_size']} does not cover {vocab_size} tokens")
    return {
        "architectures": ["Qwen3VLForConditionalGeneration"],
        "model_type": "qwen3_vl",
        "image_token_id": ids["image_token_id"],
        "video_token_id": ids["video_token_id"],
        "vision_start_token_id": ids["vision_start_token_id"],
        "vision_end_token_id": ids["vision_end_token_id"],
        "tie_word_embeddings": True,
        "text_config": {
            "model_type": "qwen3_vl_text",
            "attention_bias": False,
            "attention_dropout": 0.0,
            "bos_token_id": ids["bos_token_id"],
            "eos_token_id": ids["eos_token_id"],
            "hidden_act": "silu",
            "rms_norm_eps": 1e-06,
            "rope_scaling": {
                "mrope_interleaved": True,
                "mrope_section": mrope_section,
                "rope_type": "default",
            },
            "rope_theta": 5000000,
            "tie_word_embeddings": True,
            "use_cache": True,
            **text,
        },
        "vision_config": {
            # The released files say "qwen3_vl" here; transformers maps it to qwen3_vl_vision.
            "model_type": "qwen3_vl",
            "hidden_act": "gelu_pytorch_tanh",
            "in_channels": 3,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            **vision,
        },
    }


def qwen3_vl_generation_config(ids: dict[str, int]) -> dict[str, Any]:
    """generation_config.json of the Qwen3-VL Instruct checkpoints, with this tokenizer's ids."""
    return {
        "bos_token_id": ids["bos_token_id"],
        "pad_token_id": ids["bos_token_id"],
        "do_sample": True,
        "eos_token_id": [ids["eos_token_id"], ids["bos_token_id"]],
        "top_k": 20,
        "top_p": 0.8,
        "repetition_penalty": 1.0,
        "temperature": 0.7,
    }


def build_random_checkpoint(
    path: str | Path,
    size: Size = "tiny",
    seed: int = 0,
    write_weights: bool | None = None,
    architecture: Architecture = "qwen2.5-vl",
) -> Path:
    """Write a Qwen2.5-VL or Qwen3-VL checkpoint directory at ``path`` and return it.

    ``write_weights`` defaults to True for "tiny" and False for the real sizes ("3b" is
    about 7.5 GB in bf16, "4b" 8.9 GB); a directory without weights loads with
    ``LocalModel(path, random_weights=True)``.
    """
    if architecture not in SIZES:
        raise ValueError(f"unknown architecture {architecture!r}; use one of {', '.join(SIZES)}")
    if size not in SIZES[architecture]:
        raise ValueError(
            f"unknown {architecture} checkpoint size {size!r}; use one of "
            f"{', '.join(SIZES[architecture])}"
        )
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if write_weights is None:
        write_weights = size == "tiny"

    real_ids = QWEN_FIRST_ADDED_ID if size != "tiny" else None
    tokenizer = build_tokenizer(real_ids, architecture)
    ids = token_ids(tokenizer)
    vocab_size = math.ceil(len(tokenizer) / 64) * 64
    if architecture == "qwen3-vl":
        config = qwen3_vl_model_config(size, ids, vocab_size)
        generation = qwen3_vl_generation_config(ids)
        preprocessor, chat_template = QWEN3_VL_PREPROCESSOR_CONFIG, QWEN3_VL_CHAT_TEMPLATE
    else:
        config = model_config(size, ids, vocab_size)
        generation = generation_config(ids)
        preprocessor, chat_template = PREPROCESSOR_CONFIG, QWEN2_5_VL_CHAT_TEMPLATE

    if write_weights:
        _write_random_weights(path, config, seed)
    # Written after the weights: save_pretrained writes its own (v5-layout) config files.
    tokenizer.save_pretrained(path)
    _write_json(path / "config.json", config)
    _write_json(path / "generation_config.json", generation)
    _write_json(path / "preprocessor_config.json", preprocessor)
    _write_json(path / "chat_template.json", {"chat_template": chat_template})
    return path


def _write_random_weights(path: Path, config: dict[str, Any], seed: int) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    text = config.get("text_config", config)
    dtype = getattr(torch, text.get("dtype") or text["torch_dtype"])
    settings = dict(config)
    model_config_object = AutoConfig.for_model(settings.pop("model_type"), **settings)
    # fork_rng: building a checkpoint must not disturb the caller's random state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForImageTextToText.from_config(model_config_object, dtype=dtype)
    model.save_pretrained(path)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
