"""Seeded generators of step pairs at the rules' boundaries, each given twice: in the
references' own inputs, and as our scorers see them (predicted Targets, ground truth read by
the real AITZ reader from generated episode files, or built as the other readers build it).

Used by tests/test_scorer_references.py and bench/scorer_agreement.py.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from qvl_agent.evaluation.episodes import read_aitz
from qvl_agent.evaluation.samples import StepSample, Target
from tests import reference_aitw

SIZES = [(1080, 2400), (540, 1200), (1440, 3120), (720, 1280), (1000, 1000), (1920, 1080)]
F32 = np.float32
# Our actions with no AITW type keep their own kind; the reference gets one number for each.
OWN_KINDS = {
    "open": 100,
    "wait": 101,
    "answer": 102,
    "key": 103,
    "system_button:Menu": 104,
    "right_click": 105,
    "double_click": 106,
    "scroll": 107,
}
BUTTONS = {5: "Back", 6: "Home", 7: "Enter"}
STATUS = {10: "success", 11: "failure"}
CANONICAL = {
    "up": ([0.8, 0.5], [0.2, 0.5]),
    "down": ([0.2, 0.5], [0.8, 0.5]),
    "left": ([0.5, 0.8], [0.5, 0.2]),
    "right": ([0.5, 0.2], [0.5, 0.8]),
}
WORDS = [
    "milk",
    "Buy milk",
    "buy  milk",
    " buy milk ",
    "BUY MILK",
    "buy milc",
    "bye mail",
    "café",
    "cafe\u0301",
    "CAFÉ",
    "naïve",
    "日本語",
    "日本",
    "straße",
    "STRASSE",
    "👍 ok",
    "ok",
    "search for shoes",
    "search for shoe",
    "Search For Shoes",
    "shoes",
    "",
    "abcde",
    "abcdx",
    "abxyz",
    "hello world",
    "hello\tworld",
    "hello world!",
    "a",
    "b",
]


def f32(value: float) -> float:
    return float(F32(value))


def ulps(value: float, steps: int) -> float:
    """``value`` as float32, moved ``steps`` representable float32 values up or down."""
    x = F32(value)
    for _ in range(abs(steps)):
        x = np.nextafter(x, F32(math.inf if steps > 0 else -math.inf))
    return float(x)


def near(value: float, rng: random.Random) -> float:
    return ulps(value, rng.choice((-2, -1, 0, 0, 0, 1, 2)))


def px(yx, size) -> tuple[float, float]:
    """Normalised (y, x) -> our screenshot pixel (x, y); exact for float32 inputs."""
    return yx[1] * size[0], yx[0] * size[1]


def random_boxes(rng: random.Random, size) -> list[list[int]]:
    """AITZ ui_positions: [y, x, h, w] pixels; some touch the top-left (the corner clips at 0),
    some are tall or wide enough for 2.4x to clip at the screen."""
    width, height = size
    boxes = []
    for _ in range(rng.randint(1, 4)):
        kind = rng.random()
        if kind < 0.25:  # near the corner
            h, w = rng.randint(5, height // 5), rng.randint(5, width // 5)
            y, x = rng.randint(0, h // 2), rng.randint(0, w // 2)
        elif kind < 0.4:  # large: 2.4x the size exceeds the screen
            h, w = rng.randint(height // 2, height), rng.randint(width // 2, width)
            y, x = rng.randint(0, height - h), rng.randint(0, width - w)
        else:
            h, w = rng.randint(2, height // 4), rng.randint(2, width // 4)
            y, x = rng.randint(0, height - h), rng.randint(0, width - w)
        boxes.append([y, x, h, w])
    return boxes


def positions(boxes, size) -> np.ndarray:
    width, height = size
    return np.array(
        [[y / height, x / width, h / height, w / width] for y, x, h, w in boxes], dtype=np.float64
    )


# -- AITW -----------------------------------------------------------------------------------------


@dataclass
class Case:
    scenario: str
    size: tuple[int, int]
    boxes: list[list[int]]  # ui_positions, [y, x, h, w] pixels
    predicted: Target
    reference_args: tuple  # check_actions_match(pred touch, lift, type, truth touch, lift, type)
    truth: Target | None = None  # ground truth built as AndroidControl / run readers build it
    record: dict | None = None  # or an AITZ step record, read by the real reader
    reference_record: dict | None = None  # for CoAT: the step as evaluate.py reads it
    prediction: dict | None = None  # for CoAT: the prediction as evaluate.py reads it


def _edge_points(rng, boxes, size):
    """Two float32 points on or next to the edges of one enlarged box, as AITW enlarges it."""
    resized = reference_aitw._resize_annotation_bounding_boxes(positions(boxes, size), 1.4, 1.4)
    top, left, height, width = (F32(v) for v in resized[rng.randrange(len(boxes))])
    ys = [float(top), float(top + height), float(top + height * F32(rng.random()))]
    xs = [float(left), float(left + width), float(left + width * F32(rng.random()))]
    return [(near(rng.choice(ys), rng), near(rng.choice(xs), rng)) for _ in range(2)]


def _tap_near(rng, origin):
    """A point about 0.14 from ``origin``: along an axis, on the diagonal, or anywhere."""
    angle = rng.choice(
        (
            0,
            math.pi / 2,
            math.pi,
            -math.pi / 2,
            math.pi / 4,
            3 * math.pi / 4,
            rng.uniform(-math.pi, math.pi),
        )
    )
    distance = rng.choice((0.14, 0.14, rng.uniform(0, 0.3)))
    return (
        near(origin[0] + distance * math.sin(angle), rng),
        near(origin[1] + distance * math.cos(angle), rng),
    )


def _short_gesture(rng, touch):
    """A lift about 0.04 from ``touch`` (the tap/swipe boundary), or exactly on it."""
    if rng.random() < 0.15:
        return touch
    angle = rng.choice((0, math.pi / 2, math.pi / 4, rng.uniform(-math.pi, math.pi)))
    length = rng.choice((0.04, 0.04, rng.uniform(0, 0.08)))
    return (
        near(touch[0] + length * math.sin(angle), rng),
        near(touch[1] + length * math.cos(angle), rng),
    )


def _swipe(rng, touch=None):
    """A gesture longer than a tap; sometimes with |dy| == |dx| exactly (an axis tie)."""
    touch = touch or (f32(rng.random()), f32(rng.random()))
    if rng.random() < 0.25:  # tie: same float32 start on both axes, same delta
        start = f32(rng.uniform(0.2, 0.8))
        delta = f32(rng.uniform(0.05, 0.2))
        sy, sx = rng.choice((1, -1)), rng.choice((1, -1))
        touch = (start, start)
        return touch, (f32(start + sy * delta), f32(start + sx * delta))
    dy, dx = rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5)
    if rng.random() < 0.3:  # near-tie
        dx = math.copysign(abs(dy), dx)
    return touch, (near(touch[0] + dy, rng), near(touch[1] + dx, rng))


def _predicted_gesture(rng, touch, lift, size) -> Target:
    if touch == lift:
        return Target(
            action=rng.choice(("click", "long_press", "left_click")), point=px(touch, size)
        )
    return Target(action="swipe", point=px(touch, size), point2=px(lift, size))


def _non_gesture(rng) -> tuple[Target, int]:
    """A random non-gesture action, ours and as its AITW type."""
    kind = rng.choice(("type", "button", "status", "own"))
    if kind == "type":
        return Target(action="type", text=rng.choice(WORDS)), 3
    if kind == "button":
        code = rng.choice(list(BUTTONS))
        return Target(action="system_button", button=BUTTONS[code]), code
    if kind == "status":
        code = rng.choice(list(STATUS))
        return Target(action="terminate", text=STATUS[code]), code
    name = rng.choice(list(OWN_KINDS))
    if name == "system_button:Menu":
        return Target(action="system_button", button="Menu"), OWN_KINDS[name]
    text = {"open": "Settings", "answer": "42", "key": "enter"}.get(name)
    return Target(action=name, text=text), OWN_KINDS[name]


def _aitz_record(action_type, touch=(-1.0, -1.0), lift=(-1.0, -1.0), text="", boxes=()):
    return {
        "result_action_type": action_type,
        "result_touch_yx": json.dumps(list(touch)),
        "result_lift_yx": json.dumps(list(lift)),
        "result_action_text": text,
        "ui_positions": json.dumps([list(b) for b in boxes]),
    }


def aitw_cases(seed: int, count: int) -> list[Case]:
    rng = random.Random(seed)
    scenarios = ("tap_distance", "tap_box", "gesture_length", "swipe", "types", "truth_forms")
    cases = []
    for index in range(count):
        scenario = scenarios[index % len(scenarios)]
        size = rng.choice(SIZES)
        boxes = random_boxes(rng, size)
        truth_touch = (f32(rng.random()), f32(rng.random()))
        truth_lift = _short_gesture(rng, truth_touch)
        pred_touch = pred_lift = _tap_near(rng, truth_touch)
        truth_type = pred_type = 4
        predicted = None
        if scenario == "tap_box":
            pred_touch, truth_touch = _edge_points(rng, boxes, size)
            pred_lift, truth_lift = pred_touch, _short_gesture(rng, truth_touch)
        elif scenario == "gesture_length":
            pred_touch = (f32(rng.random()), f32(rng.random()))
            pred_lift = _short_gesture(rng, pred_touch)
        elif scenario == "swipe":
            truth_touch, truth_lift = _swipe(rng)
            pred_touch, pred_lift = _swipe(rng) if rng.random() < 0.8 else (pred_touch, pred_lift)
        elif scenario == "types":
            if rng.random() < 0.6:
                predicted, pred_type = _non_gesture(rng)
                pred_touch = pred_lift = (-1.0, -1.0)
            if rng.random() < 0.6:
                truth, truth_type = _non_gesture(rng)
                truth_touch = truth_lift = (-1.0, -1.0)
        predicted = predicted or _predicted_gesture(rng, pred_touch, pred_lift, size)
        case = Case(scenario, size, boxes, predicted, ())
        if scenario == "truth_forms":  # AndroidControl and run ground truth: no raw gesture
            form = rng.choice(("click", "direction", "points"))
            if form == "click":
                truth_touch = truth_lift = (f32(rng.random()), f32(rng.random()))
                case.truth = Target(action="click", point=px(truth_touch, size))
            elif form == "direction":
                direction = rng.choice(list(CANONICAL))
                truth_touch, truth_lift = CANONICAL[direction]
                case.truth = Target(action="swipe", direction=direction)
            else:
                truth_touch, truth_lift = _swipe(rng)
                case.truth = Target(
                    action="swipe",
                    point=px(truth_touch, size),
                    point2=px(truth_lift, size),
                    direction="up",
                )
        elif truth_type == 4:
            case.record = _aitz_record(4, truth_touch, truth_lift, boxes=boxes)
        elif truth_type in OWN_KINDS.values():
            case.truth = truth
        else:
            case.record = _aitz_record(truth_type, text=truth.text or "", boxes=boxes)
        case.reference_args = (
            list(pred_touch),
            list(pred_lift),
            pred_type,
            list(truth_touch),
            list(truth_lift),
            truth_type,
        )
        cases.append(case)
    return cases


# -- CoAT (AITZ) ----------------------------------------------------------------------------------


def _coat_word(touch, lift) -> str:
    """Our documented mapping: a predicted swipe is named as extract_gt_action names a scroll."""
    v_change, h_change = abs(touch[0] - lift[0]), abs(lift[1] - touch[1])
    if v_change >= 0.9 * h_change:
        return "up" if lift[0] < touch[0] else "down"
    return "left" if lift[1] < touch[1] else "right"


def _coat_prediction(rng, truth_record, size):
    """A prediction as CoAT reads it ({ACTION, ARGS}) and as our Target."""
    width, height = size
    kind = rng.choice(("click", "click", "click_point", "scroll", "type", "press", "stop", "other"))
    if rng.random() < 0.7:  # mostly the truth's own kind, so that the details get judged
        action_type = truth_record["result_action_type"]
        if action_type == 4:
            touch, lift = (
                json.loads(truth_record[k]) for k in ("result_touch_yx", "result_lift_yx")
            )
            tap = reference_aitw.is_tap_action(np.array(touch), np.array(lift))
            kind = rng.choice(("click", "click_point")) if tap else "scroll"
        else:
            kind = {3: "type", 5: "press", 6: "press", 7: "press", 10: "stop", 11: "stop"}[
                action_type
            ]
    if kind in ("click", "click_point"):
        boxes = json.loads(truth_record["ui_positions"])
        y, x, h, w = rng.choice(boxes)
        lift_y, lift_x = json.loads(truth_record["result_lift_yx"])
        # Around the truth's point or a UI box: edges, overlaps, misses (0-1000 frame).
        cx = rng.choice((lift_x * 1000, (x + w / 2) / width * 1000, rng.uniform(0, 1000)))
        cy = rng.choice((lift_y * 1000, (y + h / 2) / height * 1000, rng.uniform(0, 1000)))
        if kind == "click_point":
            point = [round(cx, rng.choice((0, 1, 3))), round(cy, rng.choice((0, 1, 3)))]
            ours = Target(action="click", point=(point[0] / 1000 * width, point[1] / 1000 * height))
            return {"ACTION": "CLICK", "ARGS": {"bbox": point + point}}, ours
        half_w = rng.choice((w / width * 500, w / width * 600, rng.uniform(0, 100)))
        half_h = rng.choice((h / height * 500, h / height * 600, rng.uniform(0, 100)))
        bbox = [
            round(v, rng.choice((0, 2)))
            for v in (cx - half_w, cy - half_h, cx + half_w, cy + half_h)
        ]
        pixels = (
            bbox[0] / 1000 * width,
            bbox[1] / 1000 * height,
            bbox[2] / 1000 * width,
            bbox[3] / 1000 * height,
        )
        ours = Target(
            action="click",
            point=((pixels[0] + pixels[2]) / 2, (pixels[1] + pixels[3]) / 2),
            boxes=[pixels],
        )
        return {"ACTION": "CLICK", "ARGS": {"bbox": bbox}}, ours
    if kind == "scroll":
        touch, lift = _swipe(rng)
        if truth_record["result_action_type"] == 4 and rng.random() < 0.5:  # along the truth
            touch, lift = (
                tuple(json.loads(truth_record[k])) for k in ("result_touch_yx", "result_lift_yx")
            )
        return (
            {"ACTION": "SCROLL", "ARGS": {"direction": _coat_word(touch, lift)}},
            Target(action="swipe", point=px(touch, size), point2=px(lift, size)),
        )
    if kind == "type":
        text = rng.choice(WORDS)
        return {"ACTION": "TYPE", "ARGS": {"text": text}}, Target(action="type", text=text)
    if kind == "press":
        button = rng.choice(
            (
                "Back",
                "Home",
                "Enter",
                "Menu",
                BUTTONS.get(truth_record["result_action_type"], "Back"),
            )
        )
        return {"ACTION": f"PRESS_{button.upper()}", "ARGS": {}}, Target(
            action="system_button", button=button
        )
    if kind == "stop":
        return {"ACTION": "STOP", "ARGS": {}}, Target(
            action="terminate", text=rng.choice(("success", "failure"))
        )
    name = rng.choice(("open", "wait", "long_press"))
    ours = Target(
        action=name,
        text="Settings" if name == "open" else None,
        point=(10.0, 10.0) if name == "long_press" else None,
    )
    # Names CoAT's action_map gives no type (it would read "LONG_PRESS" as a press).
    return {
        "ACTION": {"open": "OPEN_APP", "wait": "WAIT", "long_press": "LONG_TAP"}[name],
        "ARGS": {},
    }, ours


def aitz_cases(seed: int, count: int) -> list[Case]:
    from tests.reference_aitz import extract_gt_action

    rng = random.Random(seed)
    cases = []
    for index in range(count):
        size = rng.choice(SIZES)
        boxes = random_boxes(rng, size)
        action_type = rng.choice((4, 4, 4, 3, 3, 5, 6, 7, 10, 11))
        touch = lift = (-1.0, -1.0)
        text = ""
        if action_type == 4:
            touch = (f32(rng.random()), f32(rng.random()))
            lift = _short_gesture(rng, touch) if rng.random() < 0.6 else _swipe(rng, touch)[1]
        if action_type == 3:
            text = rng.choice(WORDS)
        record = _aitz_record(action_type, touch, lift, text, boxes)
        reference = dict(
            record,
            image_size=size,
            ui_positions=boxes,
            ui_text=[""] * len(boxes),
            ui_types=["TEXT"] * len(boxes),
        )
        description = extract_gt_action(reference)[0]
        if isinstance(description, tuple):  # a click: CoAT's labels say "click on <element>"
            description = "click on the element"
        reference["coat_action_desc"] = description
        prediction, predicted = _coat_prediction(rng, record, size)
        cases.append(
            Case(
                "aitz",
                size,
                boxes,
                predicted,
                (),
                record=record,
                reference_record=reference,
                prediction={"action_predict": {"COAT": {"bbox": prediction}}},
            )
        )
    return cases


# -- our side: the real AITZ reader for the recorded ground truth ------------------------------


def read_truths(cases: list[Case], folder: Path) -> list[StepSample]:
    """Each case's ground truth as a StepSample: AITZ records go through ``read_aitz`` (one
    episode each, on a blank screenshot of the case's size); the others are built directly."""
    folder.mkdir(parents=True, exist_ok=True)
    for width, height in {case.size for case in cases}:
        Image.new("L", (width, height)).save(folder / f"{width}x{height}.png")
    records: list[dict[str, Any]] = []
    for index, case in enumerate(cases):
        if case.record is not None:
            records.append(
                dict(
                    case.record,
                    episode_id=f"e{index}",
                    step_id=0,
                    instruction="g",
                    image_path=f"{case.size[0]}x{case.size[1]}.png",
                )
            )
    (folder / "steps.json").write_text(json.dumps(records))
    samples, skipped = read_aitz(folder / "steps.json", folder)
    assert not skipped, skipped[:3]
    read = {sample.episode: sample for sample in samples}
    truths = []
    for index, case in enumerate(cases):
        if case.record is not None:
            truths.append(read[f"e{index}"])
        else:
            ui_boxes = [(x, y, x + w, y + h) for y, x, h, w in case.boxes]
            truths.append(
                StepSample(
                    id=str(index),
                    episode=str(index),
                    step=0,
                    goal="g",
                    image=folder / "x.png",
                    target=case.truth,
                    ui_boxes=ui_boxes,
                )
            )
    return truths
