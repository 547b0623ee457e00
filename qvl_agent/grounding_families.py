"""Grounding-only model families: each one's trained prompt, pixel bounds, resize factor,
coordinate frame and answer parser, as data (the registry of ``qvl_agent.families`` plugs
them in; ``ground`` and grounding evals use them).

| family               | checkpoints                      | prompt (prompts/)          | frame   |
|----------------------|----------------------------------|----------------------------|---------|
| holo1.5              | Hcompany/Holo1.5-3B/7B/72B       | holo1.5/ground.txt         | pixels  |
| holo1                | Hcompany/Holo1-3B/7B             | holo1/ground.txt           | pixels  |
| gta1                 | Salesforce/GTA1-7B (-2507)       | gta1/system.txt            | pixels  |
| ui-venus-ground      | inclusionAI/UI-Venus-Ground-7B   | ui-venus-ground/ground_7b  | pixels  |
| ui-venus-ground-72b  | inclusionAI/UI-Venus-Ground-72B  | ui-venus-ground/ground_72b | pixels  |
| ui-venus-1.5-ground  | UI-Venus-1.5 (Qwen3-VL)          | ui-venus-1.5/ground.txt    | rel1000 |
| qwen3-vl-ground      | Qwen/Qwen3-VL-*-Instruct         | qwen3-vl/ground.txt        | rel1000 |

Every prompt puts the screenshot *before* the text, as each release does. The Qwen2.5-VL
based models were prompted through Qwen2.5-VL's chat template, which adds the system turn
"You are a helpful assistant." when the conversation has none; that turn is therefore part
of their prompt here (``default_system``). Qwen3-VL's template adds nothing.

"pixels" are pixels of the smart-resized image (the Frame's resized size); "rel1000" is a
0-1000 grid over the image. :meth:`GroundingFamily.locate` turns an answer into resized-image
pixels through :mod:`qvl_agent.geometry`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from qvl_agent.geometry import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_PIXELS,
    FACTOR,
    QWEN3_VL_FACTOR,
    QWEN3_VL_MAX_PIXELS,
    QWEN3_VL_MIN_PIXELS,
    Frame,
    Monitor,
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
from qvl_agent.prompts import Message, Prompt, fill, template

# The system turn Qwen2.5-VL's chat template inserts when a conversation has none.
QWEN25_DEFAULT_SYSTEM = "You are a helpful assistant."
# Marks the source lines at the top of a template (not part of the prompt).
HEADER_MARK = "#|"


class UnknownGroundingFamily(ValueError):
    """A grounding family name that is not defined here."""


@dataclass(frozen=True)
class Located:
    """A grounding answer in pixels of the resized image (what Frame.to_screen takes)."""

    point: tuple[float, float] | None
    box: tuple[float, float, float, float] | None = None
    refused: bool = False


@dataclass(frozen=True)
class GroundingFamily:
    name: str
    title: str  # the checkpoints it covers
    source: str  # where its prompt, grammar, bounds and frame were read
    architecture: str  # "Qwen2.5-VL" or "Qwen3-VL": the model class that loads it
    user_template: str  # under prompts/: the user text, {instruction} filled in
    parse: Callable[[str], GroundingAnswer]
    coordinates: str = "pixels"  # "pixels" (of the resized image) or "rel1000"
    factor: int = FACTOR
    min_pixels: int = DEFAULT_MIN_PIXELS
    max_pixels: int = DEFAULT_MAX_PIXELS
    # A system template under prompts/ ({width} and {height}: the resized size), or the
    # chat template's default system turn, or none.
    system_template: str | None = None
    default_system: bool = False
    # UI-Venus-1.5 drops one trailing "." from the instruction before filling it in.
    strip_final_period: bool = False
    # Regexes on a checkpoint's name (hub id, directory, served name) that mean this family.
    names: tuple[str, ...] = ()

    def frame(
        self, monitor: Monitor, min_pixels: int | None = None, max_pixels: int | None = None
    ) -> Frame:
        """The frame of a screenshot of ``monitor`` as this family sees it."""
        return Frame.fit(
            monitor, min_pixels or self.min_pixels, max_pixels or self.max_pixels, self.factor
        )

    def prompt(self, instruction: str, frame: Frame) -> Prompt:
        """The trained prompt asking where ``instruction`` is on a screenshot of ``frame``."""
        if self.strip_final_period and instruction.endswith("."):
            instruction = instruction[:-1]
        messages = []
        if self.system_template is not None:
            text = fill(
                grounding_template(self.system_template),
                width=str(frame.resized_width),
                height=str(frame.resized_height),
            )
            messages.append(Message(role="system", text=text))
        elif self.default_system:
            messages.append(Message(role="system", text=QWEN25_DEFAULT_SYSTEM))
        user = fill(grounding_template(self.user_template), instruction=instruction)
        messages.append(Message(role="user", text=user, image=True, image_first=True))
        return Prompt(messages=messages)

    def locate(self, answer: str, frame: Frame) -> Located:
        """The answer's point (and box) in resized-image pixels; GroundingFormatError for an
        answer off the grammar, geometry.CoordinateError for a point off the grid."""
        parsed = self.parse(answer)
        if parsed.coordinates != self.coordinates:
            raise GroundingFormatError(
                f"{self.name} answers in {self.coordinates}, its parser gave {parsed.coordinates}"
            )
        if parsed.point is None:
            return Located(point=None, refused=True)
        point, box = parsed.point, parsed.box
        if self.coordinates == "rel1000":
            grid = frame.model_copy(update={"coordinates": "rel1000"})
            point = grid.to_resized(*point)
            if box is not None:
                box = (*grid.to_resized(*box[:2]), *grid.to_resized(*box[2:]))
        return Located(point=point, box=box)


def grounding_template(name: str) -> str:
    """A template under prompts/ without its ``#|`` source lines."""
    text = template(name)
    while text.startswith(HEADER_MARK):
        text = text.split("\n", 1)[1] if "\n" in text else ""
    return text


GROUNDING_FAMILIES: dict[str, GroundingFamily] = {
    family.name: family
    for family in (
        GroundingFamily(
            name="holo1.5",
            title="Hcompany/Holo1.5-3B, Holo1.5-7B, Holo1.5-72B",
            source="hcompai/hai-cookbook@2ba8961 holo1_5/holo_1_5_quickstart.ipynb",
            architecture="Qwen2.5-VL",
            user_template="holo1.5/ground.txt",
            parse=parse_holo15,
            names=(r"(?i)holo-?1\.5",),
            default_system=True,
            # The cookbook resizes with the checkpoint processor's own min/max pixels (the
            # Qwen2.5-VL values unless the checkpoint says otherwise; the local backend reads
            # the checkpoint's).
        ),
        GroundingFamily(
            name="holo1",
            title="Hcompany/Holo1-3B, Holo1-7B",
            source="hcompai/hai-cookbook@2ba8961 utils/localization.py, utils/image.py",
            architecture="Qwen2.5-VL",
            user_template="holo1/ground.txt",
            parse=parse_holo1,
            names=(r"(?i)holo-?1(?![.\d])",),
            default_system=True,
            max_pixels=1003520,  # utils/image.py smart_resize default: 14*14*4*1280
        ),
        GroundingFamily(
            name="gta1",
            title="Salesforce/GTA1-7B, HelloKKMe/GTA1-7B-2507",
            source="Yan98/GTA1@81f0c4c README.md (Inference), src/grpo_grounding.py",
            architecture="Qwen2.5-VL",
            user_template="gta1/user.txt",
            system_template="gta1/system.txt",
            parse=parse_gta1,
            names=(r"(?i)gta-?1(?!\d)",),
            max_pixels=4096
            * 2160,  # AutoProcessor.from_pretrained(min_pixels=3136, max_pixels=...)
        ),
        GroundingFamily(
            name="ui-venus-ground",
            title="inclusionAI/UI-Venus-Ground-7B",
            source="inclusionAI/UI-Venus@cd77f3c models/grounding/ui_venus_ground_7b.py",
            architecture="Qwen2.5-VL",
            user_template="ui-venus-ground/ground_7b.txt",
            parse=parse_ui_venus_ground,
            names=(r"(?i)ui-venus-ground-7b",),
            default_system=True,
            # min_pixels/max_pixels on the image item: qwen_vl_utils resizes with them.
            min_pixels=2000000,
            max_pixels=4800000,
        ),
        GroundingFamily(
            name="ui-venus-ground-72b",
            title="inclusionAI/UI-Venus-Ground-72B",
            source="inclusionAI/UI-Venus@cd77f3c models/grounding/ui_venus_ground_72b.py",
            architecture="Qwen2.5-VL",
            user_template="ui-venus-ground/ground_72b.txt",
            parse=parse_ui_venus_ground,
            names=(r"(?i)ui-venus-ground-72b",),
            default_system=True,
            min_pixels=3110400,  # smart_resize(factor=28, min_pixels=..., max_pixels=...)
            max_pixels=48000000,
        ),
        GroundingFamily(
            name="ui-venus-1.5-ground",
            title="UI-Venus-1.5 (Qwen3-VL based)",
            source="inclusionAI/UI-Venus@c3a1442 models/grounding/ui_venus1_5_gd.py",
            architecture="Qwen3-VL",
            user_template="ui-venus-1.5/ground.txt",
            parse=parse_ui_venus15_ground,
            names=(r"(?i)ui-venus-1\.5",),
            coordinates="rel1000",
            factor=QWEN3_VL_FACTOR,
            min_pixels=QWEN3_VL_MIN_PIXELS,
            max_pixels=QWEN3_VL_MAX_PIXELS,
            strip_final_period=True,
        ),
        GroundingFamily(
            name="qwen3-vl-ground",
            title="Qwen/Qwen3-VL-2B/4B/8B/32B-Instruct",
            source="QwenLM/Qwen3-VL cookbooks/2d_grounding.ipynb (0dcc180)",
            architecture="Qwen3-VL",
            user_template="qwen3-vl/ground.txt",
            parse=parse_qwen3_vl_grounding,
            coordinates="rel1000",
            factor=QWEN3_VL_FACTOR,
            min_pixels=QWEN3_VL_MIN_PIXELS,
            max_pixels=QWEN3_VL_MAX_PIXELS,
        ),
    )
}


def grounding_family_for(checkpoint: str) -> GroundingFamily | None:
    """The grounding family whose names match ``checkpoint`` (a hub id, directory or served
    model name); None when none does. (qwen3-vl-ground has no names: a Qwen3-VL checkpoint
    is an agent model first.)"""
    for family in GROUNDING_FAMILIES.values():
        if any(re.search(pattern, checkpoint) for pattern in family.names):
            return family
    return None


def grounding_family(name: str) -> GroundingFamily:
    try:
        return GROUNDING_FAMILIES[name]
    except KeyError:
        raise UnknownGroundingFamily(
            f"unknown grounding family {name!r}; use one of {', '.join(GROUNDING_FAMILIES)}"
        ) from None
