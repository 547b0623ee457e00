"""Ask a model about one saved screenshot, exactly as the agent would ask about a live one.

The same prompt, resize and parser as ``qvl-agent run`` (those of the model's family): an
eval number therefore says how the agent itself would do. Grounding questions take the
family's grounding prompt (for qwen2.5-vl, the computer_use prompt: the same as before).
"""

from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path

from PIL import Image
from pydantic import BaseModel

from qvl_agent.actions import ACTION_ADAPTER, Action, Space
from qvl_agent.evaluation.samples import Target
from qvl_agent.families import Family, Turn, get_family
from qvl_agent.families.base import located_action
from qvl_agent.geometry import Frame, Monitor, model_view
from qvl_agent.imaging import ImageReadError, open_image
from qvl_agent.models.base import Model
from qvl_agent.parsing import ActionParseError


class ImageError(ValueError):
    """The sample's image cannot be read; the sample is skipped, not scored."""


class Prediction(BaseModel):
    response: str
    action: Action | None = None
    # The action's first point in the screenshot's own pixels (unrounded).
    point: tuple[float, float] | None = None
    # The same point as the model answered it, in its family's frame (pixels, 0-1000...).
    model_point: tuple[float, float] | None = None
    box: tuple[float, float, float, float] | None = None  # when the model answered a box
    error: str | None = None  # why the answer could not be used
    # What the parser noted (e.g. a grounding model saying the target is not there).
    notes: list[str] = []
    frame: Frame  # the screenshot's size and the size the model saw
    prompt_tokens: int | None = None
    generated_tokens: int | None = None
    model_ms: float = 0.0

    @property
    def image_size(self) -> tuple[int, int]:
        return self.frame.screen_size

    @property
    def resized_size(self) -> tuple[int, int]:
        return self.frame.resized_size


def load_image(path: Path) -> Image.Image:
    try:
        return open_image(path)
    except ImageReadError as error:
        raise ImageError(str(error)) from None


def load_image_cached(path: Path) -> Image.Image:
    """:func:`load_image`, remembering the last few: grounding sets ask several questions
    about each screenshot, and decoding a PNG costs more than everything else we do."""
    try:
        stamp = path.stat().st_mtime_ns
    except OSError as error:
        raise ImageError(f"cannot read image {path}: {error}") from None
    return _load_image_at(path, stamp)


@lru_cache(maxsize=8)
def _load_image_at(path: Path, stamp: int) -> Image.Image:
    return load_image(path)  # callers only read it (model_view makes the resized copy)


def predict(model: Model, image: Image.Image, goal: str, space: Space,
            min_pixels: int | None, max_pixels: int | None, history: list[Target] | None = None,
            family: Family | str | None = None, grounding: bool = False) -> Prediction:
    """One answer of ``model`` about ``image``: an agent step towards ``goal`` after the
    ground-truth ``history``, or with ``grounding`` where ``goal`` (a description) is."""
    family = get_family(family)
    asking = family.grounding() if grounding else None
    if asking is None:
        family.check_space(space)
    width, height = image.size
    try:
        frame = family.frame(Monitor(width=width, height=height), min_pixels, max_pixels,
                             asking.space if asking else space)
    except ValueError as error:  # e.g. an aspect ratio beyond 200:1
        raise ImageError(f"a {width}x{height} image cannot be shown to the model: {error}") from None
    if asking is not None:
        prompt = asking.prompt(goal, frame)
    else:
        turns = [Turn(action=target_action(t, frame)) for t in history or []]
        prompt = family.prompt(goal, space, frame, turns, 1)
    resized = model_view(image, frame)
    started = time.perf_counter()
    response = model.respond(prompt, resized)
    prediction = Prediction(
        response=response.text, frame=frame,
        prompt_tokens=response.prompt_tokens, generated_tokens=response.generated_tokens,
        model_ms=round((time.perf_counter() - started) * 1000, 3))
    try:
        located = (asking.parse(response.text, frame) if asking is not None
                   else located_action(family.parse(response.text, frame, space)))
    except ActionParseError as error:
        prediction.error = str(error)
        return prediction
    prediction.action, prediction.notes = located.action, located.notes
    point, box = located.point, located.box
    if point is not None:
        prediction.model_point = point
        prediction.point = frame.to_image(*point)
    if box is not None:
        x1, y1 = frame.to_image(*box[:2])
        x2, y2 = frame.to_image(*box[2:])
        prediction.box = (x1, y1, x2, y2)
    return prediction


def target_action(target: Target, frame: Frame) -> Action:
    """A ground-truth step as the tool call the model would have made (for its history)."""
    fields: dict = {"action": target.action}
    points = {"coordinate": target.point, "coordinate2": target.point2}
    if target.action == "swipe" and target.point is None:
        # AndroidControl stores only a direction: a swipe over the middle third of the screen.
        centre = (frame.monitor.width / 2, frame.monitor.height / 2)
        reach = {"up": (0, -1), "down": (0, 1), "left": (-1, 0), "right": (1, 0)}[target.direction or "up"]
        points = {"coordinate": (centre[0] - reach[0] * frame.monitor.width / 6,
                                 centre[1] - reach[1] * frame.monitor.height / 6),
                  "coordinate2": (centre[0] + reach[0] * frame.monitor.width / 6,
                                  centre[1] + reach[1] * frame.monitor.height / 6)}
    for name, point in points.items():
        if point is not None:
            screen = frame.monitor.to_absolute(round(point[0]), round(point[1]))
            fields[name] = {"model": frame.to_model(*screen), "screen": screen}
    if target.action in ("type", "open", "answer"):
        fields["text"] = target.text or ""
    elif target.action == "terminate":
        fields["status"] = target.text if target.text in ("success", "failure") else "success"
    elif target.action == "system_button":
        fields["button"] = target.button
    elif target.action == "key":
        fields["keys"] = (target.text or "").split("+")
    elif target.action == "scroll":
        fields["pixels"] = 100 if target.direction == "up" else -100
    return ACTION_ADAPTER.validate_python(fields)
