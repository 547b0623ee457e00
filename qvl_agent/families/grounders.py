"""Grounding-only families: models trained to answer "where is <description>?" and nothing
else (``ground`` and grounding evals use them; an agent run refuses them).

Each is a :class:`~qvl_agent.families.base.Family` with only the grounding capability: its
release's exact prompt (templates in ``prompts/``, source in each file's ``#|`` header), its
pixel bounds, resize factor and coordinate frame, and its answer grammar read by the pure
parsers of :mod:`qvl_agent.grounding_formats`. The answer stays in the family's frame ("pixels"
of the resized image, or a 0-1000 grid); :mod:`qvl_agent.geometry` converts it.

Every prompt puts the screenshot *before* the text, as each release does. The Qwen2.5-VL
based models were prompted through Qwen2.5-VL's chat template, which adds the system turn
"You are a helpful assistant." when the conversation has none; that turn is therefore part of
their prompt here (``default_system``). Qwen3-VL's template adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from qvl_agent.families.base import Family, Grounding, Located
from qvl_agent.geometry import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_PIXELS,
    FACTOR,
    QWEN3_VL_FACTOR,
    QWEN3_VL_MAX_PIXELS,
    QWEN3_VL_MIN_PIXELS,
    Coordinates,
    Frame,
)
from qvl_agent.grounding_formats import (
    GroundingAnswer,
    GroundingFormatError,
    parse_gta1,
    parse_holo1,
    parse_holo15,
    parse_qwen3_vl_grounding,
    parse_ui_venus15_ground,
    parse_ui_venus_ground,
)
from qvl_agent.parsing import ActionParseError
from qvl_agent.prompts import DEFAULT_SYSTEM, Message, Prompt, fill, template

HISTORY = "none: one screenshot, one question"
NOT_THERE = "the model answered that the target is not on the screenshot"


@dataclass(frozen=True)
class GroundingPrompt:
    """A release's grounding prompt: an optional system turn, then one user turn with the
    screenshot first and the filled-in user template after it."""

    user: str  # template under prompts/; {instruction} is the description
    # A system template under prompts/ ({width} and {height}: the resized size).
    system: str | None = None
    # The system turn Qwen2.5-VL's chat template adds to a conversation without one.
    default_system: bool = False
    # UI-Venus-1.5 drops one trailing "." from the instruction before filling it in.
    strip_final_period: bool = False

    def __call__(self, description: str, frame: Frame) -> Prompt:
        if self.strip_final_period and description.endswith("."):
            description = description[:-1]
        messages = []
        if self.system is not None:
            text = fill(template(self.system), width=str(frame.resized_width),
                        height=str(frame.resized_height))
            messages.append(Message(role="system", text=text))
        elif self.default_system:
            messages.append(Message(role="system", text=DEFAULT_SYSTEM))
        user = fill(template(self.user), instruction=description)
        messages.append(Message(role="user", text=user, image=True, image_first=True))
        return Prompt(messages=messages)


def located(read: Callable[[str], GroundingAnswer]) -> Callable[[str, Frame], Located]:
    """A grounding_formats parser as a family's grounding parser: the point and box as
    answered (the frame says what they mean); an answer off the grammar is an
    ActionParseError, which an eval counts as the wrong format."""

    def parse(text: str, frame: Frame) -> Located:
        try:
            answer = read(text)
        except GroundingFormatError as error:
            raise ActionParseError(str(error)) from None
        if answer.refused:
            return Located(point=None, notes=[NOT_THERE])
        return Located(point=answer.point, box=answer.box)

    return parse


def grounder(name: str, title: str, source: str, prompt: GroundingPrompt,
             read: Callable[[str], GroundingAnswer], *, qwen3: bool = False,
             coordinates: Coordinates = "pixels", min_pixels: int | None = None,
             max_pixels: int | None = None, names: tuple[str, ...] = ()) -> Family:
    """A grounding-only family; ``qwen3``: a Qwen3-VL checkpoint (factor 32, its bounds)."""
    return Family(
        name=name, title=title, source=source, coordinates=coordinates,
        factor=QWEN3_VL_FACTOR if qwen3 else FACTOR,
        min_pixels=min_pixels or (QWEN3_VL_MIN_PIXELS if qwen3 else DEFAULT_MIN_PIXELS),
        max_pixels=max_pixels or (QWEN3_VL_MAX_PIXELS if qwen3 else DEFAULT_MAX_PIXELS),
        history=HISTORY, spaces=(),
        ground=Grounding(prompt=prompt, parse=located(read), source=source),
        names=names, model_types=("qwen3_vl",) if qwen3 else ("qwen2_5_vl",),
    )


FAMILIES = (
    grounder(
        "holo1.5", "Hcompany/Holo1.5-3B, Holo1.5-7B, Holo1.5-72B",
        "hcompai/hai-cookbook@2ba8961 holo1_5/holo_1_5_quickstart.ipynb",
        GroundingPrompt("holo1.5/ground.txt", default_system=True), parse_holo15,
        # The cookbook resizes with the checkpoint processor's own bounds: Qwen2.5-VL's.
        names=(r"holo-?1\.5",),
    ),
    grounder(
        "holo1", "Hcompany/Holo1-3B, Holo1-7B",
        "hcompai/hai-cookbook@2ba8961 utils/localization.py, utils/image.py",
        GroundingPrompt("holo1/ground.txt", default_system=True), parse_holo1,
        max_pixels=1003520,  # utils/image.py smart_resize default: 14*14*4*1280
        names=(r"holo-?1(?![.\d])",),
    ),
    grounder(
        "gta1", "Salesforce/GTA1-7B, HelloKKMe/GTA1-7B-2507",
        "Yan98/GTA1@81f0c4c README.md (Inference), src/grpo_grounding.py",
        GroundingPrompt("gta1/user.txt", system="gta1/system.txt"), parse_gta1,
        max_pixels=4096 * 2160,  # AutoProcessor.from_pretrained(min_pixels=3136, max_pixels=...)
        names=(r"gta-?1(?!\d)",),
    ),
    grounder(
        "ui-venus-ground", "inclusionAI/UI-Venus-Ground-7B",
        "inclusionAI/UI-Venus@cd77f3c models/grounding/ui_venus_ground_7b.py",
        GroundingPrompt("ui-venus-ground/ground_7b.txt", default_system=True),
        parse_ui_venus_ground,
        # min_pixels/max_pixels on the image item: qwen_vl_utils resizes with them.
        min_pixels=2000000, max_pixels=4800000, names=(r"ui-venus-ground-7b",),
    ),
    grounder(
        "ui-venus-ground-72b", "inclusionAI/UI-Venus-Ground-72B",
        "inclusionAI/UI-Venus@cd77f3c models/grounding/ui_venus_ground_72b.py",
        GroundingPrompt("ui-venus-ground/ground_72b.txt", default_system=True),
        parse_ui_venus_ground,
        min_pixels=3110400, max_pixels=48000000,  # its smart_resize(factor=28, ...) call
        names=(r"ui-venus-ground-72b",),
    ),
    grounder(
        "ui-venus-1.5-ground", "inclusionAI/UI-Venus-1.5 (Qwen3-VL based), for grounding",
        "inclusionAI/UI-Venus@c3a1442 models/grounding/ui_venus1_5_gd.py",
        GroundingPrompt("ui-venus-1.5/ground.txt", strip_final_period=True),
        parse_ui_venus15_ground, qwen3=True, coordinates="rel1000", names=(r"ui-venus-1\.5",),
    ),
    # No names: a Qwen3-VL checkpoint is taken for the qwen3-vl agent family, whose
    # grounding goes through its computer_use prompt; this one asks for a bbox_2d.
    grounder(
        "qwen3-vl-ground", "Qwen/Qwen3-VL-2B/4B/8B/32B-Instruct, asked for a box",
        "QwenLM/Qwen3-VL cookbooks/2d_grounding.ipynb (0dcc180)",
        GroundingPrompt("qwen3-vl/ground.txt"), parse_qwen3_vl_grounding, qwen3=True,
        coordinates="rel1000",
    ),
)
