"""What the dataset readers produce: grounding samples, step samples, and skipped records.

Every reader converts its dataset's conventions at load time, so scoring never has to know
where a sample came from: boxes are ``(x1, y1, x2, y2)`` in the screenshot's own pixels,
points are screenshot pixels, and a swipe's ``direction`` is the way the *finger* moved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in screenshot pixels
Direction = Literal["up", "down", "left", "right"]


class DatasetError(ValueError):
    """A dataset that cannot be read at all (missing file, not JSON at the top level)."""


class Skipped(BaseModel):
    """A record left out, with where it is and why; counted in the metrics."""

    where: str  # "FILE:LINE" or "FILE record N"
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


class GroundingSample(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    image: Path
    instruction: str
    box: Box
    # e.g. {"platform": "mobile", "type": "icon"} or Pro's group/application/ui_type
    split: dict[str, str] = Field(default_factory=dict)
    where: str = ""
    # The (W, H) the annotation was made on, when the screenshot is another size and the box
    # was scaled into the screenshot's pixels.
    scaled_from: tuple[float, float] | None = None


class Target(BaseModel):
    """One step's action in dataset-neutral form (ground truth, or a parsed prediction).

    ``action`` uses qvl-agent's own action names (click, swipe, type, system_button, ...).
    """

    model_config = ConfigDict(frozen=True)

    action: str
    point: tuple[float, float] | None = None
    point2: tuple[float, float] | None = None
    direction: Direction | None = None
    text: str | None = None
    button: str | None = None
    # The element(s) a click should land in (ground truth only), for box-based scorers.
    boxes: list[Box] = Field(default_factory=list)
    # The gesture as AITW/AITZ record it, when the dataset gives it: normalised (y, x) touch
    # and lift points. The aitw and aitz scorers judge the raw gesture, as their references do.
    touch_yx: tuple[float, float] | None = None
    lift_yx: tuple[float, float] | None = None


class StepSample(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    episode: str
    step: int  # 0-based position in the episode
    goal: str
    image: Path
    target: Target
    # Ground-truth actions of the earlier steps (teacher-forced history), oldest first.
    history: list[Target] = Field(default_factory=list)
    space: Literal["computer", "mobile"] = "mobile"
    # Every annotated UI element on the screen (AITW's same-box tap rule uses them).
    ui_boxes: list[Box] = Field(default_factory=list)
    # False when another step of this episode could not be read: no episode success for it.
    episode_complete: bool = True
    where: str = ""
    # As GroundingSample.scaled_from: the screen size the actions and boxes were recorded on.
    scaled_from: tuple[float, float] | None = None


def mark_incomplete(samples: list[StepSample], episodes: set[str]) -> list[StepSample]:
    return [s.model_copy(update={"episode_complete": False}) if s.episode in episodes else s
            for s in samples]


def smallest_box_containing(boxes: list[Box], point: tuple[float, float]) -> Box | None:
    """The smallest box that holds ``point`` (edges included), as UGround picks the element."""
    x, y = point
    holding = [b for b in boxes if b[0] <= x <= b[2] and b[1] <= y <= b[3]]
    return min(holding, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), default=None)


def finger_direction(start: tuple[float, float], end: tuple[float, float],
                     vertical_bias: float = 1.0) -> Direction:
    """Which way a finger moved from ``start`` to ``end`` (screen y grows downwards).

    Vertical when ``|dy| >= vertical_bias * |dx|`` (AITZ uses 0.9; 1.0 is the plain main axis).
    """
    dx, dy = end[0] - start[0], end[1] - start[1]
    if abs(dy) >= vertical_bias * abs(dx):
        return "down" if dy > 0 else "up"
    return "right" if dx > 0 else "left"


OPPOSITE: dict[str, Direction] = {"up": "down", "down": "up", "left": "right", "right": "left"}
