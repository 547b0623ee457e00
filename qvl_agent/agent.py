"""The think-act loop: observe -> prompt -> model -> parse -> guard -> act -> record.

The only module that knows both a Model and a Device.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from qvl_agent.actions import Answer, Terminate, Wait, is_final
from qvl_agent.devices.base import CaptureError, Device, DeviceError
from qvl_agent.families import DEFAULT_FAMILY, Turn, get_family
from qvl_agent.geometry import Frame, aspect_problem, model_view
from qvl_agent.guard import UNSTEERED, Budget, Confirm, Guard, Steering, StopRequested
from qvl_agent.imaging import resizer_name
from qvl_agent.models.base import Model, ModelError
from qvl_agent.parsing import ActionParseError, Parsed
from qvl_agent.prompts import Prompt
from qvl_agent.trajectory import Attempt, Outcome, RunMeta, RunWriter, Step, software_versions

Status = Literal[
    "success", "failure", "answered", "budget", "parse_error", "capture_error",
    "device_error", "model_error", "declined", "interrupted",
]


class AgentConfig(BaseModel):
    max_steps: int = 30
    max_seconds: float | None = None
    # The model family (qvl_agent.families): its prompt, frame, history and parser.
    family: str = DEFAULT_FAMILY
    # Screenshot bounds; None: the family's own (recorded resolved in meta.json).
    min_pixels: int | None = None
    max_pixels: int | None = None
    # Screenshots one prompt may hold, the current one included; None: as the family was
    # trained (UI-TARS-1.5: 5). 1 keeps only the current one (a server taking one image).
    history_images: int | None = Field(default=None, ge=1)
    # Extra answers allowed per step after an unparsable one (each sees the error).
    max_parse_retries: int = 2
    dry_run: bool = False
    # Pause after each action so the screen settles before the next screenshot.
    settle_seconds: float = 0.5


class RunResult(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    status: Status
    reason: str
    steps: int
    answer: str | None = None
    run_dir: Path | None = None

    @property
    def succeeded(self) -> bool:
        return self.status in ("success", "answered")


class _Stop(Exception):
    def __init__(self, status: Status, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


StepCallback = Callable[[Step], None]


class Agent:
    """``Agent(model, device).run("Open the settings dialog")``."""

    def __init__(
        self,
        model: Model,
        device: Device,
        config: AgentConfig | None = None,
        confirm: Confirm | None = None,
        on_step: StepCallback | None = None,
        steering: Steering | None = None,
    ) -> None:
        self.model = model
        self.device = device
        config = config or AgentConfig()
        self.family = get_family(config.family)
        self.family.check_space(device.space)  # FamilyError before anything is recorded
        self.config = config.model_copy(update={
            "min_pixels": config.min_pixels or self.family.min_pixels,
            "max_pixels": config.max_pixels or self.family.max_pixels,
            "history_images": config.history_images or self.family.history_images,
        })
        self.guard = Guard(dry_run=self.config.dry_run, confirm=confirm)
        self.on_step = on_step
        # Hook points for a person following the run (--watch): pause, stop, take over.
        self.steering = steering or UNSTEERED

    def run(self, goal: str, record: str | Path | None = None) -> RunResult:
        """Run until the model terminates or answers, a budget runs out, or an error stops it.

        Every step is written to ``record`` (default ``runs/<time>-<goal>``) as it ends.
        """
        run_dir = Path(record) if record is not None else default_run_dir(goal)
        writer = RunWriter(run_dir, self._meta(goal))
        self._steps_done = 0
        self._last_step: Step | None = None
        self.steering.begin(run_dir, writer.meta)
        try:
            result = self._loop(goal, writer)
        except KeyboardInterrupt:
            outcome = Outcome(status="interrupted", reason="interrupted by the user",
                              steps=self._steps_done)
            writer.finish(outcome)
            self.steering.end(outcome)
            raise
        except BaseException as error:
            writer.close()  # keep every step recorded so far; meta has no outcome
            self.steering.end(Outcome(status="error", reason=f"{type(error).__name__}: {error}",
                                      steps=self._steps_done))
            raise
        result.run_dir = run_dir
        outcome = Outcome(status=result.status, reason=result.reason, steps=result.steps,
                          answer=result.answer, final_screenshot=self._final_screenshot(writer))
        writer.finish(outcome)
        self.steering.end(outcome)
        return result

    def _loop(self, goal: str, writer: RunWriter) -> RunResult:
        budget = self._budget = Budget(self.config.max_steps, self.config.max_seconds)
        history: list[Turn] = []
        try:
            while (reason := budget.exhausted(self._steps_done)) is None:
                self.steering.before_capture()  # may wait (paused, taken over) or stop the run
                if (reason := budget.exhausted(self._steps_done)) is not None:
                    break
                self._steps_done += 1
                step = self._step(goal, self._steps_done, history, writer)
                if step.outcome == "interrupted":  # taken over: its action was not performed
                    continue
                action = step.action
                if action is not None:
                    self._remember(history, step)
                if isinstance(action, Terminate):
                    status: Status = "success" if action.status == "success" else "failure"
                    return RunResult(status=status, reason=f"the model reported {action.status}",
                                     steps=self._steps_done)
                if isinstance(action, Answer):
                    return RunResult(status="answered", reason="the model answered",
                                     steps=self._steps_done, answer=action.text)
            return RunResult(status="budget", reason=reason, steps=self._steps_done)
        except _Stop as stop:
            return RunResult(status=stop.status, reason=stop.reason, steps=self._steps_done)
        except StopRequested as stop:
            return RunResult(status="interrupted", reason=str(stop), steps=self._steps_done)

    def _remember(self, history: list[Turn], step: Step) -> None:
        """Add the step to the history the family's prompt is built from; screenshots are
        kept only as long as the family's history shows them."""
        keep = self.config.history_images - 1
        history.append(Turn(action=step.action, response=step.response, summary=step.summary,
                            image=self._view if keep > 0 else None))
        for index in range(max(0, len(history) - keep)):
            if history[index].image is not None:
                history[index] = replace(history[index], image=None)

    # -- one step ------------------------------------------------------------------------

    def _step(self, goal: str, index: int, history: list[Turn], writer: RunWriter) -> Step:
        timings: dict[str, float] = {}
        started_at = time.time()
        clock = time.perf_counter()

        try:
            observation = self.device.screenshot()
        except (CaptureError, DeviceError) as error:
            raise _Stop("capture_error", f"screenshot failed, nothing was done: {error}") from None
        timings["capture"] = _ms_since(clock)
        self.steering.captured(index, observation.image, observation.monitor)

        mark = time.perf_counter()
        try:
            frame = self.family.frame(observation.monitor, self.config.min_pixels,
                                      self.config.max_pixels, self.device.space)
        except ValueError as error:  # past 200:1, or pixel bounds no screen can meet
            width, height = observation.monitor.width, observation.monitor.height
            raise _Stop("capture_error",
                        f"the {width}x{height} screenshot cannot be shown to the model, nothing "
                        f"was done: {aspect_problem(width, height) or error}") from None
        image = self._view = model_view(observation.image, frame)
        timings["resize"] = _ms_since(mark)
        screenshot = writer.save_screenshot(index, observation.image)

        mark = time.perf_counter()
        prompt = self.family.prompt(goal, self.device.space, frame, history,
                                    self.config.history_images)
        timings["prompt"] = _ms_since(mark)

        step = Step(index=index, started_at=started_at, screenshot=screenshot, frame=frame,
                    prompt_digest=prompt.digest(), attempts=[], outcome="parse_error",
                    timings=timings)
        try:
            parsed = self._think(prompt, image, frame, step)
            if parsed is None:
                raise _Stop(
                    "parse_error",
                    f"no usable action after {len(step.attempts)} answers: "
                    f"{step.attempts[-1].error}",
                )
            step.action, step.notes, step.thought = parsed.action, parsed.notes, parsed.thought
            step.summary = parsed.summary
            self._act(step)
        finally:
            step.timings["total"] = _ms_since(clock)
            writer.append_step(step)
            self._last_step = step
            self.steering.recorded(step)
            if self.on_step is not None:
                self.on_step(step)
        return step

    def _think(self, prompt: Prompt, image, frame: Frame, step: Step) -> Parsed | None:
        """Ask the model; feed parse errors back, up to ``max_parse_retries`` more answers."""
        for _ in range(1 + self.config.max_parse_retries):
            mark = time.perf_counter()
            try:
                response = self.model.respond(prompt, image)
            except ModelError as error:
                step.outcome, step.error = "model_error", str(error)
                raise _Stop("model_error", f"the model failed: {error}") from None
            attempt = Attempt(response=response.text, prompt_tokens=response.prompt_tokens,
                              generated_tokens=response.generated_tokens,
                              cached_prompt_tokens=response.cached_prompt_tokens,
                              forced_tokens=response.forced_tokens,
                              model_ms=_ms_since(mark))
            step.attempts.append(attempt)
            step.timings["model"] = step.timings.get("model", 0.0) + attempt.model_ms
            for stage, value in response.timings.items():
                step.timings[f"model.{stage}"] = step.timings.get(f"model.{stage}", 0.0) + value
            mark = time.perf_counter()
            try:
                parsed = self.family.parse(response.text, frame, self.device.space)
            except ActionParseError as error:
                attempt.error = str(error)
                step.error = str(error)
                prompt = prompt.with_feedback(
                    response.text, self.family.feedback(str(error), self.device.space))
                continue
            finally:
                step.timings["parse"] = step.timings.get("parse", 0.0) + _ms_since(mark)
            step.error = None
            return parsed
        return None

    def _act(self, step: Step) -> None:
        action = step.action
        assert action is not None
        try:
            if not self.steering.before_act(step.index, action, step.thought, step.response):
                step.outcome, step.error = "interrupted", (
                    "a person took over the screen after this screenshot; the action was not "
                    "performed")
                return
            if is_final(action):
                step.outcome = "final"
                return
            decision = self.guard.decide(action)
        except StopRequested:
            step.outcome, step.error = "interrupted", "stopped before this action; not performed"
            raise
        if decision == "declined":
            step.outcome = "declined"
            raise _Stop("declined", "the user declined the action")
        if decision == "dry_run":
            step.outcome = "dry_run"
            return
        if isinstance(action, Wait):
            action = self._cut_by_budget(action, step)
        mark = time.perf_counter()
        try:
            self.device.execute(action)
        except DeviceError as error:
            step.outcome, step.error = "device_error", str(error)
            raise _Stop("device_error", f"the device failed: {error}") from None
        finally:
            step.timings["execute"] = _ms_since(mark)
        step.outcome = "executed"
        if self.config.settle_seconds > 0:
            time.sleep(self.config.settle_seconds)

    def _cut_by_budget(self, wait: Wait, step: Step) -> Wait:
        """``wait``, or only what the time budget has left of it (the loop then stops on the
        budget); the step keeps the wait as asked, with a note."""
        left = self._budget.seconds_left()
        if left is None or wait.time <= left:
            return wait
        step.notes.append(f"waited {left:.1f} s of the {wait.time:g} s asked: the time budget "
                          "ran out")
        return Wait(time=left)

    def _final_screenshot(self, writer: RunWriter) -> str | None:
        """The screen after the last action, when the last step performed one (else the
        last step's own screenshot already shows the end); None if it cannot be captured."""
        if self._last_step is None or self._last_step.outcome != "executed":
            return None
        try:
            return writer.save_final_screenshot(self.device.screenshot().image)
        except (CaptureError, DeviceError):
            return None

    def _meta(self, goal: str) -> RunMeta:
        return RunMeta(
            goal=goal,
            model=self.model.name,
            device=self.device.name,
            space=self.device.space,
            config={**self.config.model_dump(), "resizer": resizer_name(),
                    # How the model answers (LocalModel: dtype, cache reuse, forcing, decode).
                    "model_options": getattr(self.model, "options", {})},
            versions=software_versions(),
        )


def default_run_dir(goal: str, root: str | Path = "runs") -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", goal.lower()).strip("-")[:40] or "run"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return Path(root) / f"{stamp}-{slug}"


def _ms_since(mark: float) -> float:
    return round((time.perf_counter() - mark) * 1000, 3)
