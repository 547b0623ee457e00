"""``gui-owl``: X-PLUG's GUI-Owl-7B/32B (Qwen2.5-VL fine-tunes), on phones.

* Prompt (X-PLUG/MobileAgent ``Mobile-Agent-v3/cookbook/end2end_usage.ipynb``, the usage
  the README points to): the Qwen ``mobile_use`` tool schema in the system turn, rendered by
  ``NousFnCallPrompt()`` of a Qwen-Agent release after v0.0.15 (so without
  ``name_for_human``/``args_format``); a user turn asking for ``<thinking>`` before and
  ``<conclusion>`` after the ``<tool_call>``, with the screenshot after the text.
* History: the conclusions of the earlier steps, ``Step 1: ...; Step 2: ...; `` in the user
  turn, newlines and double quotes removed as the AndroidWorld agent does
  (``android_world/agents/gui_owl.py``); one screenshot, the current one.
* Coordinates: absolute pixels of the image smart-resized with factor 28,
  ``MIN_PIXELS = 3136``, ``MAX_PIXELS = 10035200`` (the cookbook).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qvl_agent.actions import Space
from qvl_agent.families import qwen25vl
from qvl_agent.families.base import Family, Turn, summary_steps
from qvl_agent.geometry import FACTOR, Frame
from qvl_agent.parsing import Parsed, parse
from qvl_agent.prompts import Message, Prompt, fill, system_text, template

NAME = "gui-owl"
MIN_PIXELS = 3136
MAX_PIXELS = 10035200
_THINKING = re.compile(r"<(thinking|think)>(.*?)(?:</\1>|(?=<tool_call>)|$)", re.DOTALL)
_CONCLUSION = re.compile(r"<conclusion>(.*?)(?:</conclusion>|$)", re.DOTALL)
SOURCE = ("X-PLUG/MobileAgent@5db74ac Mobile-Agent-v3/cookbook/end2end_usage.ipynb "
          "(+ android_world_v3 agents/gui_owl.py for the history)")


def agent_prompt(goal: str, space: Space, frame: Frame, turns: Sequence[Turn],
                 images: int = 1) -> Prompt:
    user = fill(template("gui-owl/user.txt"), instruction=goal, history=summary_steps(turns, space))
    return Prompt(messages=[
        Message(role="system", text=system_text(space, frame, qwen_agent_0_0_15=False)),
        Message(role="user", text=user, image=True),
    ])


def parse_answer(text: str, frame: Frame, space: Space) -> Parsed:
    # The AndroidWorld agent renames "tap" to "click" before executing.
    text, notes = qwen25vl.renamed_actions(text, {"tap": "click"})
    parsed = parse(text, frame, space)
    parsed.notes[:0] = notes
    thinking = _THINKING.search(text)
    parsed.thought = (thinking.group(2).strip() or None) if thinking else \
        qwen25vl.prose_before_call(text)
    conclusion = _CONCLUSION.search(text)
    parsed.summary = (conclusion.group(1).strip() or None) if conclusion else None
    if parsed.summary is None:
        parsed.notes.append("no <conclusion>; the tool call stands for this step in the history")
    return parsed


FAMILY = Family(
    name=NAME,
    title="GUI-Owl-7B / GUI-Owl-32B (mPLUG/GUI-Owl-7B)",
    source=SOURCE,
    coordinates="pixels",
    factor=FACTOR,
    min_pixels=MIN_PIXELS,
    max_pixels=MAX_PIXELS,
    history="the <conclusion> of each earlier step as 'Step 1: ...; ' in the user turn, "
            "current screenshot only",
    prompt=agent_prompt,
    parse=parse_answer,
    feedback=qwen25vl.feedback,
    spaces=("mobile",),
    names=(r"gui[-_ ]?owl",),
)
