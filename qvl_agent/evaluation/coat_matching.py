"""AITZ's step matching: the rules of CoAT's ``coat/evaluate.py`` (``ActionEvaluator``), with
its helpers from ``coat/screen_utils.py`` and ``coat/action_utils.py``, and the mapping of our
actions onto them.

CoAT judges five action types: click, scroll, type, press, stop. Per type:

* click: the ground-truth click point inside the predicted box enlarged 1.2x (edges included),
  or inside a UI box enlarged 1.2x whose IoU with the enlarged predicted box is over 0.5;
* scroll: the direction word equal; press: the button equal; stop: the type is enough;
* type: on the raw strings, ``pred in gt or gt in pred or Levenshtein.ratio(pred, gt) > 0.8``.

One deviation, because the published code cannot score a click: its ``_parse_answer_`` fills the
ground-truth point only for scrolls and leaves ``[0, 0]`` for clicks, so every click is judged
at the screen's corner. We use the click point CoAT itself defines in ``extract_gt_action``:
the lift point times the screenshot size, rounded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qvl_agent.evaluation.aitw_matching import is_tap_action
from qvl_agent.evaluation.samples import Box, Target

ENLARGE = 1.2  # screen_utils.enlarge_bbox's default, used for both boxes
IOU_THRESHOLD = 0.5
TEXT_RATIO_THRESHOLD = 0.8
VERTICAL_BIAS = 0.9  # action_utils.extract_gt_action: vertical when |dy| >= 0.9 |dx|
BUTTONS = ("enter", "back", "home")  # the order _parse_answer_ searches the description in


@dataclass(frozen=True)
class CoatAction:
    """One action as ``ActionEvaluator`` sees it: its type (None when CoAT has none for it) and
    the detail its type is judged by."""

    action_type: str | None
    point: tuple[int, int] | None = None  # ground truth: the click point (pixels)
    bbox: tuple[float, float, float, float] | None = None  # prediction: xmin, ymin, xmax, ymax
    direction: str | None = None
    text: str = ""
    button: str | None = None


def levenshtein_ratio(a: str, b: str) -> float:
    """python-Levenshtein's ``ratio``: 1 - indel distance / (len a + len b), computed in that
    order so that the float is the library's to the last bit."""
    total = len(a) + len(b)
    if not total:
        return 1.0
    previous = [0] * (len(b) + 1)  # longest common subsequence, one row at a time
    for char in a:
        current = [0]
        for j, other in enumerate(b, start=1):
            current.append(
                previous[j - 1] + 1 if char == other else max(previous[j], current[j - 1])
            )
        previous = current
    return 1 - (total - 2 * previous[-1]) / total


def text_match(predicted: str, truth: str) -> bool:
    return (
        predicted in truth
        or truth in predicted
        or levenshtein_ratio(predicted, truth) > TEXT_RATIO_THRESHOLD
    )


def enlarge_boxes(boxes, scale: float = ENLARGE) -> np.ndarray:
    """screen_utils.enlarge_bbox: each box scaled about its centre (float64)."""
    array = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x_min, y_min, x_max, y_max = array[:, 0], array[:, 1], array[:, 2], array[:, 3]
    x_center, y_center = (x_min + x_max) / 2, (y_min + y_max) / 2
    width, height = (x_max - x_min) * scale, (y_max - y_min) * scale
    return np.vstack(
        (x_center - width / 2, y_center - height / 2, x_center + width / 2, y_center + height / 2)
    ).T


def intersect_iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """screen_utils.intersect_iou: areas floored at 1, so a zero-size box has area 1."""
    inter_w = np.maximum(0, np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]))
    inter_h = np.maximum(0, np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]))
    inter = inter_w * inter_h
    area = np.maximum((box[2] - box[0]) * (box[3] - box[1]), 1)
    other_areas = np.maximum((others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1]), 1)
    return inter / (area + other_areas - inter)


def click_match(bbox, point: tuple[int, int], ui_boxes: list[Box]) -> bool:
    """ActionEvaluator._check_click_."""
    if bbox is None:
        return False
    x_min, y_min, x_max, y_max = enlarged = enlarge_boxes([bbox])[0]
    x, y = point
    if x_min <= x <= x_max and y_min <= y <= y_max:
        return True
    if not ui_boxes:  # the reference indexes an empty array and fails; no boxes, no match
        return False
    nodes = enlarge_boxes(ui_boxes)
    inside = ((nodes[:, 0] <= x) & (x <= nodes[:, 2])) & ((nodes[:, 1] <= y) & (y <= nodes[:, 3]))
    if not np.any(inside):
        return False
    return bool(np.any(intersect_iou(enlarged, nodes[inside]) > IOU_THRESHOLD))


def coat_direction(touch_yx, lift_yx) -> str:
    """extract_gt_action's scroll word for a gesture in normalised (y, x): 'up' is the finger
    moving up (lift above touch)."""
    v_change = abs(touch_yx[0] - lift_yx[0])
    h_change = abs(lift_yx[1] - touch_yx[1])
    if v_change >= VERTICAL_BIAS * h_change:
        return "up" if lift_yx[0] < touch_yx[0] else "down"
    return "left" if lift_yx[1] < touch_yx[1] else "right"


def _yx(point: tuple[float, float], size: tuple[int, int]) -> tuple[float, float]:
    return point[1] / size[1], point[0] / size[0]


def coat_truth(target: Target, size: tuple[int, int]) -> CoatAction:
    """The ground truth as CoAT reads it. A recorded AITW gesture is classified as CoAT's
    extract_gt_action does (a tap within 0.04, as AITW computes it, is a click at the lift
    point; else a scroll named by the 0.9 rule); that function wrote the AITZ labels
    (``coat_action_desc``) whose first words ``_parse_answer_`` reads."""
    width, height = size
    if target.touch_yx is not None and target.lift_yx is not None:
        touch, lift = target.touch_yx, target.lift_yx
        if is_tap_action(touch, lift):
            return CoatAction("click", point=(round(lift[1] * width), round(lift[0] * height)))
        return CoatAction("scroll", direction=coat_direction(touch, lift))
    kind = target.action
    if kind in ("click", "left_click") and target.point is not None:
        return CoatAction("click", point=(round(target.point[0]), round(target.point[1])))
    if kind == "swipe":
        return CoatAction("scroll", direction=_swipe_direction(target, size))
    if kind == "type":
        return CoatAction("type", text=target.text or "")
    if kind == "system_button":
        button = (target.button or "").lower()
        return CoatAction("press", button=button if button in BUTTONS else "")
    if kind == "terminate":
        return CoatAction("stop")
    return CoatAction(None)


def coat_prediction(target: Target, size: tuple[int, int]) -> CoatAction:
    """A prediction as CoAT's ``_parse_action_`` would hold it. A click's box is the box the
    model answered (its ``boxes``), else the zero-size box at its point, in pixels rounded as
    CoAT rounds its 0-1000 boxes; a swipe's direction is named by the rule above."""
    kind = target.action
    if kind in ("click", "left_click"):
        if target.boxes:
            bbox = target.boxes[0]
        elif target.point is not None:
            bbox = (*target.point, *target.point)
        else:
            return CoatAction("click")
        return CoatAction("click", bbox=tuple(round(v) for v in bbox))
    if kind == "swipe":
        return CoatAction("scroll", direction=_swipe_direction(target, size))
    if kind == "type":
        return CoatAction("type", text=target.text or "")
    if kind == "system_button":
        return CoatAction("press", button=(target.button or "").lower())
    if kind == "terminate":
        return CoatAction("stop")
    return CoatAction(None)


def _swipe_direction(target: Target, size: tuple[int, int]) -> str | None:
    if target.point is not None and target.point2 is not None:
        return coat_direction(_yx(target.point, size), _yx(target.point2, size))
    return target.direction


def coat_exact_match(predicted: CoatAction, truth: CoatAction, ui_boxes: list[Box]) -> bool:
    if predicted.action_type is None or predicted.action_type != truth.action_type:
        return False
    kind = predicted.action_type
    if kind == "click":
        return click_match(predicted.bbox, truth.point, ui_boxes)
    if kind == "scroll":
        return predicted.direction == truth.direction
    if kind == "type":
        return text_match(predicted.text, truth.text)
    if kind == "press":
        return predicted.button == truth.button
    return True  # stop
