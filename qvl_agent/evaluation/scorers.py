"""How a prediction is judged: grounding hits and the named step scorers.

Each scorer carries its source (``SCORERS_SOURCES``): the reference it transcribes (repository,
path, commit) or the note that the rules are ours. ``metrics.json`` names the scorer with it.

* ``aitw``: exactly google-research ``android_in_the_wild/action_matching.py``
  ``check_actions_match`` (prediction as action 1, ground truth as action 2), see
  :mod:`qvl_agent.evaluation.aitw_matching` for the mapping of our actions onto it.
* ``aitz``: the rules of CoAT's ``coat/evaluate.py`` with the ground-truth click point filled
  in (the published code leaves it at [0, 0]), see :mod:`qvl_agent.evaluation.coat_matching`.
* ``strict`` (ours): the same action kind; a click within 0.14 of the normalised screen or in
  the same UI box enlarged 1.4x (in float64, on the points given); a swipe in the same finger
  direction (sign included); text per AITZ's rule on lowercased, whitespace-collapsed
  strings; the same button, key, and terminate status.
* ``norm1000`` (ours, after OS-Atlas / UI-TARS): within 140 in the 0-1000 frame; text equal
  or token-set F1 > 0.5; otherwise as ``strict`` but terminate by its kind alone.
* ``box`` (ours, after the Qwen team's gists): the point inside the target element's box,
  edges included (needs boxes in the dataset); text a case-insensitive substring either way.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

from qvl_agent.evaluation.aitw_matching import (
    aitw_action,
    annotation_positions,
    check_actions_match,
)
from qvl_agent.evaluation.coat_matching import (
    coat_exact_match,
    coat_prediction,
    coat_truth,
    levenshtein_ratio,
)
from qvl_agent.evaluation.samples import Box, StepSample, Target, finger_direction

__all__ = [
    "STEP_SCORERS",
    "DEFAULT_SCORERS",
    "GROUNDING_SCORER",
    "GROUNDING_SOURCE",
    "default_scorer",
    "describe_grounding",
    "grounding_hit",
    "levenshtein_ratio",
    "point_in_box",
]

POINT_ACTIONS = (
    "click",
    "long_press",
    "left_click",
    "right_click",
    "middle_click",
    "double_click",
    "mouse_move",
    "left_click_drag",
)


@dataclass(frozen=True)
class ScorerSource:
    """Where a scorer's rules come from, recorded beside every figure it produced."""

    rules: str
    reference: str | None = None  # the repository it transcribes; None: the rules are ours
    path: str | None = None
    commit: str | None = None
    variant: str | None = None  # where it deliberately differs from the reference, and why

    def as_dict(self) -> dict[str, str]:
        return {key: value for key, value in asdict(self).items() if value is not None}


def point_in_box(point: tuple[float, float], box: Box) -> bool:
    """Edges included, as every ScreenSpot script scores."""
    x, y = point
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


# -- grounding (ScreenSpot v1/v2/Pro) ----------------------------------------------------------

GROUNDING_SOURCE = ScorerSource(
    rules="the predicted point, normalised by the size the model saw, inside the target box "
    "normalised by the screenshot's size, edges included; an answer without a point is "
    "wrong and stays in the denominator (wrong_format)",
    reference="likaixin2000/ScreenSpot-Pro-GUI-Grounding (njucckevin/SeeClick scores alike)",
    path="eval_screenspot_pro.py: eval_sample_positive_gt; models/qwen2_5vl.py "
    "(SeeClick: pretrain/screenspot_test.py)",
    commit="588f1f25a59318d49cf2a657e8dc18529c723713 "
    "(SeeClick 661ff1b2bfc178ef147fcaabcffbfc34b42455a9)",
    variant="records we cannot score (missing image, malformed or out-of-image box) are "
    "skipped and listed; the references stop on them. accuracy counts scored samples; "
    "accuracy_counting_skipped counts every record, a skipped one as wrong",
)


def grounding_hit(
    point: tuple[float, float] | None,
    resized_size: tuple[int, int],
    box: Box,
    image_size: tuple[int, int],
) -> bool:
    """``point`` in the model's own pixels (of the ``resized_size`` image it saw); ``box`` in
    the screenshot's pixels. Compared as ScreenSpot-Pro's eval does: both normalised to [0, 1]
    first (its Qwen2.5-VL wrapper divides by the resized size, the eval divides the box by
    ``img_size``)."""
    if point is None:
        return False
    x, y = point[0] / resized_size[0], point[1] / resized_size[1]
    width, height = image_size
    return (box[0] / width <= x <= box[2] / width) and (box[1] / height <= y <= box[3] / height)


# -- text rules ---------------------------------------------------------------------------------


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def text_normalised_aitz(predicted: str, target: str) -> bool:
    """AITZ's text rule on lowercased, whitespace-collapsed strings (ours; aitz compares raw)."""
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


def click_near_or_same_box(
    point, target: Target, sample: StepSample, size: tuple[int, int]
) -> bool:
    """strict's click rule: AITW's two tap tests in float64 on the points given (the ground
    truth's lift point for AITZ), whatever the gesture's length."""
    width, height = size
    if (
        math.dist(
            (point[0] / width, point[1] / height),
            (target.point[0] / width, target.point[1] / height),
        )
        <= 0.14
    ):
        return True
    return any(
        point_in_box(point, box) and point_in_box(target.point, box)
        for box in (_augment_aitw(b, size) for b in sample.ui_boxes)
    )


def _augment_aitw(box: Box, size: tuple[int, int]) -> Box:
    """AITW's 1.4 augmentation as its code does it: the corner moves out by 0.7x the size and
    clips at 0, the size becomes 2.4x and clips at the screen's (not the far edge)."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    left, top = max(0.0, x1 - 0.7 * w), max(0.0, y1 - 0.7 * h)
    return left, top, left + min(float(size[0]), 2.4 * w), top + min(float(size[1]), 2.4 * h)


def click_norm1000(point, target: Target, sample: StepSample, size: tuple[int, int]) -> bool:
    width, height = size
    return (
        math.dist(
            (point[0] * 1000 / width, point[1] * 1000 / height),
            (target.point[0] * 1000 / width, target.point[1] * 1000 / height),
        )
        <= 140
    )


def click_box(point, target: Target, sample: StepSample, size: tuple[int, int]) -> bool:
    return any(point_in_box(point, box) for box in target.boxes)


# -- the scorers ------------------------------------------------------------------------------


def _normalised_direction(target: Target, size: tuple[int, int]) -> str | None:
    """A predicted swipe's finger direction, on the normalised screen (as the datasets label
    theirs): in pixels a tall screen would call some vertical swipes horizontal."""
    if target.action == "swipe" and target.point is not None and target.point2 is not None:
        width, height = size
        return finger_direction(
            (target.point[0] / width, target.point[1] / height),
            (target.point2[0] / width, target.point2[1] / height),
        )
    return target.direction


def rule_exact(click: ClickRule, text: Callable[[str, str], bool], check_status: bool):
    """Our scorers' exact match: the same kind, then the kind's detail."""

    def exact(predicted: Target, target: Target, sample: StepSample, size: tuple[int, int]) -> bool:
        action = target.action
        if action in POINT_ACTIONS and target.point is not None:
            return predicted.point is not None and click(predicted.point, target, sample, size)
        if action in ("swipe", "scroll"):
            return _normalised_direction(predicted, size) == target.direction
        if action in ("type", "open", "answer"):
            return text(predicted.text or "", target.text or "")
        if action == "system_button":
            return (predicted.button or "").lower() == (target.button or "").lower()
        if action == "key":
            return (predicted.text or "").lower() == (target.text or "").lower()
        if action == "terminate" and check_status:
            return predicted.text == target.text
        return True  # wait (and terminate when its status is not checked): the kind is all

    return exact


def same_kind(predicted: Target, target: Target) -> bool:
    return predicted.action == target.action


def aitw_type_match(predicted: Target, target: Target) -> bool:
    """AITW's action types equal (a tap and a swipe are both DUAL_POINT), as SeeClick's
    'Type Acc' counts; sizes do not matter for the type."""
    return aitw_action(predicted, (1, 1)).action_type == aitw_action(target, (1, 1)).action_type


def aitw_exact(
    predicted: Target, target: Target, sample: StepSample, size: tuple[int, int]
) -> bool:
    return check_actions_match(
        aitw_action(predicted, size),
        aitw_action(target, size),
        annotation_positions(sample.ui_boxes, size),
    )


def coat_type_match(predicted: Target, target: Target) -> bool:
    kind = coat_prediction(predicted, (1, 1)).action_type
    return kind is not None and kind == coat_truth(target, (1, 1)).action_type


def coat_exact(
    predicted: Target, target: Target, sample: StepSample, size: tuple[int, int]
) -> bool:
    return coat_exact_match(
        coat_prediction(predicted, size), coat_truth(target, size), sample.ui_boxes
    )


@dataclass(frozen=True)
class StepScorer:
    name: str
    source: ScorerSource
    type_rule: Callable[[Target, Target], bool]
    exact_rule: Callable[[Target, Target, StepSample, tuple[int, int]], bool]
    needs_boxes: bool = False

    def describe(self) -> dict[str, str]:
        """The scorer as metrics.json names it."""
        return {"name": self.name, **self.source.as_dict()}

    def type_match(self, predicted: Target | None, target: Target) -> bool:
        return predicted is not None and self.type_rule(predicted, target)

    def exact_match(
        self, predicted: Target | None, target: Target, sample: StepSample, size: tuple[int, int]
    ) -> bool:
        """``size``: the screenshot's (width, height), which normalises points."""
        return self.type_match(predicted, target) and self.exact_rule(
            predicted, target, sample, size
        )


AITW_SOURCE = ScorerSource(
    rules="check_actions_match, prediction as action 1: non-gestures by action type alone "
    "(typed text and status not compared); a gesture of normalised length <= 0.04 is a "
    "tap; taps match within 0.14 of each other (touch points, normalised (y, x)) or "
    "inside one UI box enlarged 1.4x; swipes match on the main axis, sign ignored",
    reference="google-research/google-research",
    path="android_in_the_wild/action_matching.py (+ action_type.py)",
    commit="8d8a4f1b27753c7580d16261a1468b3d6ad2c3d3",
    variant="none in the rules (float32, as JAX computes). Our actions map onto AITW's types: "
    "click/long_press/left_click tap at their point, swipe touches at its first point "
    "and lifts at its second, type TYPE, Back/Home/Enter PRESS_*, terminate "
    "success/failure STATUS_TASK_COMPLETE/IMPOSSIBLE; other kinds (open, wait, key, "
    "answer, ...) match only the same kind. A step with no UI boxes has no shared box "
    "(the reference fails on it)",
)
AITZ_SOURCE = ScorerSource(
    rules="ActionEvaluator: types click/scroll/type/press/stop must match; click: the truth's "
    "point in the predicted box enlarged 1.2x, or in a UI box enlarged 1.2x with IoU > 0.5 "
    "to it; scroll: the direction word; type: p in g or g in p or Levenshtein.ratio > 0.8 "
    "on raw strings; press: the button; stop: the type",
    reference="IMNearth/CoAT",
    path="coat/evaluate.py (+ screen_utils.py, action_utils.py)",
    commit="9ab1a9f0e76581c50c84f8ebc6ada1a2084a0c71",
    variant="ground-truth click point = extract_gt_action's (lift point x screenshot size, "
    "rounded): the published _parse_answer_ leaves it [0, 0], so no click could match. "
    "A point answer is a zero-size box at its pixel: it matches only when the truth's "
    "point is that very pixel (a zero-size box has IoU 0 with any UI box), so models "
    "that answer points are better scored with aitw, strict or box",
)

STEP_SCORERS: dict[str, StepScorer] = {
    scorer.name: scorer
    for scorer in (
        StepScorer("aitw", AITW_SOURCE, aitw_type_match, aitw_exact),
        StepScorer("aitz", AITZ_SOURCE, coat_type_match, coat_exact),
        StepScorer(
            "strict",
            ScorerSource(
                rules="ours: same kind; click within 0.14 (normalised) or in the same UI box "
                "enlarged 1.4x; swipe in the same finger direction; text substring either "
                "way or Levenshtein ratio > 0.8 after lowercasing and collapsing whitespace; "
                "same button, key and terminate status"
            ),
            same_kind,
            rule_exact(click_near_or_same_box, text_normalised_aitz, check_status=True),
        ),
        StepScorer(
            "norm1000",
            ScorerSource(
                rules="ours, after OS-Atlas / UI-TARS: same kind; click within 140 in the 0-1000 "
                "frame; text equal or token-set F1 > 0.5; swipe direction, button, key"
            ),
            same_kind,
            rule_exact(click_norm1000, text_f1, check_status=False),
        ),
        StepScorer(
            "box",
            ScorerSource(
                rules="ours, after the Qwen team's gists: same kind; click inside the target "
                "element's box, edges included; text a case-insensitive substring either "
                "way; swipe direction, button, key"
            ),
            same_kind,
            rule_exact(click_box, text_substring, check_status=False),
            needs_boxes=True,
        ),
    )
}

GROUNDING_SCORER = "point_in_box"  # the one rule of the grounding sets
# The papers score step sets (AITZ, AndroidControl) with AITW's matching; our own recorded runs
# (desktop too, where the click kind and the typed text matter) with our strict rules.
DEFAULT_SCORERS = {
    "screenspot": GROUNDING_SCORER,
    "screenspot-pro": GROUNDING_SCORER,
    "aitz": "aitw",
    "androidcontrol": "aitw",
    "run": "strict",
}


def default_scorer(dataset_format: str) -> str:
    return DEFAULT_SCORERS.get(dataset_format, "aitw")


def describe_grounding() -> dict[str, str]:
    return {"name": GROUNDING_SCORER, **GROUNDING_SOURCE.as_dict()}
