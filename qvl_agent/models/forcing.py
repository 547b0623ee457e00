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
from typing import Any

from qvl_agent.actions import TOOL_NAMES

TOOL_CALL = "<tool_call>"
CLOSE = "}}\n</tool_call><|im_end|>"

# Value kinds: what opens a value and, when its end is recognisable, what a complete value
# looks like (the model decides its content; free text and plain numbers end where the
# model says, so nothing is forced after them).
_POINT = ("[", re.compile(r"-?\d+(?:\.\d+)?, -?\d+(?:\.\d+)?\]"))
_NUMBER = ("", None)
_TEXT = ('"', None)
_KEYS = ('["', None)


def _choice(*options: str) -> tuple[str, re.Pattern[str]]:
    return ('"', re.compile("(?:%s)\"" % "|".join(map(re.escape, options))))


_STATUS = _choice("success", "failure")

# The arguments the trained model writes after each action name, in its order (the tool
# schemas' property order; clicks carry a coordinate, reference/qwen_interface.md §1.2).
# An action whose arguments may go on (scroll's optional coordinate) stops after the listed
# ones without a closing draft.
ARGUMENTS: dict[str, dict[str, tuple[tuple[tuple[str, Any], ...], bool]]] = {
    "computer_use": {
        "key": ((("keys", _KEYS),), False),
        "type": ((("text", _TEXT),), False),
        **{name: ((("coordinate", _POINT),), True)
           for name in ("mouse_move", "left_click", "left_click_drag", "right_click",
                        "middle_click", "double_click")},
        "scroll": ((("pixels", _NUMBER),), False),
        "wait": ((("time", _NUMBER),), False),
        "terminate": ((("status", _STATUS),), True),
        "answer": ((("text", _TEXT),), False),
    },
    "mobile_use": {
        "key": ((("text", _TEXT),), False),
        "click": ((("coordinate", _POINT),), True),
        "long_press": ((("coordinate", _POINT), ("time", _NUMBER)), False),
        "swipe": ((("coordinate", _POINT), ("coordinate2", _POINT)), True),
        "type": ((("text", _TEXT),), False),
        "system_button": ((("button", _choice("Back", "Home", "Menu", "Enter")),), True),
        "open": ((("text", _TEXT),), False),
        "wait": ((("time", _NUMBER),), False),
        "terminate": ((("status", _STATUS),), True),
        "answer": ((("text", _TEXT),), False),
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
    if name is None or name[1] not in ARGUMENTS[tool]:
        return None
    arguments, closes = ARGUMENTS[tool][name[1]]
    done = answer[: name.end()]
    for key, (opener, complete) in arguments:
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
    return done if closes and done.startswith(answer) else None


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
    return name if name in ARGUMENTS else None


class Scaffold:
    """Drafts of the fixed tool-call tokens for one tool, from the ids decoded so far."""

    def __init__(self, tokenizer: Any, tool: str) -> None:
        if tool not in ARGUMENTS:
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
