"""Step-level datasets: AITZ episodes, AndroidControl episodes exported as JSON, and our own
recorded run directories. Each becomes :class:`StepSample` s with teacher-forced history.

Scroll conventions differ (see ../shared/reference/evaluation.md §2.5): AITZ's touch/lift
points give the finger's direction directly; AndroidControl's ``scroll`` ``direction`` is
the way the *content* moves (``down`` = the finger moves up), unless told otherwise.
Everything is stored as the finger's direction, as Qwen's ``swipe`` answers it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from qvl_agent.actions import Action, Point
from qvl_agent.evaluation.episode_splits import SPLIT_FILES, episode_key
from qvl_agent.evaluation.image_sources import ImageStore, locate_image, temporary_store
from qvl_agent.evaluation.records import (
    RecordError, field, image_size, numbers, usable_records,
)
from qvl_agent.evaluation.samples import (
    OPPOSITE, Box, DatasetError, Skipped, StepSample, Target, finger_direction,
    mark_incomplete, smallest_box_containing,
)
from qvl_agent.trajectory import META_FILE, RunReadError, read_run

ScrollConvention = Literal["content", "finger"]
Loaded = tuple[list[StepSample], list[Skipped]]

# -- AITZ ----------------------------------------------------------------------------------

# The AITW action_type enum.
AITW_TYPE, AITW_DUAL_POINT = 3, 4
AITW_BUTTONS = {5: "Back", 6: "Home", 7: "Enter"}
AITW_STATUS = {10: "success", 11: "failure"}
AITW_TAP_DISTANCE = 0.04  # normalised (y, x): at most this far from touch to lift is a tap
AITZ_VERTICAL_BIAS = 0.9  # coat/action_utils.py: vertical when |dy| >= 0.9 |dx|


def read_aitz(annotations: Path, images: Path | None, store: ImageStore | None = None) -> Loaded:
    """AITZ: JSON files each holding one episode's list of step records."""
    store = store or temporary_store()
    episodes: dict[str, list[tuple[str, dict, Target, list[Box]]]] = {}
    skipped: list[Skipped] = []
    gappy: set[str] = set()
    for file, where, record in usable_records(annotations, skipped):
        episode = str(record.get("episode_id")) if isinstance(record, dict) else None
        try:
            episode = str(field(record, "episode_id", (str, int)))
            image = locate_image(field(record, "image_path", str), images, file, store)
            size = image_size(image)
            ui_boxes = _aitz_boxes(record)
            target = _aitz_target(record, size, ui_boxes)
        except RecordError as error:
            skipped.append(Skipped(where=where, reason=str(error)))
            gappy.add(str(episode))
            continue
        record = {**record, "_image": image}
        episodes.setdefault(episode, []).append((where, record, target, ui_boxes))
    samples: list[StepSample] = []
    for episode, steps in episodes.items():
        steps.sort(key=lambda s: int(s[1].get("step_id", 0)))
        history: list[Target] = []
        for where, record, target, ui_boxes in steps:
            samples.append(StepSample(
                id=f"{episode}/{record.get('step_id', len(history))}", episode=episode,
                step=len(history), goal=str(record.get("instruction", "")), image=record["_image"],
                target=target, history=list(history), ui_boxes=ui_boxes, where=where))
            history.append(target)
    return mark_incomplete(samples, gappy), skipped


def _aitz_boxes(record: dict) -> list[Box]:
    if "ui_positions" not in record:
        return []
    raw = record["ui_positions"]
    try:
        positions = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        raise RecordError(f'field "ui_positions" is not JSON: {raw[:60]!r}') from None
    if not isinstance(positions, (list, type(None))):
        raise RecordError('field "ui_positions" is not a list of boxes')
    boxes = []
    for position in positions or []:
        y, x, h, w = numbers(position, 4, "ui_positions")
        boxes.append((x, y, x + w, y + h))
    return boxes


def _aitz_target(record: dict, size: tuple[int, int], ui_boxes: list[Box]) -> Target:
    action_type = field(record, "result_action_type", (int, str))
    try:
        action_type = int(action_type)
    except ValueError:
        raise RecordError(f"unknown action type {action_type!r}") from None
    width, height = size
    if action_type == AITW_DUAL_POINT:
        touch_y, touch_x = numbers(field(record, "result_touch_yx", (str, list)), 2, "result_touch_yx")
        lift_y, lift_x = numbers(field(record, "result_lift_yx", (str, list)), 2, "result_lift_yx")
        gesture = {"touch_yx": (touch_y, touch_x), "lift_yx": (lift_y, lift_x)}
        if math.dist((touch_y, touch_x), (lift_y, lift_x)) <= AITW_TAP_DISTANCE:
            point = (lift_x * width, lift_y * height)
            box = smallest_box_containing(ui_boxes, point)
            return Target(action="click", point=point, boxes=[box] if box else [], **gesture)
        start, end = (touch_x * width, touch_y * height), (lift_x * width, lift_y * height)
        # The direction in normalised (x, y), as CoAT labels it: in pixels, a 1:2.2 screen
        # would turn some vertical swipes horizontal.
        direction = finger_direction((touch_x, touch_y), (lift_x, lift_y), AITZ_VERTICAL_BIAS)
        return Target(action="swipe", point=start, point2=end, direction=direction, **gesture)
    if action_type == AITW_TYPE:
        return Target(action="type", text=str(record.get("result_action_text", "")))
    if action_type in AITW_BUTTONS:
        return Target(action="system_button", button=AITW_BUTTONS[action_type])
    if action_type in AITW_STATUS:
        return Target(action="terminate", text=AITW_STATUS[action_type])
    raise RecordError(f"unknown action type {action_type} (AITW enum)")


# -- AndroidControl --------------------------------------------------------------------------


def read_androidcontrol(annotations: Path, images: Path | None, level: str = "high",
                        scroll: ScrollConvention = "content", store: ImageStore | None = None,
                        episodes: set[str] | None = None) -> Loaded:
    """AndroidControl episodes exported to JSON: one object per episode with ``episode_id``,
    ``goal``, ``screenshots`` (image files, or inline base64), ``actions`` (objects or JSON
    strings), ``step_instructions``, and optionally ``step_boxes`` (per step, the target
    element's boxes as [x1, y1, x2, y2] pixels). ``level="low"`` adds each step's instruction;
    ``episodes`` keeps only those episode ids (a split). The official TFRecord shards are read
    by :mod:`qvl_agent.evaluation.androidcontrol_tfrecord`."""
    store = store or temporary_store()
    samples: list[StepSample] = []
    skipped: list[Skipped] = []
    gappy: set[str] = set()
    for file, where, record in usable_records(annotations, skipped):
        if file.name in SPLIT_FILES:
            continue  # the split lists downloaded beside the episodes
        try:
            episode = str(field(record, "episode_id", (str, int)))
            if episodes is not None and episode_key(episode) not in episodes:
                continue
            goal = field(record, "goal", str)
            screenshots = field(record, "screenshots", list)
            actions = field(record, "actions", list)
        except RecordError as error:
            skipped.append(Skipped(where=where, reason=str(error)))
            continue
        instructions = record.get("step_instructions") or []
        step_boxes = record.get("step_boxes") or []
        history: list[Target] = []
        for step, raw_action in enumerate(actions):
            step_where = f"{where} step {step}"
            try:
                if step >= len(screenshots):
                    raise RecordError(f"no screenshot for step {step}")
                image = locate_image(screenshots[step], images, file, store)
                image_size(image)
                boxes = [tuple(numbers(b, 4, "step_boxes")) for b in (step_boxes[step] or [])] \
                    if step < len(step_boxes) else []
                target = androidcontrol_target(raw_action, scroll, boxes)
            except RecordError as error:
                skipped.append(Skipped(where=step_where, reason=str(error)))
                gappy.add(episode)
                continue
            samples.append(StepSample(id=f"{episode}/{step}", episode=episode, step=step,
                                      goal=step_goal(goal, instructions, step, level),
                                      image=image, target=target, history=list(history),
                                      where=step_where))
            history.append(target)
    return mark_incomplete(samples, gappy), skipped


AC_BUTTONS = {"navigate_back": "Back", "navigate_home": "Home", "keyboard_enter": "Enter"}


def step_goal(goal: str, instructions: list, step: int, level: str) -> str:
    """The goal the model is given: with ``level="low"``, the step's instruction too (as the
    Qwen team's AndroidControl prompts add it)."""
    if level == "low" and step < len(instructions):
        return f"{goal}\nCurrent step query: {instructions[step]}"
    return goal


def androidcontrol_target(raw: Any, scroll: ScrollConvention, boxes: list) -> Target:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raise RecordError(f"action is not JSON: {raw!r}") from None
    kind = field(raw, "action_type", str)
    if kind in ("click", "long_press"):
        point = (float(field(raw, "x", (int, float))), float(field(raw, "y", (int, float))))
        if not all(math.isfinite(v) for v in point):
            raise RecordError(f"the {kind} point {list(point)} is not finite")
        return Target(action=kind, point=point, boxes=boxes)
    if kind == "scroll":
        direction = field(raw, "direction", str).lower()
        if direction not in OPPOSITE:
            raise RecordError(f"unknown scroll direction {direction!r}")
        return Target(action="swipe", direction=OPPOSITE[direction] if scroll == "content" else direction)
    if kind == "open_app":
        return Target(action="open", text=field(raw, "app_name", str))
    if kind in ("input_text", "type"):
        return Target(action="type", text=field(raw, "text", str))
    if kind in AC_BUTTONS:
        return Target(action="system_button", button=AC_BUTTONS[kind])
    if kind == "wait":
        return Target(action="wait")
    raise RecordError(f"unknown action type {kind!r}")


# -- our own run directories -----------------------------------------------------------------


def read_runs(source: Path) -> Loaded:
    """A run directory, or a directory of them: each recorded action is the ground truth."""
    if (source / META_FILE).is_file():
        run_dirs = [source]
    elif source.is_dir():
        run_dirs = sorted(p for p in source.iterdir() if (p / META_FILE).is_file())
    else:
        raise DatasetError(f"run directory not found: {source}")
    if not run_dirs:
        raise DatasetError(f"{source} holds no run directories (no {META_FILE})")
    samples: list[StepSample] = []
    skipped: list[Skipped] = []
    gappy: set[str] = set()
    for run_dir in run_dirs:
        try:
            run = read_run(run_dir)
        except RunReadError as error:
            skipped.append(Skipped(where=str(run_dir), reason=str(error)))
            continue
        if run.skipped_lines:
            skipped.append(Skipped(where=str(run_dir / "steps.jsonl"),
                                   reason=f"{run.skipped_lines} unreadable step line(s)"))
        history: list[Target] = []
        for step in run.steps:
            where = f"{run_dir} step {step.index}"
            if step.action is None:
                skipped.append(Skipped(where=where, reason="the step recorded no action"))
                gappy.add(run_dir.name)
                continue
            monitor = step.frame.monitor
            target = target_from_action(
                step.action, lambda p: monitor.to_local(*p.screen))
            try:
                image_size(run_dir / step.screenshot)
            except RecordError as error:  # its action still happened: it stays in the history
                skipped.append(Skipped(where=where, reason=str(error)))
                gappy.add(run_dir.name)
                history.append(target)
                continue
            samples.append(StepSample(
                id=f"{run_dir.name}/{step.index}", episode=run_dir.name, step=len(history),
                goal=run.meta.goal, image=run_dir / step.screenshot, target=target,
                history=list(history), space=run.meta.space, where=where))
            history.append(target)
    return mark_incomplete(samples, gappy), skipped


# -- actions <-> targets ----------------------------------------------------------------------


def target_from_action(action: Action, image_point: Callable[[Point], tuple[float, float]]) -> Target:
    """An action (recorded or predicted) as a :class:`Target`; ``image_point`` maps its points
    into the screenshot's pixels."""
    fields: dict[str, Any] = {"action": action.action}
    for name, value in action:
        if isinstance(value, Point):
            fields["point" if name == "coordinate" else "point2"] = image_point(value)
    text = {"type": "text", "open": "text", "answer": "text", "terminate": "status"}.get(action.action)
    if text:
        fields["text"] = getattr(action, text)
    if action.action == "key":
        fields["text"] = "+".join(action.keys)
    if action.action == "system_button":
        fields["button"] = action.button
    if action.action == "swipe":
        fields["direction"] = finger_direction(fields["point"], fields["point2"])
    if action.action == "scroll":
        fields["direction"] = "up" if action.pixels > 0 else "down"  # wheel: positive is up
    return Target(**fields)
