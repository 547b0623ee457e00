"""Raw model text -> a typed, resolved Action.

Tolerant of what real Qwen2.5-VL outputs contain: prose around the call, a missing
``</tool_call>``, code fences, single quotes or trailing commas, numbers as strings, a
4-number box where a point belongs (its centre is used), several calls (the first is used
and a note says so). Strict about what matters: an unknown action, a missing required
field or a non-numeric coordinate raises :class:`ActionParseError`, whose message is
written to be fed back to the model. Nothing here evaluates model text as code.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import json5
from pydantic import ValidationError

from qvl_agent.actions import ACTION_ADAPTER, ACTION_CLASSES, SPACE_ACTIONS, TOOL_NAMES, Action, Point, Space
from qvl_agent.geometry import CoordinateError, Frame
from qvl_agent.keys import UnknownKey
from qvl_agent.keys import chord as key_chord
from qvl_agent.typed_text import tab_refusal

POINT_FIELDS = ("coordinate", "coordinate2")
NUMBER_FIELDS = ("time", "pixels")
FENCE = re.compile(r"```[a-zA-Z0-9_-]*")
# A number inside a string coordinate ("(658, 364)", "1e2, 3e2"): exponents included, or
# "[1e2, 3e2]" would read as the four numbers 1, 2, 3, 2.
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
# Deeper than any tool call; json/json5 would recurse ~1000 levels before failing.
MAX_NESTING = 32


class ActionParseError(ValueError):
    """The model's answer cannot be turned into an action; ``str(error)`` is for the model."""


@dataclass
class Parsed:
    action: Action
    # Things the parser had to fix or ignore, for the record (e.g. "2 tool calls; used the first").
    notes: list[str] = field(default_factory=list)
    # The box [x1, y1, x2, y2] (model pixels) when a point was answered as one; its centre is used.
    box: tuple[float, float, float, float] | None = None
    # The model's reasoning that came with the action, when its answer format carries one.
    thought: str | None = None
    # The model's own one-line account of the action, when its format has one (GUI-Owl's
    # <conclusion>); families trained that way read it back as history.
    summary: str | None = None


def _only_parse_errors(function):
    """Whatever a model writes, parsing it fails only with an ActionParseError (fed back to the
    model): a number too long for int(), one too large for float() or nesting too deep for
    the JSON readers must not end a run."""

    @functools.wraps(function)
    def guarded(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except ActionParseError:
            raise
        except (ValueError, TypeError, OverflowError, RecursionError) as error:
            raise ActionParseError(f"the answer could not be read ({type(error).__name__}: "
                                   f"{_cut(str(error))})") from None

    return guarded


@_only_parse_errors
def parse(text: str, frame: Frame, space: Space) -> Parsed:
    """Parse one model answer into an action with screen coordinates resolved on ``frame``."""
    notes: list[str] = []
    candidates = _call_candidates(text)
    if not candidates:
        raise ActionParseError(
            f"no tool call found in the answer (expected <tool_call>{{...}}</tool_call> "
            f'with "name": "{TOOL_NAMES[space]}")'
        )
    if len(candidates) > 1:
        notes.append(f"the answer held {len(candidates)} tool calls; only the first was used")
    call = _load_object(candidates[0])
    arguments = _arguments_of(call, space, notes)
    action_name = arguments.get("action")
    if not isinstance(action_name, str) or not action_name:
        raise ActionParseError('the tool call has no "action" argument')
    if action_name not in SPACE_ACTIONS[space]:
        raise ActionParseError(
            f'unknown action "{action_name}" for {TOOL_NAMES[space]}; valid actions are: '
            + ", ".join(SPACE_ACTIONS[space])
        )
    boxes: list[tuple[float, float, float, float]] = []
    fields = _normalise(action_name, arguments, frame, space, notes, boxes)
    try:
        action = ACTION_ADAPTER.validate_python(fields)
    except ValidationError as error:
        raise ActionParseError(_explain(action_name, error)) from None
    return Parsed(action=action, notes=notes, box=boxes[0] if boxes else None)


# -- finding the call ---------------------------------------------------------------------


def _call_candidates(text: str) -> list[str]:
    """The JSON object texts that look like tool calls, in order of appearance."""
    text = FENCE.sub("", text)
    if "<tool_call>" in text:
        segments = text.split("<tool_call>")[1:]
        bodies = [segment.split("</tool_call>")[0] for segment in segments]
        objects = [_first_object(body) for body in bodies]
        return [obj for obj in objects if obj is not None]
    # No tags: any top-level object that names an action (prose or a bare fenced object).
    found = []
    position = 0
    while (start := text.find("{", position)) != -1:
        end = _object_end(text, start)
        if end is None:
            break
        obj = text[start:end]
        if '"action"' in obj or "'action'" in obj:
            found.append(obj)
        position = end
    return found


def _first_object(text: str) -> str | None:
    """The first balanced ``{...}`` in ``text`` (string-aware); unbalanced tail -> None."""
    start = text.find("{")
    end = _object_end(text, start) if start != -1 else None
    return text[start:end] if end is not None else None


def _object_end(text: str, start: int) -> int | None:
    """Where the balanced ``{...}`` opening at ``text[start]`` ends (string-aware), or None.
    Raises ActionParseError past MAX_NESTING levels of brackets."""
    depth = nesting = 0  # open braces; open braces and brackets
    quote = ""
    escaped = False
    for index in range(start, len(text)):
        char = text[index]
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "{[":
            depth += char == "{"
            nesting += 1
            if nesting > MAX_NESTING:
                raise ActionParseError(
                    f"the tool call is nested more than {MAX_NESTING} levels deep; answer with "
                    'one flat call: {"name": ..., "arguments": {"action": ..., ...}}'
                )
        elif char == "]":
            nesting = max(0, nesting - 1)
        elif char == "}":
            depth -= 1
            nesting = max(0, nesting - 1)
            if depth == 0:
                return index + 1
    return None


def _load_object(source: str) -> dict[str, Any]:
    try:
        value = json.loads(source)
    except json.JSONDecodeError:
        try:
            value = json5.loads(source)  # single quotes, trailing commas, bare keys
        except Exception as error:  # a third-party parser on model text: any failure is "not JSON"
            raise ActionParseError(
                f"the tool call is not valid JSON ({_cut(str(error), 200)})") from None
    except RecursionError:
        raise ActionParseError(
            f"the tool call is nested more than {MAX_NESTING} levels deep") from None
    except ValueError:  # int() refuses past 4300 digits
        raise ActionParseError("the tool call holds a number too long to read; coordinates are "
                               "pixels of the screenshot") from None
    if not isinstance(value, dict):
        raise ActionParseError("the tool call must be a JSON object")
    return value


def _arguments_of(call: dict[str, Any], space: Space, notes: list[str]) -> dict[str, Any]:
    if "arguments" not in call:
        if "action" in call:  # a bare arguments object
            return dict(call)
        raise ActionParseError('the tool call has no "arguments" object')
    name = call.get("name")
    if name is not None and name != TOOL_NAMES[space]:
        raise ActionParseError(
            f'unknown tool "{name}"; the only tool is "{TOOL_NAMES[space]}"'
        )
    arguments = call["arguments"]
    if isinstance(arguments, str):  # OpenAI-style: arguments as a JSON string
        arguments = _load_object(arguments)
        notes.append("arguments were a JSON string")
    if not isinstance(arguments, dict):
        raise ActionParseError('"arguments" must be a JSON object')
    return dict(arguments)


# -- normalising arguments ----------------------------------------------------------------


def _normalise(
    action_name: str, arguments: dict[str, Any], frame: Frame, space: Space, notes: list[str],
    boxes: list[tuple[float, float, float, float]],
) -> dict[str, Any]:
    fields: dict[str, Any] = {"action": action_name}
    allowed = set(ACTION_CLASSES[action_name].model_fields)
    for name, value in arguments.items():
        if name == "action" or value is None:
            continue
        if name == "text" and action_name == "key":
            fields["keys"] = (
                _keys(value, space) if space == "computer"
                else [value] if isinstance(value, str) else value
            )
        elif name == "keys":
            fields["keys"] = _keys(value, space)
        elif name == "text" and action_name == "type" and isinstance(value, str):
            if (refused := tab_refusal(value, space)) is not None:
                raise ActionParseError(refused)
            fields[name] = value
        elif name not in allowed:
            notes.append(f'ignored argument "{name}" that {action_name} does not take')
        elif name in POINT_FIELDS:
            fields[name] = _resolve(_point(name, value, notes, boxes), name, frame)
        elif name in NUMBER_FIELDS:
            fields[name] = _number(name, value)
        elif name == "status" and isinstance(value, str):
            fields[name] = value.strip().lower()
        else:
            fields[name] = value
    return fields


def _keys(value: Any, space: Space = "mobile") -> list[str]:
    """Key names; on the desktop each becomes its one canonical name (qvl_agent.keys), and an
    unknown one is an error for the model, not for the device."""
    if space == "computer" and isinstance(value, (str, list)):
        try:
            return key_chord([value] if isinstance(value, str) else value)
        except UnknownKey as error:
            if isinstance(value, str) and len(value.split()) > 1:  # "ctrl c" is a chord too
                try:
                    return key_chord(value.split())
                except UnknownKey:
                    pass
            raise ActionParseError(str(error)) from None
    if isinstance(value, str):
        # "ctrl+c" and "ctrl c" both mean a chord.
        return [part for part in re.split(r"[+\s]+", value.strip()) if part] or [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise ActionParseError('"keys" must be a list of key names, e.g. ["ctrl", "c"]')


def _number(name: str, value: Any) -> float:
    """A finite float; anything else is an ActionParseError for the model."""
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an int of 310+ digits
            raise ActionParseError(f'"{name}" is far too large ({_brief(value)})') from None
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            pass
    if number is None:
        raise ActionParseError(f'"{name}" must be a number, got {_brief(value)}')
    if not math.isfinite(number):
        raise ActionParseError(f'"{name}" must be a finite number, got {_brief(value)}')
    return number


def _brief(value: Any, limit: int = 80) -> str:
    """``value`` as JSON for an error message, cut to ``limit`` characters; never fails (str()
    of an int past 4300 digits raises, json.dumps of deep nesting recurses)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        return f"a number of about {int(value.bit_length() * 0.30103)} digits"
    try:
        shown = json.dumps(value, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        shown = type(value).__name__
    return _cut(shown, limit)


def _cut(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _point(name: str, value: Any, notes: list[str],
           boxes: list[tuple[float, float, float, float]]) -> tuple[float, float]:
    """[x, y]; also "x, y" strings, numbers as strings, and [x1, y1, x2, y2] boxes (centre)."""
    numbers: list[Any]
    if isinstance(value, dict) and "x" in value and "y" in value:
        numbers = [value["x"], value["y"]]
    elif isinstance(value, str):
        numbers = NUMBER.findall(value)
        if not numbers:
            raise ActionParseError(
                f'"{name}" must be [x, y] in screenshot pixels, got {_brief(value)}')
    elif isinstance(value, (list, tuple)):
        numbers = list(value)
        if len(numbers) == 1 and isinstance(numbers[0], (list, tuple)):  # [[x, y]]
            numbers = list(numbers[0])
    else:
        raise ActionParseError(f'"{name}" must be [x, y] in screenshot pixels, got {_brief(value)}')
    if len(numbers) not in (2, 4):
        raise ActionParseError(
            f'"{name}" must hold two numbers [x, y], got {len(numbers)}: {_brief(value)}'
        )
    values = [_number(name, item) for item in numbers]
    if len(values) == 2:
        return values[0], values[1]
    notes.append(f'"{name}" was a box {values}; used its centre')
    boxes.append((values[0], values[1], values[2], values[3]))
    return (values[0] + values[2]) / 2, (values[1] + values[3]) / 2


def _resolve(model_point: tuple[float, float], name: str, frame: Frame) -> Point:
    try:
        screen = frame.to_screen(*model_point)
    except CoordinateError as error:
        raise ActionParseError(f'"{name}": {error}') from None
    return Point(model=model_point, screen=screen)


def _explain(action_name: str, error: ValidationError) -> str:
    problems = []
    for issue in error.errors():
        location = ".".join(str(part) for part in issue["loc"][1:]) or "arguments"
        if issue["type"] == "missing":
            problems.append(f'action "{action_name}" needs "{location}"')
        elif issue["type"] == "extra_forbidden":
            problems.append(f'action "{action_name}" does not take "{location}"')
        else:
            problems.append(f'"{location}": {issue["msg"]}')
    return "; ".join(problems)
