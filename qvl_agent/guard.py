"""What stands between a parsed action and the device: budgets, dry-run, confirmation."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from qvl_agent.actions import Action, describe

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
    answer = input(f"  perform {describe(action)}? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


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
