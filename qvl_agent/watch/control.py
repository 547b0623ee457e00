"""The steering of watched runs: pause, resume, stop, take over, and the page's answers to
``--confirm`` questions; and what each hook point tells the page.

A :class:`WatchControl` is the :class:`~qvl_agent.guard.Steering` of every run it watches
(a batch's episodes share one: pause and stop apply to all). Commands arrive on the server's
threads; the hooks run on each run's own thread and block there while the run is paused or
taken over. One condition variable guards the state; the feed is written after it is
released, so the two locks are never held in the opposite order.
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qvl_agent.actions import Action, describe
from qvl_agent.guard import StopRequested
from qvl_agent.marks import action_marks, svg_marks
from qvl_agent.watch.feed import LiveFeed, clip

if TYPE_CHECKING:
    from PIL import Image

    from qvl_agent.geometry import Monitor
    from qvl_agent.trajectory import Outcome, RunMeta, Step

STOP_REASON = "stopped from the watch page"


class WatchControl:
    def __init__(self, feed: LiveFeed | None = None, kind: str = "run") -> None:
        self.feed = feed or LiveFeed()
        self.kind = kind  # "run" or "replay": how the page titles what it shows
        self.terminal_asks_too = False  # --confirm also asks on a terminal (the page says so)
        self._state = threading.Condition()
        self.paused = False
        self.taken_over = False
        self.stop_reason: str | None = None
        self._epoch = 0  # bumped when a person takes the screen
        self._questions: dict[int, PageQuestion] = {}
        self._question_ids = itertools.count(1)
        self._local = threading.local()  # per run thread: its run id and capture epoch
        self._publish_control()

    # -- commands from the page --------------------------------------------------------------

    def pause(self) -> None:
        with self._state:
            self.paused = True
            self._state.notify_all()
        self._publish_control()

    def resume(self) -> None:
        with self._state:
            self.paused = False
            self._state.notify_all()
        self._publish_control()

    def take_over(self) -> None:
        """A person acts on the screen: the runs wait, and what they saw is now stale."""
        with self._state:
            if not self.taken_over:
                self.taken_over = True
                self._epoch += 1
            self._state.notify_all()
        self._publish_control()

    def give_back(self) -> None:
        with self._state:
            self.taken_over = False
            self.paused = False
            self._state.notify_all()
        self._publish_control()

    def stop(self, reason: str = STOP_REASON) -> None:
        with self._state:
            if self.stop_reason is None:
                self.stop_reason = reason
            self._state.notify_all()
        self._publish_control()

    def answer(self, question_id: int, approve: bool) -> bool:
        """The page's answer to an open question; False if it is no longer open."""
        with self._state:
            question = self._questions.get(question_id)
            if question is None or question.answer is not None:
                return False
            question.answer = approve
            self._state.notify_all()
        return True

    @property
    def stopping(self) -> bool:
        return self.stop_reason is not None

    # -- the Steering hooks (each run's own thread) ---------------------------------------------

    def begin(self, run_dir: Path, meta: RunMeta) -> None:
        view = {"kind": self.kind, "goal": meta.goal, "model": meta.model, "device": meta.device,
                "run_dir": str(run_dir), "started_at": meta.started_at, "status": "running",
                "reason": None, "answer": None, "final": None, "phase": "starting"}
        self._local.run = self.feed.new_run(view, run_dir)
        self._local.epoch = self._epoch

    def before_capture(self) -> None:
        self._wait_turn()
        with self._state:
            self._local.epoch = self._epoch
        self._set_phase("capturing")

    def captured(self, index: int, image: Image.Image, monitor: Monitor) -> None:
        run = self._run()
        self._local.monitor = monitor
        self.feed.put_image(run, str(index), image)
        self.feed.update(run, phase="thinking", current={
            "index": index, "shot": _shot_url(run, index), "size": [image.width, image.height],
            "svg": svg_marks([], image.width, image.height), "description": None,
            "thought": None, "response": None})

    def before_act(self, index: int, action: Action, thought: str | None,
                   response: str | None) -> bool:
        run = self._run()
        current = dict(self.feed.view(run).get("current") or {})
        monitor = getattr(self._local, "monitor", None)
        if current.get("index") == index and monitor is not None:
            current["svg"] = svg_marks(action_marks(action, monitor), monitor.width,
                                       monitor.height)
        current.update(index=index, description=describe(action), thought=clip(thought),
                       response=clip(response))
        self.feed.update(run, phase="about to act", current=current)
        self._wait_turn()
        with self._state:
            fresh = self._local.epoch == self._epoch
        self._set_phase("acting" if fresh else "discarded (screen was taken over)")
        return fresh

    def recorded(self, step: Step) -> None:
        """A step of an agent run is on disk: add it to the page's step list."""
        monitor = step.frame.monitor
        self.feed.add_step(self._run(), {
            "index": step.index, "path": step.screenshot,
            "description": describe(step.action) if step.action is not None else "(no action)",
            "outcome": step.outcome, "error": clip(step.error),
            "model_ms": round(step.timings.get("model", 0.0)),
            "total_ms": round(step.timings.get("total", 0.0)),
            "answers": len(step.attempts), "thought": clip(step.thought),
            "response": clip(step.response), "shot": _shot_url(self._run(), step.index),
            "size": [monitor.width, monitor.height],
            "svg": svg_marks(action_marks(step.action, monitor), monitor.width, monitor.height),
        })

    def replayed(self, step, screenshot: str | None = None) -> None:
        """A step of a replay is done (``ReplayStep``)."""
        current = self.feed.view(self._run()).get("current") or {}
        same = current.get("index") == step.index
        seen = (f"screen differs {100 * step.difference:.1f}%" if step.difference is not None
                else None)
        self.feed.add_step(self._run(), {
            "index": step.index, "path": None, "description": step.action,
            "outcome": step.outcome, "error": clip(step.error or seen),
            "model_ms": None, "total_ms": None, "answers": 0,
            "thought": current.get("thought") if same else None,
            "response": current.get("response") if same else None,
            **{key: current.get(key) if same else None for key in ("shot", "size", "svg")},
        })

    def end(self, outcome: Outcome) -> None:
        run = self._run()
        final = None
        if outcome.final_screenshot:
            final = {"path": outcome.final_screenshot, "shot": f"/shot/{run}/final.jpg"}
        self.feed.update(run, status=outcome.status, reason=outcome.reason, answer=outcome.answer,
                         final=final, phase="finished", current=None)

    # -- the page as a second confirm channel ---------------------------------------------------

    def question(self, action: Action) -> PageQuestion:
        """Open a ``--confirm`` question on the page (a :data:`~qvl_agent.guard.Channel`)."""
        with self._state:
            question = PageQuestion(self, next(self._question_ids), self._run(), action)
            self._questions[question.id] = question
        self._publish_control()
        self._set_phase("waiting for approval")
        return question

    def _close_question(self, question: PageQuestion) -> None:
        with self._state:
            self._questions.pop(question.id, None)
        self._publish_control()

    # -- helpers ----------------------------------------------------------------------------------

    def _run(self) -> int:
        run = getattr(self._local, "run", None)
        if run is None:
            raise RuntimeError("a steering hook was called before begin() on this thread")
        return run

    def _wait_turn(self) -> None:
        """Block while paused or taken over; raise StopRequested once a stop is asked."""
        with self._state:
            held = "taken over" if self.taken_over else "paused" if self.paused else None
        if held is not None:
            self._set_phase(held)
        with self._state:
            self._state.wait_for(
                lambda: self.stop_reason is not None or not (self.paused or self.taken_over))
            if self.stop_reason is not None:
                raise StopRequested(self.stop_reason)

    def _set_phase(self, phase: str) -> None:
        run = getattr(self._local, "run", None)
        if run is not None:
            self.feed.update(run, phase=phase)

    def _publish_control(self) -> None:
        with self._state:
            questions = [q.view() for q in self._questions.values() if q.answer is None]
            state = {"paused": self.paused, "taken_over": self.taken_over,
                     "stopping": self.stop_reason is not None, "questions": questions}
        self.feed.set_control(**state)


class PageQuestion:
    """One ``--confirm`` question shown on the page until it is answered there or elsewhere."""

    name = "watch page"

    def __init__(self, control: WatchControl, question_id: int, run: int, action: Action) -> None:
        self.control, self.id, self.run, self.action = control, question_id, run, action
        self.answer: bool | None = None

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "run": self.run, "description": describe(self.action),
                "terminal": self.control.terminal_asks_too}

    def poll(self, timeout: float) -> bool | None:
        control = self.control
        with control._state:
            control._state.wait_for(
                lambda: self.answer is not None or control.stop_reason is not None, timeout)
            if self.answer is None and control.stop_reason is not None:
                raise StopRequested(control.stop_reason)
            answer = self.answer
        if answer is not None:
            self.control._close_question(self)
        return answer

    def withdraw(self, answer: bool | None, by: str) -> None:
        self.control._close_question(self)


def _shot_url(run: int, index: int) -> str:
    return f"/shot/{run}/{index}.jpg"

