"""Tasks on the simulated phone, with success checks on its state file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from environments.android_sim import screens

State = dict[str, Any]


@dataclass(frozen=True)
class AndroidTask:
    name: str
    goal: str
    check: Callable[[State], bool]


ANDROID_TASKS = {
    task.name: task
    for task in (
        AndroidTask("airplane_on", "Open Settings and turn on airplane mode",
                    lambda s: s["toggles"]["airplane_mode"] is True),
        AndroidTask("wifi_on", "Turn on Wi-Fi", lambda s: s["toggles"]["wifi"] is True),
        AndroidTask("write_note", "Write 'buy milk' in a new note",
                    lambda s: s["fields"]["note"] == "buy milk"),
    )
}


def widget_centre(state: State, name: str) -> tuple[int, int]:
    """Where a widget is on the phone's current screen, in screen pixels."""
    width, height = state["screen"]
    for widget in screens.layout(state, width, height):
        if widget.name == name:
            return widget.centre
    raise KeyError(f"{name} is not on the {state['foreground']} screen")
