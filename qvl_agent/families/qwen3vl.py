"""``qwen3-vl``: Qwen3-VL-Instruct checkpoints, with the tools of the Qwen3-VL cookbooks.

* **Resize**: 16-pixel patches merged 2x2, so both sides become multiples of 32, within the
  checkpoints' preprocessor_config bounds ``size = {"shortest_edge": 65536, "longest_edge":
  16777216}`` (``geometry.QWEN3_VL_*``; ``geometry.smart_resize(h, w, 32, ...)`` equals the
  Qwen3-VL image processor's resize, tests/test_qwen3_vl.py).
* **Coordinates**: relative. The tool states a fixed screen instead of the screenshot's size:
  computer_use (QwenLM/Qwen3-VL ``cookbooks/computer_use.ipynb``, read from the copy
  Firefly-llm/Qwen3-VL@08254a9, the upstream blob being missing) says 1000x1000 and maps
  ``x / 1000 * resized_width`` (frame ``rel1000``); mobile_use
  (``cookbooks/mobile_agent.ipynb`` @9658872) says 999x999 and maps
  ``round(x / 999 * width)`` (frame ``rel999``). OSWorld's qwen3vl agent mixes the two (tool
  1000, code 999); we follow each cookbook.
* **Prompts**: computer: the system message "You are a helpful assistant." extended by
  NousFnCallPrompt with the Qwen3-era ComputerUse tool (``cookbooks/utils/agent_function_call.py``:
  adds ``triple_click``, ``hscroll``, ``answer``; rendered without ``name_for_human`` and
  ``args_format``), the bare query, then the screenshot (the cookbook's transformers
  variant). Mobile: the cookbook's own system prompt (the tool block without that message,
  the mobile_use tool without ``key``/``open`` and with ``answer``, and a "Response format"
  section: Thought, Action, one tool call), then ``The user query: ...`` with the history,
  then the screenshot.
* **History**: the mobile cookbook's ``Step 1: ...; `` of each earlier step's "Action:" line
  (newlines and double quotes removed); a step without one is its tool call. The computer
  cookbook has no history; with one, the mobile cookbook's user turn carries it.
* **Grammar**: Qwen2.5-VL's tool call (its parser, with this family's frame); "Thought:" is
  the step's thought and "Action:" its summary. ``triple_click`` and ``hscroll`` are done as
  the tool description says ("simulated as double-click", "mapped to regular scroll").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qvl_agent.actions import Space
from qvl_agent.families import qwen25vl
from qvl_agent.families.base import Family, Turn, summary_steps
from qvl_agent.geometry import QWEN3_VL_FACTOR, QWEN3_VL_MAX_PIXELS, QWEN3_VL_MIN_PIXELS, Frame
from qvl_agent.parsing import Parsed
from qvl_agent.prompts import Message, Prompt, fill, system_text, template

NAME = "qwen3-vl"
TOOLS = "qwen3-vl/"  # the folder of its tool files under prompts/
SOURCE = ("QwenLM/Qwen3-VL cookbooks computer_use.ipynb (96a8f59, as Firefly-llm/Qwen3-VL"
          "@08254a9), mobile_agent.ipynb @9658872, utils/agent_function_call.py @0dcc180")
# Actions its computer_use tool offers that our schema names otherwise, as the tool says.
RENAMED = {"triple_click": "double_click", "hscroll": "scroll"}
# "Thought: ..." and "Action: ..." lines before the tool call (optionally numbered "1)").
_LABEL = re.compile(r"^[ \t]*(?:\d\)[ \t]*)?(Thought|Action)[ \t]*:[ \t]*", re.MULTILINE)


def agent_prompt(goal: str, space: Space, frame: Frame, turns: Sequence[Turn],
                 images: int = 1) -> Prompt:
    """The cookbook's prompt for ``space``; ``frame`` is that space's (rel1000 / rel999)."""
    if space == "mobile":
        system = (system_text(space, frame, qwen_agent_0_0_15=False, tools=TOOLS, preamble=False)
                  + template(f"{TOOLS}mobile_format.txt"))
    else:
        system = system_text(space, frame, qwen_agent_0_0_15=False, tools=TOOLS)
    if space == "computer" and not turns:
        user = goal
    else:
        user = fill(template(f"{TOOLS}user.txt"), instruction=goal,
                    history=summary_steps(turns, space))
    return Prompt(messages=[Message(role="system", text=system),
                            Message(role="user", text=user, image=True)])


def parse_answer(text: str, frame: Frame, space: Space) -> Parsed:
    text, notes = qwen25vl.renamed_actions(text, RENAMED)
    parsed = qwen25vl.parse_answer(text, frame, space)
    parsed.notes[:0] = notes
    labelled = labelled_lines(parsed.thought or "")
    if labelled:
        parsed.thought = labelled.get("Thought") or None
        parsed.summary = labelled.get("Action") or None
    return parsed


def labelled_lines(prose: str) -> dict[str, str]:
    """The text after each label ("Thought", "Action") up to the next one; first wins."""
    parts = _LABEL.split(prose)
    found: dict[str, str] = {}
    for label, body in zip(parts[1::2], parts[2::2]):
        found.setdefault(label, body.strip())
    return found


FAMILY = Family(
    name=NAME,
    title="Qwen3-VL-2B/4B/8B/32B-Instruct (and the MoE 30B-A3B, 235B-A22B through an endpoint)",
    source=SOURCE,
    coordinates="rel1000",
    space_coordinates={"mobile": "rel999"},
    factor=QWEN3_VL_FACTOR,
    min_pixels=QWEN3_VL_MIN_PIXELS,
    max_pixels=QWEN3_VL_MAX_PIXELS,
    history="each earlier step's 'Action:' line (else its tool call) as 'Step 1: ...; ' in the "
            "user turn, current screenshot only",
    prompt=agent_prompt,
    parse=parse_answer,
    feedback=qwen25vl.feedback,
    names=(r"qwen3[-_ ]?vl",),
    architectures=("Qwen3VLForConditionalGeneration", "Qwen3VLMoeForConditionalGeneration"),
    model_types=("qwen3_vl", "qwen3_vl_moe"),
)
