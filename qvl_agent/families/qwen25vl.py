"""``qwen2.5-vl``: the Qwen cookbooks' computer_use / mobile_use tool calls.

Prompt: :func:`qvl_agent.prompts.build_prompt` (system turn byte-equal to Qwen-Agent v0.0.15's
NousFnCallPrompt; mobile user turn byte-equal to ``mobile_agent.ipynb``; computer user turn
byte-equal to ``computer_use.ipynb``'s bare query). Answers are parsed by
:func:`qvl_agent.parsing.parse`; prose before the tool call is the step's thought.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from qvl_agent.actions import TOOL_NAMES, Space, tool_call_json
from qvl_agent.families.base import Family, Turn, agent_grounding
from qvl_agent.geometry import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS, FACTOR, Frame
from qvl_agent.parsing import Parsed, parse
from qvl_agent.prompts import Prompt, build_prompt, fill, template

# Where a call starts when the answer has prose before it: the tag, a code fence, or the
# bare JSON object.
_CALL_START = re.compile(r"<tool_call>|```|\{")
SOURCE = ("QwenLM/Qwen2.5-VL@f0af299 cookbooks (mobile_agent.ipynb, computer_use.ipynb, "
          "utils/agent_function_call.py) + QwenLM/Qwen-Agent v0.0.15 NousFnCallPrompt")


def agent_prompt(goal: str, space: Space, frame: Frame, turns: Sequence[Turn],
                 images: int = 1) -> Prompt:
    """The cookbook prompt; each earlier step is its tool call in model coordinates."""
    return build_prompt(goal, space, frame, [tool_call_json(t.action, space) for t in turns])


def parse_answer(text: str, frame: Frame, space: Space) -> Parsed:
    parsed = parse(text, frame, space)
    if parsed.thought is None:
        parsed.thought = prose_before_call(text)
    return parsed


def prose_before_call(text: str) -> str | None:
    """What the model wrote before its tool call (its reasoning), or None."""
    match = _CALL_START.search(text)
    prose = text[: match.start()].strip() if match else ""
    return prose or None


def renamed_actions(text: str, names: Mapping[str, str]) -> tuple[str, list[str]]:
    """``text`` with each ``"action": "old"`` of a tool call renamed to ``"new"`` (actions a
    family's model says that our tool schemas name otherwise), and a note for each."""
    notes = []
    for old, new in names.items():
        pattern = re.compile(r'("action"\s*:\s*")' + re.escape(old) + '(")')
        if pattern.search(text):
            text = pattern.sub(r"\g<1>" + new + r"\2", text)
            notes.append(f'action "{old}" read as "{new}"')
    return text, notes


def feedback(error: str, space: Space) -> str:
    return fill(template("retry.txt"), tool=TOOL_NAMES[space], error=error)


FAMILY = Family(
    name="qwen2.5-vl",
    title="Qwen2.5-VL-3B/7B/32B/72B-Instruct and fine-tunes trained on its tool calls",
    source=SOURCE,
    coordinates="pixels",
    factor=FACTOR,
    min_pixels=DEFAULT_MIN_PIXELS,
    max_pixels=DEFAULT_MAX_PIXELS,
    history="text in the user turn: 'Step 1: {tool call}; Step 2: ...; ', current screenshot only",
    prompt=agent_prompt,
    parse=parse_answer,
    feedback=feedback,
    # ScreenSpot as the Qwen team scored it (QwenLM/Qwen2.5-VL#763): the computer_use prompt
    # with the description as the query and one screenshot.
    ground=agent_grounding(agent_prompt, parse_answer, "computer",
                           "the computer_use prompt (QwenLM/Qwen2.5-VL#763)"),
    names=(r"qwen2\.?5[-_ ]?vl",),
    architectures=("Qwen2_5_VLForConditionalGeneration",),
)
