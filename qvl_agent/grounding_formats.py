"""The answer grammars of grounding-only models: one pure function per family, text -> point.

Each parser reads exactly what its model was trained to write (the grammar of its own
release; the source is named at each function and in the family's template header) and
returns the point to click, and the box when the model answered one, *in that family's
coordinate frame*, named in :attr:`GroundingAnswer.coordinates`:

* ``pixels``: pixels of the smart-resized image the model saw (Holo1, Holo1.5, GTA1,
  UI-Venus-Ground);
* ``rel1000``: a 0-1000 grid over the image (UI-Venus-1.5, Qwen3-VL).

Turning that into a screen pixel is :mod:`qvl_agent.geometry`'s job. An answer that does not
follow the grammar raises :class:`GroundingFormatError` with a one-line message saying what
was expected; nothing is guessed. Where a reference script silently scored a malformed answer
as a point at (0, 0) (a miss), we raise instead, which an eval also counts as a miss.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

# Answers longer than this are not grounding answers (and are not worth a regex over).
MAX_ANSWER_CHARS = 20_000
# The 0-1000 grid of the relative frames.
GRID = 1000


class GroundingFormatError(ValueError):
    """An answer that does not follow its family's grammar; the message says what was expected."""


@dataclass(frozen=True)
class GroundingAnswer:
    """Where a grounding model points, in its own coordinate frame.

    ``point`` is None only when the model said the target is not there (``refused``).
    """

    point: tuple[float, float] | None
    coordinates: Literal["pixels", "rel1000"]
    box: tuple[float, float, float, float] | None = None
    refused: bool = False


def _checked(text: str) -> str:
    if not isinstance(text, str):
        raise GroundingFormatError(f"the answer must be text, got {type(text).__name__}")
    if len(text) > MAX_ANSWER_CHARS:
        raise GroundingFormatError(
            f"the answer is {len(text)} characters long; a grounding answer is a few dozen"
        )
    return text


def _number(value: object, what: str) -> float:
    """A finite real number (bools are not numbers here, whatever Python thinks)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise GroundingFormatError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _centre(box: tuple[float, float, float, float]) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def _on_grid(values: tuple[float, ...], what: str) -> None:
    for value in values:
        if not 0 <= value <= GRID:
            raise GroundingFormatError(f"{what} {list(values)} is off the 0-{GRID} grid")


# -- Holo1.5 -------------------------------------------------------------------------------


class _ClickAbsoluteAction(BaseModel):
    """Holo1.5's answer schema, as its cookbook declares it (ClickAbsoluteAction)."""

    action: Literal["click_absolute"] = "click_absolute"
    x: int = Field(description="The x coordinate, number of pixels from the left edge.")
    y: int = Field(description="The y coordinate, number of pixels from the top edge.")


def parse_holo15(text: str) -> GroundingAnswer:
    """Holo1.5: ``{"action": "click_absolute", "x": 947, "y": 338}`` in resized pixels.

    Validated as the cookbook validates it, ``ClickAbsoluteAction.model_validate_json``
    (hcompai/hai-cookbook@2ba8961 holo1_5/holo_1_5_quickstart.ipynb): the whole answer is one
    JSON object, ``action`` may be left out, ``x``/``y`` are whole numbers (a JSON number with
    a fraction is refused, as pydantic refuses it).
    """
    try:
        click = _ClickAbsoluteAction.model_validate_json(_checked(text))
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the answer"
        raise GroundingFormatError(
            'expected one JSON object {"action": "click_absolute", "x": <int>, "y": <int>}; '
            f"{where}: {first['msg']}"
        ) from None
    return GroundingAnswer(point=(float(click.x), float(click.y)), coordinates="pixels")


# -- Holo1 ---------------------------------------------------------------------------------

_HOLO1_CLICK = re.compile(r"Click\(\s*(\d+)\s*,\s*(\d+)\s*\)")


def parse_holo1(text: str) -> GroundingAnswer:
    """Holo1: ``Click(352, 348)`` in resized pixels; the first such call in the answer counts
    (``extract_click`` of hcompai/hai-cookbook@2ba8961 holo1/vllm/invoke_localization.ipynb)."""
    match = _HOLO1_CLICK.search(_checked(text))
    if match is None:
        raise GroundingFormatError(
            "expected a click position written Click(x, y) with whole pixels"
        )
    return GroundingAnswer(point=(float(match[1]), float(match[2])), coordinates="pixels")


# -- GTA1 ----------------------------------------------------------------------------------

_GTA1_PAIR = re.compile(r"\((-?\d*\.?\d+),\s*(-?\d*\.?\d+)\)")


def parse_gta1(text: str) -> GroundingAnswer:
    """GTA1: ``(x,y)`` in resized pixels; the first pair counts, as in ``extract_coordinates``
    of Yan98/GTA1@81f0c4c README.md (the regex is the release's). Its ``int()`` fails on a
    pair with a fraction, which the release scores as (0, 0); here that is a format error."""
    match = _GTA1_PAIR.search(_checked(text))
    if match is None:
        raise GroundingFormatError("expected the coordinate pair exactly as (x,y)")
    try:
        x, y = int(match[1]), int(match[2])
    except ValueError:
        raise GroundingFormatError(
            f"expected whole pixels in (x,y), got ({match[1]},{match[2]})"
        ) from None
    return GroundingAnswer(point=(float(x), float(y)), coordinates="pixels")


# -- UI-Venus-Ground (7B, 72B) -------------------------------------------------------------


def parse_ui_venus_ground(text: str) -> GroundingAnswer:
    """UI-Venus-Ground-7B/72B: ``[x1,y1,x2,y2]`` in resized pixels; the point is its centre.

    The release reads the answer with ``eval`` and uses its first four items
    (inclusionAI/UI-Venus@cd77f3c models/grounding/ui_venus_ground_7b.py): here a Python
    literal (``ast.literal_eval``, never ``eval``) list or tuple whose first four items are
    numbers. Coordinates are the resized image's pixels: the release divides them by the
    resized size (``image_grid_thw * 14``) - not by 1000.
    """
    stripped = _checked(text).strip()
    try:
        value = ast.literal_eval(stripped)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise GroundingFormatError("expected only a box [x1,y1,x2,y2]") from None
    if not isinstance(value, (list, tuple)) or len(value) < 4:
        raise GroundingFormatError(f"expected only a box [x1,y1,x2,y2], got {stripped[:80]!r}")
    box = tuple(_number(item, "each box coordinate") for item in value[:4])
    return GroundingAnswer(point=_centre(box), coordinates="pixels", box=box)  # type: ignore[arg-type]


# -- UI-Venus-1.5 --------------------------------------------------------------------------

_INT = r"\s*-?\d+\s*"
_VENUS15_BOX = re.compile(rf"\[{_INT},{_INT},{_INT},{_INT}\]", re.DOTALL)
_VENUS15_POINT = re.compile(rf"\[{_INT},{_INT}\]", re.DOTALL)
_VENUS15_TWO_POINTS = re.compile(rf"\[{_INT},{_INT}\],\s*\[{_INT},{_INT}\]", re.DOTALL)
_INTEGERS = re.compile(r"-?\d+")


def parse_ui_venus15_ground(text: str) -> GroundingAnswer:
    """UI-Venus-1.5: ``[x,y]`` on the 0-1000 grid, or ``[-1,-1]`` when the target is not there.

    A faithful transcription of ``_parse_point`` (inclusionAI/UI-Venus@c3a1442
    models/grounding/ui_venus1_5_gd.py), with its accepted forms: ``[x,y]``; a box
    ``[x1,y1,x2,y2]`` (its centre only, as there); two points ``[x1,y1], [x2,y2]`` (their
    middle); else the whole numbers between the first ``[`` and the next ``]`` (the first two
    of them). Integers only. Points off the 0-1000 grid are refused (the release would score
    them as misses).
    """
    stripped = _checked(text).strip()
    numbers: list[float]
    try:
        # The release evals what its patterns matched (brackets, commas, whole numbers); a
        # literal does the same, including refusing numbers written with leading zeros.
        if _VENUS15_BOX.fullmatch(stripped):
            x1, y1, x2, y2 = ast.literal_eval(stripped)
            numbers = [(x1 + x2) / 2, (y1 + y2) / 2]  # the release keeps only the centre
        elif _VENUS15_POINT.fullmatch(stripped):
            numbers = [float(n) for n in ast.literal_eval(stripped)]
        elif _VENUS15_TWO_POINTS.fullmatch(stripped.replace(" ", "")):
            (a, b), (c, d) = ast.literal_eval("[" + stripped + "]")
            numbers = [(a + c) / 2, (b + d) / 2]
        else:
            # The release's fallback: list(map(int, text.split(']')[0].split('[')[1].split(','))).
            inside = stripped.split("]")[0].split("[")[1]
            numbers = [float(int(part)) for part in inside.split(",")]
    except (IndexError, ValueError, SyntaxError):
        raise GroundingFormatError(
            "expected the coordinates of a point as [x,y] on the 0-1000 grid "
            "([-1,-1] when the target is not there)"
        ) from None
    if len(numbers) < 2:
        raise GroundingFormatError(f"expected a point [x,y], got {len(numbers)} number")
    if numbers == [-1.0, -1.0]:
        return GroundingAnswer(point=None, coordinates="rel1000", refused=True)
    point = (numbers[0], numbers[1])  # the release reads the first two numbers
    _on_grid(point, "the point")
    return GroundingAnswer(point=point, coordinates="rel1000")


# -- Qwen3-VL ------------------------------------------------------------------------------


def _fenced_json(text: str) -> str:
    """The text after a line that is exactly ```json, up to the next ``` (the cookbook's
    ``parse_json``); the whole text when there is no such line."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line == "```json":
            return "\n".join(lines[index + 1 :]).split("```")[0]
    return text


def parse_qwen3_vl_grounding(text: str) -> GroundingAnswer:
    """Qwen3-VL: ``[{"bbox_2d": [x1, y1, x2, y2], "label": ...}]`` (usually in a ```json
    fence) on the 0-1000 grid; the first object with a ``bbox_2d`` (its centre) or, failing
    that, a ``point_2d`` counts.

    As the 2D grounding cookbook reads it (QwenLM/Qwen3-VL cookbooks/2d_grounding.ipynb,
    ``parse_json`` + ``plot_bounding_boxes``): strip the fence, ``ast.literal_eval``, and when
    the answer was cut off, keep it up to the last complete ``"}`` and close the list; a
    single object counts as a list of one; corners given in the wrong order are swapped.
    """
    body = _fenced_json(_checked(text))
    try:
        value = ast.literal_eval(body.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        end = body.rfind('"}')
        try:
            value = ast.literal_eval(body[: end + 2].strip() + "]") if end != -1 else None
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            value = None
        if value is None:
            raise GroundingFormatError(
                'expected JSON like [{"bbox_2d": [x1, y1, x2, y2], "label": "..."}]'
            ) from None
    items = value if isinstance(value, list) else [value]
    for key in ("bbox_2d", "point_2d"):
        for item in items:
            if isinstance(item, dict) and key in item:
                return _qwen3_item(item[key], key)
    raise GroundingFormatError('expected an object with "bbox_2d": [x1, y1, x2, y2]')


def _qwen3_item(coordinates: object, key: str) -> GroundingAnswer:
    size = 4 if key == "bbox_2d" else 2
    if not isinstance(coordinates, (list, tuple)) or len(coordinates) != size:
        raise GroundingFormatError(f'"{key}" must hold {size} numbers, got {coordinates!r}')
    values = tuple(_number(value, f'each "{key}" coordinate') for value in coordinates)
    _on_grid(values, f'"{key}"')
    if key == "point_2d":
        return GroundingAnswer(point=(values[0], values[1]), coordinates="rel1000")
    x1, y1, x2, y2 = values
    box = (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
    return GroundingAnswer(point=_centre(box), coordinates="rel1000", box=box)
