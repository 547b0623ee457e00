"""Tasks on the sandbox desktop app, and an oracle that solves them like a perfect model.

Each task has a goal, a success check on the app's state, and ``next_step``: the tool-call
arguments a model that read the screen perfectly would answer now, with points in *screen*
pixels. :class:`OracleModel` turns those into model-space pixels of the screenshot it is
shown, exactly as a real Qwen2.5-VL answers, so the agent's mapping back to the screen is
what decides whether the click lands.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image

from qvl_agent.models.base import Response
from qvl_agent.prompts import Prompt

State = dict[str, Any]
Arguments = dict[str, Any]


def centre(state: State, widget: str) -> list[int]:
    box = state["widgets"][widget]
    return [box["x"] + box["w"] // 2, box["y"] + box["h"] // 2]


@dataclass(frozen=True)
class DesktopTask:
    name: str
    goal: str
    check: Callable[[State], bool]
    # (state, answers given so far) -> the next tool call's arguments, in screen pixels
    next_step: Callable[[State, int], Arguments]


def _click_submit(state: State, done: int) -> Arguments:
    if state["clicks"]["submit"] > 0:
        return {"action": "terminate", "status": "success"}
    return {"action": "left_click", "coordinate": centre(state, "submit")}


def _enable_dark_mode(state: State, done: int) -> Arguments:
    if state["dark_mode"]:
        return {"action": "terminate", "status": "success"}
    if not state["settings_open"] or "dark_mode" not in state["widgets"]:
        return {"action": "left_click", "coordinate": centre(state, "settings")}
    return {"action": "left_click", "coordinate": centre(state, "dark_mode")}


NAME = "héllo 世界"


def _type_name(state: State, done: int) -> Arguments:
    if state["entry"] == NAME:
        return {"action": "terminate", "status": "success"}
    if done % 2 == 0:  # focus the field, then type
        return {"action": "left_click", "coordinate": centre(state, "entry")}
    return {"action": "type", "text": NAME}


DESKTOP_TASKS = {
    task.name: task
    for task in (
        DesktopTask("click_submit", "Click the Submit button",
                    lambda s: s["clicks"]["submit"] >= 1, _click_submit),
        DesktopTask("enable_dark_mode", "Open the settings dialog and enable dark mode",
                    lambda s: s["dark_mode"] is True, _enable_dark_mode),
        DesktopTask("type_name", f"Type '{NAME}' into the Name field",
                    lambda s: s["entry"] == NAME, _type_name),
    )
}


class OracleModel:
    """Answers each step from the app's current state; knows nothing of the agent's geometry."""

    def __init__(self, task: DesktopTask, read_state: Callable[[], State]) -> None:
        self.task = task
        self.read_state = read_state
        self.name = f"oracle:{task.name}"
        self.answers = 0

    def respond(self, prompt: Prompt, image: Image.Image) -> Response:
        started = time.perf_counter()
        state = self.read_state()
        arguments = dict(self.task.next_step(state, self.answers))
        self.answers += 1
        if "coordinate" in arguments:
            # The screenshot it is shown is resized; a model answers in its pixels.
            screen_width, screen_height = state["screen"]
            x, y = arguments["coordinate"]
            arguments["coordinate"] = [
                round(x * image.width / screen_width), round(y * image.height / screen_height)
            ]
        call = {"name": "computer_use", "arguments": arguments}
        text = f"<tool_call>\n{json.dumps(call, ensure_ascii=False)}\n</tool_call>"
        return Response(text=text, timings={"generate": (time.perf_counter() - started) * 1000})
