"""AITW's step matching, computed as google-research ``android_in_the_wild/action_matching.py``
(``check_actions_match``) computes it, and the mapping of our actions onto its inputs.

The reference runs on JAX with its default 32-bit floats: the touch and lift points become
float32 arrays, so every distance, delta and comparison here is float32 too (a Python float
threshold meets a float32 array as float32), and, as XLA computes, subnormal numbers are
flushed to zero. The UI boxes are enlarged in float64, as NumPy
does it on the float64 position array SeeClick's ``aitw_test.py`` passes, and become float32
where the reference hands them to ``jnp.maximum`` / ``jnp.minimum``. Inputs:

* points are normalised ``(y, x)``: screenshot pixels divided by the screenshot's own size;
* ``annotation_positions`` rows are normalised ``(y, x, height, width)`` of the UI elements;
* action 1 is the prediction, action 2 the ground truth (the order SeeClick and Auto-UI use).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from qvl_agent.evaluation.samples import Box, Target

# android_in_the_wild/action_type.py
TYPE, DUAL_POINT, PRESS_BACK, PRESS_HOME, PRESS_ENTER = 3, 4, 5, 6, 7
STATUS_TASK_COMPLETE, STATUS_TASK_IMPOSSIBLE = 10, 11
# android_in_the_wild/action_matching.py
TAP_DISTANCE_THRESHOLD = 0.14  # fraction of the screen
ANNOTATION_WIDTH_AUGMENT_FRACTION = 1.4
ANNOTATION_HEIGHT_AUGMENT_FRACTION = 1.4
SWIPE_DISTANCE_THRESHOLD = 0.04  # a gesture at most this long is a tap

NO_POINT = (-1.0, -1.0)  # what AITW stores for actions that are not gestures
BUTTON_TYPES = {"back": PRESS_BACK, "home": PRESS_HOME, "enter": PRESS_ENTER}
STATUS_TYPES = {"success": STATUS_TASK_COMPLETE, "failure": STATUS_TASK_IMPOSSIBLE}
# Our actions that are a single touch: AITW records a tap and a long press alike, as a
# DUAL_POINT whose touch and lift (nearly) coincide.
TAP_ACTIONS = ("click", "long_press", "left_click")
# A swipe known only by its finger direction (AndroidControl): SeeClick's canonical drags,
# touch -> lift in (y, x). Only the main axis counts for AITW.
CANONICAL_SWIPES = {
    "up": ((0.8, 0.5), (0.2, 0.5)),
    "down": ((0.2, 0.5), (0.8, 0.5)),
    "left": ((0.5, 0.8), (0.5, 0.2)),
    "right": ((0.5, 0.2), (0.5, 0.8)),
}

_F32 = np.float32


@dataclass(frozen=True)
class AitwAction:
    """One action as ``check_actions_match`` takes it. ``action_type`` is the AITW enum value,
    or, for an action AITW has no type for, our action's own name (compared by name alone)."""

    action_type: int | str
    touch_yx: tuple[float, float] = NO_POINT
    lift_yx: tuple[float, float] = NO_POINT


_TINY = np.finfo(_F32).tiny
_ZERO = _F32(0)
Yx = tuple[np.float32, np.float32]


def _ftz(value):
    """XLA's float32 arithmetic (CPU and GPU) flushes subnormal inputs and results to zero."""
    if isinstance(value, np.ndarray):
        return np.where(np.abs(value) < _TINY, _ZERO, value).astype(_F32)
    return _ZERO if abs(value) < _TINY else value


def _f32(point) -> Yx:
    """A (y, x) point as the float32 pair JAX makes of it."""
    return _ftz(_F32(point[0])), _ftz(_F32(point[1]))


def _delta(a: Yx, b: Yx) -> Yx:
    return _ftz(a[0] - b[0]), _ftz(a[1] - b[1])


def _fma32(a: float, b: float, c: float) -> np.float32:
    """a * b + c for float32 numbers, rounded once to float32 (a fused multiply-add)."""
    exact_product = a * b  # exact in float64: 24-bit by 24-bit significands
    result = exact_product + c  # rounded once, to float64
    rounded = _F32(result)
    if float(rounded) != result:
        # float64 then float32 is a double rounding; it can err only when the float64 value
        # is exactly halfway between two float32 numbers. Decide that case exactly.
        toward = np.nextafter(rounded, _F32(math.copysign(math.inf, result - float(rounded))))
        if result - float(rounded) == float(toward) - result:
            excess = Fraction(a) * Fraction(b) + Fraction(c) - Fraction(result)
            if excess and (excess > 0) == (float(toward) > result):
                rounded = toward
    return rounded


def _norm(vector: Yx) -> np.float32:
    """``jnp.linalg.norm`` of a float32 (y, x) vector as JAX computes it, eagerly, on a CPU:
    XLA fuses the sum of squares into one multiply-add, sqrt(fma(y, y, x * x)), in float32
    (a plain float32 sum can differ in the last bit, and so flip a verdict at 0.04 or 0.14)."""
    y, x = vector
    x_squared = float(_ftz(x * x))
    return np.sqrt(_ftz(_fma32(float(y), float(y), x_squared)), dtype=_F32)


def is_tap_action(touch_yx, lift_yx) -> bool:
    return bool(_norm(_delta(_f32(touch_yx), _f32(lift_yx))) <= _F32(SWIPE_DISTANCE_THRESHOLD))


def resize_annotation_boxes(positions: np.ndarray) -> np.ndarray:
    """The 1.4 enlargement as the reference computes it: the top-left corner moves out by
    0.7x the size and stops at 0; the height and width become 2.4x and stop at 1 (the size is
    clipped, not the far edge)."""
    height_change = ANNOTATION_HEIGHT_AUGMENT_FRACTION * positions[:, 2]
    width_change = ANNOTATION_WIDTH_AUGMENT_FRACTION * positions[:, 3]
    return np.stack(
        [
            np.maximum(0, _ftz(positions[:, 0] - height_change / 2)),
            np.maximum(0, _ftz(positions[:, 1] - width_change / 2)),
            np.minimum(1, _ftz(positions[:, 2] + height_change)),
            np.minimum(1, _ftz(positions[:, 3] + width_change)),
        ],
        axis=1,
    ).astype(_F32)


def _in_boxes(yx: Yx, boxes: np.ndarray) -> np.ndarray:
    """Edges included; bottom = top + height, right = left + width, in float32."""
    y, x = yx
    top, left, height, width = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    return (y >= top) & (y <= _ftz(top + height)) & (x >= left) & (x <= _ftz(left + width))


def taps_match(tap_1_yx, tap_2_yx, positions: np.ndarray) -> bool:
    """Both taps inside one enlarged UI box, or at most 0.14 apart."""
    tap_1, tap_2 = _f32(tap_1_yx), _f32(tap_2_yx)
    # The reference takes the max over an empty array and fails; no boxes is no shared box.
    if len(positions):
        boxes = resize_annotation_boxes(positions)
        if bool(np.any(_in_boxes(tap_1, boxes) & _in_boxes(tap_2, boxes))):
            return True
    return bool(_norm(_delta(tap_1, tap_2)) <= _F32(TAP_DISTANCE_THRESHOLD))


def drags_match(touch_1_yx, lift_1_yx, touch_2_yx, lift_2_yx) -> bool:
    """The same main axis (y on a tie, as argmax takes the first); the sign is not compared."""
    return _main_axis(touch_1_yx, lift_1_yx) == _main_axis(touch_2_yx, lift_2_yx)


def _main_axis(touch_yx, lift_yx) -> int:
    dy, dx = _delta(_f32(lift_yx), _f32(touch_yx))
    return 0 if abs(dy) >= abs(dx) else 1  # argmax: the first of equal maxima


def check_actions_match(predicted: AitwAction, truth: AitwAction, positions: np.ndarray) -> bool:
    if predicted.action_type != DUAL_POINT or truth.action_type != DUAL_POINT:
        return predicted.action_type == truth.action_type
    predicted_tap = is_tap_action(predicted.touch_yx, predicted.lift_yx)
    truth_tap = is_tap_action(truth.touch_yx, truth.lift_yx)
    if predicted_tap != truth_tap:
        return False
    if predicted_tap:
        return taps_match(predicted.touch_yx, truth.touch_yx, positions)
    return drags_match(predicted.touch_yx, predicted.lift_yx, truth.touch_yx, truth.lift_yx)


# -- our actions as AITW's inputs ---------------------------------------------------------------


def normalised_yx(point: tuple[float, float], size: tuple[int, int]) -> tuple[float, float]:
    """A screenshot pixel (x, y) as AITW's normalised (y, x)."""
    return point[1] / size[1], point[0] / size[0]


def aitw_action(target: Target, size: tuple[int, int]) -> AitwAction:
    """Our action (predicted or ground truth) as AITW's (type, touch, lift).

    A recorded AITW gesture is taken as it is. Otherwise: taps and long presses are a
    DUAL_POINT touching and lifting at their point; a swipe touches at its first point and
    lifts at its second; typing is TYPE; Back/Home/Enter are PRESS_*; terminate is
    STATUS_TASK_COMPLETE (success) or STATUS_TASK_IMPOSSIBLE (failure). Anything else (open,
    wait, answer, key, Menu, the desktop's other mouse actions) has no AITW type and keeps its
    own name, so that it matches only the same kind, as AITW compares its non-gestures.
    """
    if target.touch_yx is not None and target.lift_yx is not None:
        return AitwAction(DUAL_POINT, tuple(target.touch_yx), tuple(target.lift_yx))
    kind = target.action
    if kind in TAP_ACTIONS and target.point is not None:
        point = normalised_yx(target.point, size)
        return AitwAction(DUAL_POINT, point, point)
    if kind == "swipe":
        if target.point is not None and target.point2 is not None:
            return AitwAction(
                DUAL_POINT, normalised_yx(target.point, size), normalised_yx(target.point2, size)
            )
        if target.direction is not None:
            return AitwAction(DUAL_POINT, *CANONICAL_SWIPES[target.direction])
    if kind == "type":
        return AitwAction(TYPE)
    if kind == "system_button" and (target.button or "").lower() in BUTTON_TYPES:
        return AitwAction(BUTTON_TYPES[(target.button or "").lower()])
    if kind == "terminate" and target.text in STATUS_TYPES:
        return AitwAction(STATUS_TYPES[target.text])
    if kind == "system_button":
        return AitwAction(f"system_button:{target.button}")
    return AitwAction(kind)


def annotation_positions(ui_boxes: list[Box], size: tuple[int, int]) -> np.ndarray:
    """Our UI boxes (x1, y1, x2, y2 pixels) as AITW's normalised (y, x, height, width), float64."""
    width, height = size
    rows = [
        (y1 / height, x1 / width, (y2 - y1) / height, (x2 - x1) / width)
        for x1, y1, x2, y2 in ui_boxes
    ]
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)
