"""What stands between a parsed action and the device: budgets, dry-run, confirmation, and
the hook points through which a person steers a run (pause, stop, take over)."""

from __future__ import annotations

import select
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from qvl_agent.actions import Action, describe

if TYPE_CHECKING:
    from PIL import Image

    from qvl_agent.geometry import Monitor
    from qvl_agent.trajectory import Outcome, RunMeta, Step

Decision = Literal["execute", "dry_run", "declined"]
# Asked before each action when confirmation is on; True means go ahead.
Confirm = Callable[[Action], bool]


@dataclass
class Budget:
    max_steps: int
    max_seconds: float | None = None
    started: float = field(default_factory=time.monotonic)

    def exhausted(self, steps_done: int) -> str | None:
        """The reason the run must stop now, or None."""
        if steps_done >= self.max_steps:
            return f"step budget reached ({self.max_steps} steps)"
        if self.max_seconds is not None and time.monotonic() - self.started >= self.max_seconds:
            return f"time budget reached ({self.max_seconds:g} s)"
        return None

    def seconds_left(self) -> float | None:
        """Seconds until the time budget runs out (0 once it has); None without one."""
        if self.max_seconds is None:
            return None
        return max(0.0, self.max_seconds - (time.monotonic() - self.started))


def ask_on_terminal(action: Action) -> bool:
    """Confirm on the controlling TTY; refuses to run unattended rather than guess."""
    if not sys.stdin.isatty():
        raise RuntimeError("--confirm needs an interactive terminal (stdin is not a TTY)")
    return first_answer([TerminalQuestion])(action)


@dataclass
class Guard:
    dry_run: bool = False
    confirm: Confirm | None = None

    def decide(self, action: Action) -> Decision:
        if self.dry_run:
            return "dry_run"
        if self.confirm is not None and not self.confirm(action):
            return "declined"
        return "execute"


# -- confirmation from several places at once ----------------------------------------------


class Question(Protocol):
    """One confirmation question, open on one channel (the terminal, the watch page)."""

    def poll(self, timeout: float) -> bool | None:
        """The answer, if one came within ``timeout`` seconds; None if not yet."""

    def withdraw(self, answer: bool | None, by: str) -> None:
        """Another channel answered first (``by`` names it; ``answer`` None: the run is
        stopping and nobody will answer): close this one."""


# Opens a question about an action on one channel.
Channel = Callable[[Action], Question]


class TerminalQuestion:
    """``perform ...? [y/N]`` on the terminal, read without blocking so that another
    channel can answer first. End of input declines (never act unattended)."""

    name = "terminal"

    def __init__(self, action: Action) -> None:
        print(f"  perform {describe(action)}? [y/N] ", end="", flush=True)

    def poll(self, timeout: float) -> bool | None:
        ready, _, _ = select.select([sys.stdin], [], [], timeout)
        if not ready:
            return None
        line = sys.stdin.readline()
        return line.strip().lower() in ("y", "yes")

    def withdraw(self, answer: bool | None, by: str) -> None:
        said = {True: "yes", False: "no", None: "not asked any more"}[answer]
        print(f"{said} (answered on the {by})" if answer is not None else f"({said}: {by})",
              flush=True)
        try:  # a half-typed answer must not answer the next question
            import termios

            termios.tcflush(sys.stdin, termios.TCIFLUSH)
        except (ImportError, OSError, ValueError):
            pass


def first_answer(channels: list[Channel], tick: float = 0.05) -> Confirm:
    """A confirm function that asks on every channel at once; the first answer wins and the
    other channels are told (and close their question)."""

    def confirm(action: Action) -> bool:
        questions = [open_question(action) for open_question in channels]
        answer: bool | None = None
        answered: Question | None = None
        try:
            while answered is None:
                for question in questions:
                    answer = question.poll(tick / len(questions))
                    if answer is not None:
                        answered = question
                        break
        except BaseException as error:  # a stop (or Ctrl-C) while waiting: close every question
            for question in questions:
                question.withdraw(None, str(error) or type(error).__name__)
            raise
        by = getattr(answered, "name", "other channel")
        for question in questions:
            if question is not answered:
                question.withdraw(answer, by)
        return bool(answer)

    return confirm


# -- steering a run while it happens --------------------------------------------------------


class StopRequested(Exception):
    """A person asked the run to stop; raised at a hook point, never inside an action."""


class Steering(Protocol):
    """Hook points a run calls so that a person can follow and steer it (``--watch``).

    All are called on the run's own thread. ``before_capture`` and ``before_act`` may block
    (paused, taken over) and may raise :class:`StopRequested`.
    """

    def begin(self, run_dir: Path, meta: RunMeta) -> None:
        """A run starts writing ``run_dir``."""

    def before_capture(self) -> None:
        """The next step is about to take its screenshot."""

    def captured(self, index: int, image: Image.Image, monitor: Monitor) -> None:
        """Step ``index`` sees ``image`` (the full screenshot) of ``monitor``."""

    def before_act(self, index: int, action: Action, thought: str | None,
                   response: str | None) -> bool:
        """``action`` is about to be performed; False when the screen changed hands since
        the capture (a takeover): the action must not be performed on the stale screen."""

    def recorded(self, step: Step) -> None:
        """Step ``step`` is on disk."""

    def end(self, outcome: Outcome) -> None:
        """The run ended with ``outcome`` (written to meta.json)."""


class Unsteered:
    """The steering of a run nobody watches: every hook is a no-op."""

    def begin(self, run_dir: Path, meta: RunMeta) -> None:
        pass

    def before_capture(self) -> None:
        pass

    def captured(self, index: int, image: Image.Image, monitor: Monitor) -> None:
        pass

    def before_act(self, index: int, action: Action, thought: str | None,
                   response: str | None) -> bool:
        return True

    def recorded(self, step: Step) -> None:
        pass

    def end(self, outcome: Outcome) -> None:
        pass


UNSTEERED = Unsteered()
