"""``qvl-agent replay``: re-execute a recorded run's actions on a device, as a regression check.

Before each recorded action the device's screen is captured and compared with the screenshot
recorded at that step; a screen that differs more than the threshold marks the replay as
diverged (the steps are still all tried, so the report shows where it went wrong and what
followed). Actions are moved by the ratio of the screen sizes when the device's screen is
not the recorded one's, and pass the same guard as ``run`` (dry-run, confirm).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel

from qvl_agent.actions import Action, Point, describe, is_final
from qvl_agent.devices.base import CaptureError, Device, DeviceError
from qvl_agent.geometry import Monitor
from qvl_agent.guard import UNSTEERED, Confirm, Guard, Steering, StopRequested
from qvl_agent.imaging import ImageReadError, open_image
from qvl_agent.trajectory import Outcome, Run

# Screens are compared at this width (grey levels), which ignores sub-pixel rendering noise.
COMPARE_WIDTH = 256
# A pixel counts as changed when its grey level moved by more than this (0-255).
CHANGED_LEVEL = 24

# record_error: a recorded screenshot cannot be read, so the step cannot be checked.
Status = Literal["matched", "diverged", "capture_error", "device_error", "declined", "record_error",
                 "interrupted"]


def screen_difference(recorded: Image.Image, current: Image.Image) -> float:
    """The fraction of the screen that changed (0 = identical, 1 = every pixel)."""
    height = max(1, round(recorded.height * COMPARE_WIDTH / recorded.width))
    a = np.asarray(recorded.convert("L").resize((COMPARE_WIDTH, height), Image.BILINEAR), dtype=np.int16)
    b = np.asarray(current.convert("L").resize((COMPARE_WIDTH, height), Image.BILINEAR), dtype=np.int16)
    return float((np.abs(a - b) > CHANGED_LEVEL).mean())


def rescale(action: Action, recorded: Monitor, current: Monitor) -> Action:
    """``action`` with its screen points moved from the recorded monitor onto ``current``."""
    updates = {}
    for name, value in action:
        if isinstance(value, Point) and value.screen is not None:
            updates[name] = Point(model=value.model, screen=current.same_place(value.screen, recorded))
    return action.model_copy(update=updates) if updates else action


class ReplayStep(BaseModel):
    index: int
    action: str
    difference: float | None = None  # changed fraction of the screen before the action
    outcome: Literal["executed", "dry_run", "declined", "final", "no_action", "failed",
                     "interrupted"]
    error: str | None = None

    def line(self) -> str:
        seen = f"screen differs {100 * self.difference:5.1f}%" if self.difference is not None else ""
        error = f"  error: {self.error}" if self.error else ""
        return f"replay {self.index:>3}  {self.action}  [{self.outcome}] {seen}{error}"


class ReplayResult(BaseModel):
    run: str
    status: Status
    threshold: float
    steps: list[ReplayStep]

    def summary(self) -> str:
        worst = max((s.difference for s in self.steps if s.difference is not None), default=0.0)
        over = [s.index for s in self.steps if s.difference is not None and s.difference > self.threshold]
        where = f"; over {100 * self.threshold:g}% at steps {over}" if over else ""
        return (f"{self.status}: {len(self.steps)} steps replayed, largest screen difference "
                f"{100 * worst:.1f}%{where}")


class Replayer:
    def __init__(self, device: Device, dry_run: bool = False, confirm: Confirm | None = None,
                 settle_seconds: float = 0.5, threshold: float = 0.05,
                 steering: Steering | None = None) -> None:
        self.device = device
        self.steering = steering or UNSTEERED  # --watch: pause, stop, take over
        self.guard = Guard(dry_run=dry_run, confirm=confirm)
        self.settle_seconds = settle_seconds
        self.threshold = threshold

    def replay(self, run: Run, on_step: Callable[[ReplayStep], None] | None = None) -> ReplayResult:
        steps: list[ReplayStep] = []
        status: Status = "matched"
        self.steering.begin(run.path, run.meta)
        for recorded in run.steps:
            try:
                self.steering.before_capture()
            except StopRequested:
                status = "interrupted"
                break
            step, stop = self._replay_step(run, recorded)
            steps.append(step)
            if on_step is not None:
                on_step(step)
            if step.difference is not None and step.difference > self.threshold and status == "matched":
                status = "diverged"
            if stop is not None:
                status = stop
                break
            if step.outcome == "final":
                break
        result = ReplayResult(run=str(run.path), status=status, threshold=self.threshold,
                              steps=steps)
        self.steering.end(Outcome(status=status, reason=result.summary(), steps=len(steps)))
        return result

    def _replay_step(self, run: Run, recorded) -> tuple[ReplayStep, Status | None]:
        action = recorded.action
        if action is None:
            return ReplayStep(index=recorded.index, action="(no action)", outcome="no_action"), None
        try:
            observation = self.device.screenshot()
        except (CaptureError, DeviceError) as error:
            return (ReplayStep(index=recorded.index, action=describe(action), outcome="failed",
                               error=f"screenshot failed, nothing was done: {error}"), "capture_error")
        self.steering.captured(recorded.index, observation.image, observation.monitor)
        try:
            image = open_image(run.path / recorded.screenshot, what="recorded screenshot")
        except ImageReadError as error:
            return (ReplayStep(index=recorded.index, action=describe(action), outcome="failed",
                               error=f"{error}; nothing was done"), "record_error")
        difference = screen_difference(image, observation.image)
        action = rescale(action, recorded.frame.monitor, observation.monitor)
        step = ReplayStep(index=recorded.index, action=describe(action), difference=round(difference, 4),
                          outcome="final")
        try:
            if not self.steering.before_act(recorded.index, action, recorded.thought,
                                            recorded.response):
                step.outcome, step.error = "interrupted", "taken over after the screenshot"
                return step, None
            if is_final(action):
                return step, None
            decision = self.guard.decide(action)
        except StopRequested:
            step.outcome = "interrupted"
            return step, "interrupted"
        if decision == "declined":
            step.outcome = "declined"
            return step, "declined"
        if decision == "dry_run":
            step.outcome = "dry_run"
            return step, None
        try:
            self.device.execute(action)
        except DeviceError as error:
            step.outcome, step.error = "failed", str(error)
            return step, "device_error"
        step.outcome = "executed"
        if self.settle_seconds > 0:
            time.sleep(self.settle_seconds)
        return step, None

