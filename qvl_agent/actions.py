"""The action vocabulary: one pydantic discriminated union over both trained tool schemas.

``computer_use`` (desktop) and ``mobile_use`` (phone) share ``key``, ``type``, ``wait`` and
``terminate``; ``answer`` (the AndroidWorld addition) is accepted in both. Every point keeps
the value the model said (pixels of the resized screenshot) and the absolute screen pixel it
resolved to, so a record shows both sides of the mapping.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

Space = Literal["computer", "mobile"]
TOOL_NAMES: dict[str, str] = {"computer": "computer_use", "mobile": "mobile_use"}

# Bounds on every number an action carries (a model, a hand-edited run or a replay may say
# anything). An action outside them is a parse error fed back to the model, never performed.
MAX_WAIT_SECONDS = 60.0  # a longer wait is better spent on a new screenshot; the run's
# time budget (--max-seconds) cuts any wait shorter
MAX_LONG_PRESS_SECONDS = 10.0
MAX_SCROLL_PIXELS = 10_000.0  # 200 wheel notches on the desktop
MAX_SCREEN_COORDINATE = 1_000_000  # in absolute pixels, either sign (monitors left of 0)

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
ScreenInt = Annotated[int, Field(ge=-MAX_SCREEN_COORDINATE, le=MAX_SCREEN_COORDINATE)]


class Point(BaseModel):
    """A point as the model said it, and where it landed on the screen."""

    model_config = ConfigDict(frozen=True)

    model: tuple[FiniteFloat, FiniteFloat]
    screen: tuple[ScreenInt, ScreenInt] | None = None


class _Action(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def points(self) -> list[Point]:
        return [value for value in self.__dict__.values() if isinstance(value, Point)]


# -- shared by both spaces -------------------------------------------------------------


class Key(_Action):
    """Press keys together (computer: a chord like ctrl+c; mobile: one adb keyevent name)."""

    action: Literal["key"] = "key"
    keys: list[str] = Field(min_length=1)


class TypeText(_Action):
    action: Literal["type"] = "type"
    text: str


class Wait(_Action):
    action: Literal["wait"] = "wait"
    time: float = Field(default=1.0, ge=0, le=MAX_WAIT_SECONDS, allow_inf_nan=False)  # seconds


class Terminate(_Action):
    action: Literal["terminate"] = "terminate"
    status: Literal["success", "failure"]


class Answer(_Action):
    action: Literal["answer"] = "answer"
    text: str


# -- computer_use ----------------------------------------------------------------------


class MouseMove(_Action):
    action: Literal["mouse_move"] = "mouse_move"
    coordinate: Point


class _ButtonClick(_Action):
    """A click; without a coordinate it clicks where the pointer is (the schema allows it)."""

    coordinate: Point | None = None


class LeftClick(_ButtonClick):
    action: Literal["left_click"] = "left_click"


class RightClick(_ButtonClick):
    action: Literal["right_click"] = "right_click"


class MiddleClick(_ButtonClick):
    action: Literal["middle_click"] = "middle_click"


class DoubleClick(_ButtonClick):
    action: Literal["double_click"] = "double_click"


class LeftClickDrag(_Action):
    """Press at the pointer's position and release at ``coordinate``."""

    action: Literal["left_click_drag"] = "left_click_drag"
    coordinate: Point


class Drag(_Action):
    """Press at ``coordinate`` and release at ``coordinate2`` (UI-TARS's drag, GUI-Owl's
    desktop drag; the Qwen2.5-VL schema's own drag is :class:`LeftClickDrag`)."""

    action: Literal["drag"] = "drag"
    coordinate: Point
    coordinate2: Point


class Scroll(_Action):
    """Wheel scroll; positive ``pixels`` scroll up (the schema's convention)."""

    action: Literal["scroll"] = "scroll"
    pixels: float = Field(ge=-MAX_SCROLL_PIXELS, le=MAX_SCROLL_PIXELS, allow_inf_nan=False)
    coordinate: Point | None = None


# -- mobile_use ------------------------------------------------------------------------


class Click(_Action):
    action: Literal["click"] = "click"
    coordinate: Point


class LongPress(_Action):
    action: Literal["long_press"] = "long_press"
    coordinate: Point
    time: float = Field(default=1.0, ge=0, le=MAX_LONG_PRESS_SECONDS,
                        allow_inf_nan=False)  # seconds


class Swipe(_Action):
    action: Literal["swipe"] = "swipe"
    coordinate: Point
    coordinate2: Point


class SystemButton(_Action):
    action: Literal["system_button"] = "system_button"
    button: Literal["Back", "Home", "Menu", "Enter"]


class Open(_Action):
    """Open an app by its label, e.g. "Settings"."""

    action: Literal["open"] = "open"
    text: str = Field(min_length=1)


Action = Annotated[
    Union[
        Key, TypeText, Wait, Terminate, Answer,
        MouseMove, LeftClick, RightClick, MiddleClick, DoubleClick, LeftClickDrag, Drag, Scroll,
        Click, LongPress, Swipe, SystemButton, Open,
    ],
    Field(discriminator="action"),
]
ACTION_ADAPTER: TypeAdapter[Action] = TypeAdapter(Action)
# action name -> its class, e.g. "left_click" -> LeftClick
ACTION_CLASSES: dict[str, type[_Action]] = {
    cls.model_fields["action"].default: cls for cls in get_args(get_args(Action)[0])
}

SHARED_ACTIONS = ("key", "type", "wait", "terminate", "answer")
SPACE_ACTIONS: dict[str, tuple[str, ...]] = {
    "computer": (
        "key", "type", "mouse_move", "left_click", "left_click_drag", "right_click",
        "middle_click", "double_click", "scroll", "wait", "terminate", "answer",
    ),
    "mobile": (
        "key", "click", "long_press", "swipe", "type", "system_button", "open", "wait",
        "terminate", "answer",
    ),
}
FINAL_ACTIONS = ("terminate", "answer")


def is_final(action: Action) -> bool:
    """True for the actions that end an episode."""
    return action.action in FINAL_ACTIONS


def tool_call(action: Action, space: Space) -> dict[str, Any]:
    """The action as the model's own tool call, in model coordinates (used for history)."""
    arguments: dict[str, Any] = {"action": action.action}
    for name, value in action:
        if name == "action" or value is None:
            continue
        if isinstance(value, Point):
            arguments[name] = [_plain_number(v) for v in value.model]
        elif name == "keys" and space == "mobile":
            arguments["text"] = value[0]
        else:
            arguments[name] = value
    return {"name": TOOL_NAMES[space], "arguments": arguments}


def tool_call_json(action: Action, space: Space) -> str:
    return json.dumps(tool_call(action, space), ensure_ascii=False)


def describe(action: Action) -> str:
    """A short human line for progress output: ``left_click at (960, 540)``."""
    parts = [action.action]
    for name, value in action:
        if name == "action" or value is None:
            continue
        if isinstance(value, Point):
            where = value.screen if value.screen is not None else value.model
            label = "at" if name == "coordinate" else ("to" if name == "coordinate2" else name)
            parts.append(f"{label} ({_plain_number(where[0])}, {_plain_number(where[1])})")
        elif isinstance(value, str):
            shown = value if len(value) <= 40 else value[:37] + "..."
            parts.append(json.dumps(shown, ensure_ascii=False))
        else:
            parts.append(f"{name}={value}")
    return " ".join(parts)


def _plain_number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value
