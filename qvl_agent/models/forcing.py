"""The fixed parts of a tool call, offered as drafts for the decoder to verify.

A trained model answers ``<tool_call>\\n{"name": "computer_use", "arguments": {"action": "``,
decides an action name, then writes that action's first argument key (``", "coordinate": [``
for a click), decides its value, and after a complete last value closes with
``}}\\n</tool_call><|im_end|>``. Decoding those fixed tokens one forward pass each is pure
overhead: :class:`Scaffold` proposes them as a draft, and the decoder runs the whole draft
through the model in one pass and keeps only the prefix the model's own greedy choice agrees
with (speculative decoding with the format as the draft model). The answer is therefore the
plain greedy answer, token for token, whatever the model says; forcing only saves passes
when the model follows the format.

Drafts are always token ids of the tokenizer's own encoding of the expected text, offered
only while the ids decoded so far are a prefix of that encoding: BPE merges across a span's
boundary (``"`` + ``left``, ``]`` + ``}}\\n``) come out as the tokenizer makes them.
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

from qvl_agent.actions import TOOL_NAMES

TOOL_CALL = "<tool_call>"
CLOSE = "}}\n</tool_call><|im_end|>"


class Value(NamedTuple):
    """How an argument's value opens, and (when its end can be recognised) what a complete
    value looks like. The model decides the content; free text and plain numbers end where
    the model says, so nothing is forced after them."""

    opener: str
    complete: re.Pattern[str] | None = None


class Shape(NamedTuple):
    """The arguments the trained model writes after an action name, in its order, and
    whether the call closes right after them."""

    arguments: tuple[tuple[str, Value], ...]
    closes: bool


_POINT = Value("[", re.compile(r"-?\d+(?:\.\d+)?, -?\d+(?:\.\d+)?\]"))
_NUMBER = Value("")
_TEXT = Value('"')
_KEYS = Value('["')


def _choice(*options: str) -> Value:
    return Value('"', re.compile(f'(?:{"|".join(map(re.escape, options))})"'))


def _one(name: str, value: Value, closes: bool) -> Shape:
    return Shape(((name, value),), closes)


_STATUS = _choice("success", "failure")
_CLICK = _one("coordinate", _POINT, closes=True)

# The tool schemas' property order; clicks carry a coordinate (reference/qwen_interface.md
# §1.2). Scroll may go on with an optional coordinate, so it does not close.
SHAPES: dict[str, dict[str, Shape]] = {
    "computer_use": {
        "key": _one("keys", _KEYS, closes=False),
        "type": _one("text", _TEXT, closes=False),
        **dict.fromkeys(("mouse_move", "left_click", "left_click_drag", "right_click",
                         "middle_click", "double_click"), _CLICK),
        "scroll": _one("pixels", _NUMBER, closes=False),
        "wait": _one("time", _NUMBER, closes=False),
        "terminate": _one("status", _STATUS, closes=True),
        "answer": _one("text", _TEXT, closes=False),
    },
    "mobile_use": {
        "key": _one("text", _TEXT, closes=False),
        "click": _CLICK,
        "long_press": Shape((("coordinate", _POINT), ("time", _NUMBER)), closes=False),
        "swipe": Shape((("coordinate", _POINT), ("coordinate2", _POINT)), closes=True),
        "type": _one("text", _TEXT, closes=False),
        "system_button": _one("button", _choice("Back", "Home", "Menu", "Enter"), closes=True),
        "open": _one("text", _TEXT, closes=False),
        "wait": _one("time", _NUMBER, closes=False),
        "terminate": _one("status", _STATUS, closes=True),
        "answer": _one("text", _TEXT, closes=False),
    },
}
_ACTION_NAME = re.compile(r'(\w+)"')
# The tools block of the Nous function-calling prompt: one JSON line per tool.
_TOOLS = re.compile(r"<tools>\n(.*?)\n</tools>", re.DOTALL)


def header(tool: str) -> str:
    return f'{TOOL_CALL}\n{{"name": "{tool}", "arguments": {{"action": "'


def expected_text(tool: str, answer: str) -> str | None:
    """The longest text a well-formed ``tool`` call that begins with ``answer`` must go on to
    (``answer`` taken from its ``<tool_call>``), or None where the model decides next."""
    start = header(tool)
    if start.startswith(answer):
        return start
    if not answer.startswith(start):
        return None
    name = _ACTION_NAME.match(answer, len(start))
    if name is None or name[1] not in SHAPES[tool]:
        return None
    shape = SHAPES[tool][name[1]]
    done = answer[: name.end()]
    for key, (opener, complete) in shape.arguments:
        done += f', "{key}": {opener}'
        if done.startswith(answer):
            return done
        if not answer.startswith(done) or complete is None:
            return None
        value = complete.match(answer, len(done))
        if value is None:
            return None  # the model is still writing the value
        done = answer[: value.end()]
    done += CLOSE
    return done if shape.closes and done.startswith(answer) else None


def offered_tool(chat_text: str) -> str | None:
    """The one tool the prompt's system turn offers, if it is computer_use or mobile_use."""
    block = _TOOLS.search(chat_text.split("<|im_end|>", 1)[0])
    lines = block[1].splitlines() if block else []
    if len(lines) != 1:
        return None
    try:
        name = json.loads(lines[0])["function"]["name"]
    except (ValueError, KeyError, TypeError):
        return None
    return name if name in SHAPES else None


class Scaffold:
    """Drafts of the fixed tool-call tokens for one tool, from the ids decoded so far."""

    def __init__(self, tokenizer: Any, tool: str) -> None:
        if tool not in SHAPES:
            raise ValueError(f"no scaffold for tool {tool!r}; known: {', '.join(TOOL_NAMES.values())}")
        self.tokenizer = tokenizer
        self.tool = tool
        self.tool_call_id = tokenizer.convert_tokens_to_ids(TOOL_CALL)
        self._encoded: dict[str, list[int]] = {}

    def draft(self, generated: list[int]) -> list[int]:
        """The forced ids that should follow ``generated``; [] where the model decides."""
        if not generated:
            tail: list[int] = []
        elif self.tool_call_id in generated:
            # From the last <tool_call> (an added token: the text splits there exactly).
            tail = generated[len(generated) - 1 - generated[::-1].index(self.tool_call_id):]
        else:
            return []  # prose before any tool call: nothing is fixed yet
        answer = self.tokenizer.decode(tail, skip_special_tokens=False)
        target = expected_text(self.tool, answer)
        if target is None or target == answer:
            return []
        ids = self._encode(target)
        return ids[len(tail):] if ids[: len(tail)] == tail else []

    def _encode(self, text: str) -> list[int]:
        if text not in self._encoded:
            if len(self._encoded) > 256:  # coordinates make many distinct texts
                self._encoded.clear()
            self._encoded[text] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return self._encoded[text]
