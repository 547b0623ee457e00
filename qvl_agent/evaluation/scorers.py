"""How a prediction is judged: grounding hits and the named step scorers.

Step scorers differ in their click rule and their text rule; every other action type is
judged the same way by all of them (swipe: the finger's direction; system_button: the
button; wait and terminate: the type alone, as AITZ and the Qwen team score them).

* ``aitw``: AITW's ``action_matching.py``: a click matches when the two points are within
  0.14 of each other in normalised (y, x) or inside the same UI box enlarged 1.4x
  (2.4x the width and height); text per AITZ's ``evaluate.py`` (substring either way, or
  Levenshtein ratio > 0.8).
* ``norm1000``: OS-Atlas / UI-TARS: within 140 in the 0-1000 frame of each axis; text
  equal, or token-set F1 > 0.5.
* ``box``: the point inside the target element's box, edges included (needs boxes in the
  dataset); text per the Qwen team's gist (case-insensitive substring either way).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from qvl_agent.evaluation.samples import Box, StepSample, Target

POINT_ACTIONS = ("click", "long_press", "left_click", "right_click", "middle_click",
                 "double_click", "mouse_move", "left_click_drag")


def point_in_box(point: tuple[float, float], box: Box) -> bool:
    """Edges included, as every ScreenSpot script scores."""
    x, y = point
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


# -- text rules ---------------------------------------------------------------------------------


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def levenshtein_ratio(a: str, b: str) -> float:
    """python-Levenshtein's ``ratio``: 1 - indel distance / (len a + len b)."""
    if not a and not b:
        return 1.0
    previous = [0] * (len(b) + 1)  # longest common subsequence, one row at a time
    for char in a:
        current = [0]
        for j, other in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if char == other else max(previous[j], current[j - 1]))
        previous = current
    return 2 * previous[-1] / (len(a) + len(b))


def text_aitz(predicted: str, target: str) -> bool:
    p, t = _norm(predicted), _norm(target)
    return p in t or t in p or levenshtein_ratio(p, t) > 0.8


def text_f1(predicted: str, target: str) -> bool:
    p, t = set(_norm(predicted).split()), set(_norm(target).split())
    if _norm(predicted) == _norm(target):
        return True
    common = len(p & t)
    if not common:
        return False
    precision, recall = common / len(p), common / len(t)
    return 2 * precision * recall / (precision + recall) > 0.5


def text_substring(predicted: str, target: str) -> bool:
    p, t = _norm(predicted), _norm(target)
    return p in t or t in p


# -- click rules -----------------------------------------------------------------------------------

ClickRule = Callable[[tuple[float, float], Target, StepSample, tuple[int, int]], bool]


def click_aitw(point, target: Target, sample: StepSample, size: tuple[int, int]) -> bool:
    width, height = size
    if math.dist((point[0] / width, point[1] / height),
                 (target.point[0] / width, target.point[1] / height)) <= 0.14:
        return True
    return any(point_in_box(point, box) and point_in_box(target.point, box)
               for box in (_augment_aitw(b, size) for b in sample.ui_boxes))


def _augment_aitw(box: Box, size: tuple[int, int]) -> Box:
    """AITW's 1.4 augmentation as its code does it: the corner moves out by 0.7x the size and
    clips at 0, the size becomes 2.4x and clips at the screen's (not the far edge)."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    left, top = max(0.0, x1 - 0.7 * w), max(0.0, y1 - 0.7 * h)
    return left, top, left + min(float(size[0]), 2.4 * w), top + min(float(size[1]), 2.4 * h)


def click_norm1000(point, target: Target, sample: StepSample, size: tuple[int, int]) -> bool:
    width, height = size
    return math.dist((point[0] * 1000 / width, point[1] * 1000 / height),
                     (target.point[0] * 1000 / width, target.point[1] * 1000 / height)) <= 140


def click_box(point, target: Target, sample: StepSample, size: tuple[int, int]) -> bool:
    return any(point_in_box(point, box) for box in target.boxes)


@dataclass(frozen=True)
class StepScorer:
    name: str
    click: ClickRule
    text: Callable[[str, str], bool]
    needs_boxes: bool = False

    def type_match(self, predicted: Target | None, target: Target) -> bool:
        return predicted is not None and predicted.action == target.action

    def exact_match(self, predicted: Target | None, target: Target, sample: StepSample,
                    size: tuple[int, int]) -> bool:
        if not self.type_match(predicted, target):
            return False
        action = target.action
        if action in POINT_ACTIONS and target.point is not None:
            return predicted.point is not None and self.click(predicted.point, target, sample, size)
        if action in ("swipe", "scroll"):
            return predicted.direction == target.direction
        if action in ("type", "open", "answer"):
            return self.text(predicted.text or "", target.text or "")
        if action == "system_button":
            return (predicted.button or "").lower() == (target.button or "").lower()
        if action == "key":
            return (predicted.text or "").lower() == (target.text or "").lower()
        return True  # wait, terminate: the type is the whole action


STEP_SCORERS = {
    scorer.name: scorer for scorer in (
        StepScorer("aitw", click_aitw, text_aitz),
        StepScorer("norm1000", click_norm1000, text_f1),
        StepScorer("box", click_box, text_substring, needs_boxes=True),
    )
}
