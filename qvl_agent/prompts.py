"""Render the templates in ``prompts/`` into the exact chat the model was trained on.

The system turn is "You are a helpful assistant." plus the Nous function-calling block that
Qwen-Agent v0.0.15 rendered (the tool JSON carries ``name_for_human`` and ``args_format``,
and states the *resized* screenshot size). The user turn holds the goal, the text history
of earlier steps and one screenshot. :meth:`Prompt.chat_text` renders the Qwen2.5-VL chat
template itself, so every backend sends byte-identical text.

These are the ``qwen2.5-vl`` family's prompts; other families (``qvl_agent/families``)
build theirs from the same pieces and their own templates. A template file may open with
``#|`` lines that cite its source; they are not part of the template.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from qvl_agent.actions import TOOL_NAMES, Space
from qvl_agent.geometry import Frame

VISION_PLACEHOLDER = "<|vision_start|><|image_pad|><|vision_end|>"
# The Qwen cookbooks' system message, and the system turn Qwen2.5-VL's chat template adds to
# a conversation that has none.
DEFAULT_SYSTEM = "You are a helpful assistant."
# A template's source citation: leading lines that start with this are dropped on load.
HEADER_MARK = "#|"


class Message(BaseModel):
    role: Literal["system", "user", "assistant"]
    text: str
    # Whether a screenshot follows the text in this message. The last such message gets the
    # current screenshot; earlier ones (families trained on screenshot history) get
    # ``Prompt.earlier_images`` in order.
    image: bool = False
    # The screenshot comes before the text instead (the order grounding models were trained
    # on: Holo1.5, GTA1, UI-Venus, Qwen3-VL's grounding cookbook).
    image_first: bool = False


class Prompt(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    messages: list[Message]
    # The screenshots (already resized) of the image messages before the last one.
    earlier_images: list[Any] = Field(default_factory=list, exclude=True, repr=False)

    def image_count(self) -> int:
        return sum(message.image for message in self.messages)

    def images(self, current: Any) -> list[Any]:
        """Every screenshot of this prompt in placeholder order, ``current`` last."""
        if len(self.earlier_images) != self.image_count() - 1:
            raise ValueError(
                f"the prompt has {self.image_count()} image messages but "
                f"{len(self.earlier_images)} earlier screenshots"
            )
        return [*self.earlier_images, current]

    def chat_text(self, add_generation_prompt: bool = True) -> str:
        """The Qwen2.5-VL chat template applied to these messages."""
        parts = []
        for message in self.messages:
            placeholder = VISION_PLACEHOLDER if message.image else ""
            body = placeholder + message.text if message.image_first else message.text + placeholder
            parts.append(f"<|im_start|>{message.role}\n{body}<|im_end|>\n")
        if add_generation_prompt:
            parts.append("<|im_start|>assistant\n")
        return "".join(parts)

    def digest(self) -> str:
        """A short stable id of the rendered prompt (recorded per step)."""
        return hashlib.sha256(self.chat_text().encode("utf-8")).hexdigest()[:16]

    def with_retry(self, bad_answer: str, error: str, space: Space) -> Prompt:
        """This prompt plus the unusable answer and a user turn that says what was wrong."""
        feedback = fill(template("retry.txt"), tool=TOOL_NAMES[space], error=error)
        return self.with_feedback(bad_answer, feedback)

    def with_feedback(self, bad_answer: str, feedback: str) -> Prompt:
        """This prompt plus the unusable answer and a user turn saying what to change."""
        return Prompt(
            messages=[
                *self.messages,
                Message(role="assistant", text=bad_answer),
                Message(role="user", text=feedback),
            ],
            earlier_images=self.earlier_images,
        )


def _prompts_dir() -> Path:
    """Templates ship inside the wheel as ``qvl_agent/templates``; a checkout has ``prompts/``."""
    packaged = resources.files("qvl_agent") / "templates"
    if packaged.is_dir():
        return Path(str(packaged))
    checkout = Path(__file__).resolve().parent.parent / "prompts"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        "qvl-agent's prompt templates are missing: neither qvl_agent/templates nor prompts/ "
        "exists; reinstall the package"
    )


@cache
def template(name: str) -> str:
    """The template file ``name`` (a path under prompts/), without its ``#|`` source lines."""
    text = (_prompts_dir() / name).read_text(encoding="utf-8")
    while text.startswith(HEADER_MARK):
        text = text.split("\n", 1)[1] if "\n" in text else ""
    return text


def fill(text: str, **values: str) -> str:
    """Replace ``{name}`` placeholders in one pass, so a value may itself contain braces."""
    pattern = re.compile("|".join(re.escape("{" + name + "}") for name in values))
    return pattern.sub(lambda match: values[match.group(0)[1:-1]], text)


def tool_definition(space: Space, width: float, height: float, tools: str = "") -> dict[str, Any]:
    """The tool's function dict with the screen resolution the model is told filled in;
    ``tools`` is the folder under prompts/ of another family's tool files (``qwen3-vl/``)."""
    function = json.loads(template(f"{tools}{TOOL_NAMES[space]}.json"))
    function["description"] = fill(function["description"], width=str(width), height=str(height))
    return function


# Qwen-Agent v0.0.16 (commit 8102896) stopped rendering these two fields of a tool; models
# whose prompts were made with a later release (GUI-Owl) saw the tool without them.
PRE_0_0_16_FIELDS = ("name_for_human", "args_format")


def system_text(space: Space, frame: Frame, qwen_agent_0_0_15: bool = True, tools: str = "",
                preamble: bool = True) -> str:
    """The system turn NousFnCallPrompt renders for the one tool of ``space``; as
    Qwen-Agent v0.0.15 renders it (the Qwen cookbooks), or a later release. The tool states
    the frame's extent as the screen's resolution (the resized size, or Qwen3-VL's grid).
    Without ``preamble`` it is the tool block alone, without the system message
    "You are a helpful assistant." it extends (Qwen3-VL's mobile cookbook has none)."""
    function = tool_definition(space, *frame.model_extent, tools=tools)
    if not qwen_agent_0_0_15:
        function = {k: v for k, v in function.items() if k not in PRE_0_0_16_FIELDS}
    tool_line = json.dumps({"type": "function", "function": function}, ensure_ascii=False)
    text = fill(template("system.txt"), tool_descs=tool_line)
    return text if preamble else text.removeprefix(DEFAULT_SYSTEM)


def step_list(entries: list[str]) -> str:
    """Earlier steps as the Qwen cookbooks write them: ``Step 1: ...; Step 2: ...; ``."""
    return "".join(f"Step {i}: {entry}; " for i, entry in enumerate(entries, start=1))


def user_text(goal: str, history: list[str]) -> str:
    """``history`` holds the tool-call JSON of each earlier step, oldest first."""
    return fill(template("user.txt"), goal=goal, history=step_list(history))


def build_prompt(goal: str, space: Space, frame: Frame, history: list[str] | None = None) -> Prompt:
    """The Qwen cookbooks' prompt. The mobile user turn is ``mobile_agent.ipynb``'s ("The user
    query: ... Task progress ..."). The computer one is ``computer_use.ipynb``'s bare query
    when there is no history; with history (the cookbook has none) it takes the mobile
    wording, the only text-history format the Qwen team published for these tools."""
    history = history or []
    text = goal if space == "computer" and not history else user_text(goal, history)
    return Prompt(
        messages=[
            Message(role="system", text=system_text(space, frame)),
            Message(role="user", text=text, image=True),
        ]
    )
