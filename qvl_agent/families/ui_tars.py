"""``ui-tars-1.5``: ByteDance's UI-TARS-1.5-7B (a Qwen2.5-VL fine-tune).

* Prompt (bytedance/UI-TARS ``codes/ui_tars/prompt.py``): system "You are a helpful
  assistant.", then a user turn with ``COMPUTER_USE_DOUBAO`` or ``MOBILE_USE_DOUBAO`` filled
  with the language and the goal, then one user turn per screenshot, each followed by the
  model's answer to it.
* History (xlang-ai/OSWorld ``mm_agents/uitars15_v1.py``; UI-TARS-desktop
  ``MAX_IMAGE_LENGTH = 5``): every earlier answer ("Thought: ...\\nAction: ...") as an
  assistant turn; the last 5 screenshots, the current one included, as user turns before the
  answers they led to; older answers stay, without their screenshots.
* Coordinates: absolute pixels of the image smart-resized with factor 28 and UI-TARS's own
  bounds ``MIN_PIXELS = 100*28*28``, ``MAX_PIXELS = 16384*28*28``
  (``codes/ui_tars/action_parser.py``, ``README_coordinates.md``).
* Grammar: ``Thought: ...`` then ``Action: click(start_box='(x,y)')`` and its other forms
  (``<|box_start|>(x,y)<|box_end|>``, ``point='<point>x y</point>'``, a box
  ``[x1, y1, x2, y2]``), read by :mod:`qvl_agent.families.call_syntax`, never evaluated.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import ValidationError

from qvl_agent.actions import (
    ACTION_ADAPTER, Action, Answer, Click, DoubleClick, Drag, Key, LeftClick, LeftClickDrag,
    LongPress, MiddleClick, MouseMove, Open, Point, RightClick, Scroll, Space, Swipe,
    SystemButton, Terminate, TypeText, Wait,
)
from qvl_agent.families.base import Family, Grounding, Located, Turn, located_action
from qvl_agent.families.call_syntax import Call, CallSyntaxError, read_calls
from qvl_agent.geometry import FACTOR, Frame
from qvl_agent.parsing import NUMBER, ActionParseError, Parsed, _explain, _keys, _point, _resolve
from qvl_agent.prompts import Message, Prompt, fill, template
from qvl_agent.typed_text import tab_refusal

NAME = "ui-tars-1.5"
LANGUAGE = "English"
SYSTEM = "You are a helpful assistant."
TEMPLATES = {"computer": "ui-tars-1.5/computer.txt", "mobile": "ui-tars-1.5/mobile.txt"}
MIN_PIXELS = 100 * 28 * 28
MAX_PIXELS = 16384 * 28 * 28
HISTORY_IMAGES = 5
# wait() is "Sleep for 5s" (the prompt's action space).
WAIT_SECONDS = 5.0
# UI-TARS's own executor scrolls the wheel 5 notches (pyautogui.scroll(+-5)); the desktop
# device turns 50 "pixels" into one notch.
SCROLL_PIXELS = 250.0
# UI-TARS-desktop's adb operator swipes 200 screen pixels from the point, in the direction
# named, for scroll(point, direction) (multimodal/gui-agent/operator-adb, handleScroll).
PHONE_SCROLL_PIXELS = 200
DIRECTIONS = {"up": (0, -1), "down": (0, 1), "left": (-1, 0), "right": (1, 0)}

# The actions each prompt offers, and the aliases the parser also takes.
TRAINED = {
    "computer": ("click", "left_double", "right_single", "drag", "hotkey", "type", "scroll",
                 "wait", "finished", "call_user"),
    "mobile": ("click", "long_press", "type", "scroll", "open_app", "drag", "press_home",
               "press_back", "finished", "wait", "call_user"),
}
COMPUTER_CLICKS = {"click": LeftClick, "left_single": LeftClick, "left_double": DoubleClick,
                   "double_click": DoubleClick, "right_single": RightClick,
                   "right_click": RightClick, "hover": MouseMove}
START_KEYS = ("start_box", "point", "start_point", "box", "")
END_KEYS = ("end_box", "end_point")
_ACTION_LABEL = re.compile(r"(?:^|\n)[ \t]*Action[ \t]*:[ \t]*")
_THOUGHT_LABEL = re.compile(r"^\s*Thought\s*:\s*")
# As OSWorld's add_box_token rewrites them: '(x,y)' written without a space only.
_BOX_POINT = re.compile(r"(start_box|end_box)='\((\d+),(\d+)\)'")
_TAGS = re.compile(r"<\|box_start\|>|<\|box_end\|>|</?point>|</?bbox>")
SOURCE = ("bytedance/UI-TARS@582f3a7 codes/ui_tars/prompt.py + action_parser.py; history as "
          "xlang-ai/OSWorld mm_agents/uitars15_v1.py and bytedance/UI-TARS-desktop")


# -- prompt -------------------------------------------------------------------------------


def agent_prompt(goal: str, space: Space, frame: Frame, turns: Sequence[Turn],
                 images: int = HISTORY_IMAGES) -> Prompt:
    """The instruction turn, then (screenshot, answer) pairs, then the current screenshot."""
    instruction = fill(template(TEMPLATES[space]), language=LANGUAGE, instruction=goal)
    messages = [Message(role="system", text=SYSTEM), Message(role="user", text=instruction)]
    earlier = []
    first_with_image = len(turns) - max(0, images - 1)
    for index, turn in enumerate(turns):
        if index >= first_with_image and turn.image is not None:
            messages.append(Message(role="user", text="", image=True))
            earlier.append(turn.image)
        messages.append(Message(role="assistant", text=history_answer(turn)))
    messages.append(Message(role="user", text="", image=True))
    return Prompt(messages=messages, earlier_images=earlier)


def history_answer(turn: Turn) -> str:
    """An earlier step as the model said it. Its ``<|box_start|>``/``<|box_end|>`` tokens
    were dropped when the answer was decoded; they are put back, as OSWorld's agent does
    (``add_box_token``). A ground-truth step is written as the action alone."""
    if turn.response is None:
        return f"Action: {render(turn.action)}"
    return _BOX_POINT.sub(r"\1='<|box_start|>(\2,\3)<|box_end|>'", turn.response.strip())


def feedback(error: str, space: Space) -> str:
    example = "click(point='<point>100 200</point>')"
    return fill(template("ui-tars-1.5/retry.txt"), error=error, example=example)


# -- parser -------------------------------------------------------------------------------


def parse_answer(text: str, frame: Frame, space: Space) -> Parsed:
    thought, calls, notes = read_answer(text)
    if len(calls) > 1:
        notes.append(f"the answer held {len(calls)} actions; only the first was used")
    call = calls[0]
    notes.extend(call.notes)
    boxes: list[tuple[float, float, float, float]] = []
    action = to_action(call, frame, space, notes, boxes)
    return Parsed(action=action, notes=notes, box=boxes[0] if boxes else None, thought=thought)


def read_answer(text: str) -> tuple[str | None, list[Call], list[str]]:
    """(thought, the calls after the ``Action:`` label, notes). The thought is what comes
    before the label (its ``Thought:`` dropped). The label whose text reads as calls counts
    (a thought may say "Action: tap it" in prose); later labels only separate calls."""
    labels = list(_ACTION_LABEL.finditer(text))
    if not labels:
        bare = text.strip()
        if re.match(r"[A-Za-z_]\w*\s*\(", bare):
            return None, _calls(bare), ["the answer had no 'Action:' label"]
        raise ActionParseError("no 'Action: ...' line in the answer; answer as\nThought: ...\n"
                               "Action: click(point='<point>x1 y1</point>')")
    error: ActionParseError | None = None
    for label in labels:
        try:
            calls = _calls(_ACTION_LABEL.sub("\n\n", text[label.end():]))
        except ActionParseError as failed:
            error = error or failed
            continue
        thought = _THOUGHT_LABEL.sub("", text[: label.start()]).strip() or None
        return thought, calls, []
    assert error is not None
    raise error


def _calls(text: str) -> list[Call]:
    try:
        return read_calls(text)
    except CallSyntaxError as error:
        raise ActionParseError(f"{error}; answer as\nThought: ...\nAction: "
                               "click(point='<point>x1 y1</point>')") from None


def to_action(call: Call, frame: Frame, space: Space, notes: list[str],
              boxes: list[tuple[float, float, float, float]]) -> Action:
    name, args = call.name.lower(), call.args
    start = lambda: _point_arg(call, START_KEYS, frame, notes, boxes)  # noqa: E731
    fields: dict
    if name in ("wait", "sleep"):
        fields = {"action": "wait", "time": WAIT_SECONDS}
    elif name in ("finished", "finish"):
        content = _text(args, "content")
        fields = {"action": "answer", "text": content} if content.strip() else \
            {"action": "terminate", "status": "success"}
    elif name == "call_user":
        notes.append("the model called the user for help (call_user); the run stops as failed")
        fields = {"action": "terminate", "status": "failure"}
    elif name == "type":
        text = _text(args, "content")
        if (refused := tab_refusal(text, space)) is not None:
            raise ActionParseError(refused)
        fields = {"action": "type", "text": text}
    elif name in ("hotkey", "press", "keydown"):
        keys = args.get("key", args.get("hotkey", args.get("", "")))
        if not keys.strip():
            raise ActionParseError(f"{name} needs key='...', e.g. hotkey(key='ctrl c')")
        fields = {"action": "key", "keys": _keys(keys, space)}
        if name != "hotkey":
            notes.append(f"{name}(key=...) was pressed and released")
    elif name in ("drag", "select", "swipe"):
        end = _point_arg(call, END_KEYS, frame, notes, boxes)
        begin = start()
        if begin is None or end is None:
            raise ActionParseError(f"{name} needs start_box='(x1,y1)' and end_box='(x2,y2)'")
        fields = {"action": "drag" if space == "computer" else "swipe",
                  "coordinate": begin, "coordinate2": end}
    elif name == "scroll":
        fields = _scroll(call, start(), frame, space)
    elif space == "computer" and name in COMPUTER_CLICKS:
        fields = {"action": COMPUTER_CLICKS[name].model_fields["action"].default,
                  "coordinate": _required(start(), call)}
    elif space == "mobile" and name in ("click", "left_single", "tap"):
        fields = {"action": "click", "coordinate": _required(start(), call)}
    elif space == "mobile" and name == "long_press":
        fields = {"action": "long_press", "coordinate": _required(start(), call)}
    elif space == "mobile" and name == "open_app":
        fields = {"action": "open", "text": _text(args, "app_name")}
    elif space == "mobile" and name in ("press_home", "home", "press_back", "back"):
        fields = {"action": "system_button", "button": "Home" if "home" in name else "Back"}
    else:
        raise ActionParseError(f"unknown action {call.name}(...) for the {space}; the actions are: "
                               + ", ".join(TRAINED[space]))
    try:
        return ACTION_ADAPTER.validate_python(fields)
    except ValidationError as error:
        raise ActionParseError(_explain(name, error)) from None


def _scroll(call: Call, point: Point | None, frame: Frame, space: Space) -> dict:
    direction = call.args.get("direction", "").strip().strip("'\"").lower()
    if direction not in DIRECTIONS:
        raise ActionParseError("scroll needs direction='up', 'down', 'left' or 'right', got "
                               f"{call.args.get('direction')!r}")
    if space == "computer":
        if direction in ("left", "right"):
            raise ActionParseError("this desktop scrolls up or down only; use "
                                   "scroll(point='<point>x1 y1</point>', direction='down')")
        pixels = SCROLL_PIXELS if direction == "up" else -SCROLL_PIXELS
        return {"action": "scroll", "pixels": pixels, "coordinate": point}
    # A phone: the finger moves from the point (the screen's centre without one) in the
    # direction named, as UI-TARS-desktop's adb operator does.
    begin = point.screen if point is not None else frame.monitor.centre
    dx, dy = DIRECTIONS[direction]
    end = frame.monitor.moved(begin, dx * PHONE_SCROLL_PIXELS, dy * PHONE_SCROLL_PIXELS)
    if point is None:
        point = Point(model=frame.to_model(*begin), screen=begin)
    return {"action": "swipe", "coordinate": point,
            "coordinate2": Point(model=frame.to_model(*end), screen=end)}


def _point_arg(call: Call, keys: tuple[str, ...], frame: Frame, notes: list[str],
               boxes: list[tuple[float, float, float, float]]) -> Point | None:
    for key in keys:
        if key in call.args:
            raw = call.args[key]
            break
    else:
        return None
    label = key or "the point"
    numbers = NUMBER.findall(_TAGS.sub(" ", raw))
    if not numbers:
        raise ActionParseError(f"{label} must be a point like '(x,y)' in screenshot pixels, "
                               f"got {raw!r}")
    return _resolve(_point(label, numbers, notes, boxes), label, frame)


def _required(point: Point | None, call: Call) -> Point:
    if point is None:
        raise ActionParseError(f"{call.name} needs start_box='(x,y)' (or "
                               "point='<point>x y</point>'): where to act")
    return point


def _text(args: dict[str, str], key: str) -> str:
    return args.get(key, args.get("", ""))


# -- writing actions in the grammar (ground-truth history, examples) ------------------------


def render(action: Action) -> str:
    """``action`` as UI-TARS writes it, in the prompt's ``point=`` form (model coordinates)."""
    def point(value: Point) -> str:
        x, y = (int(v) if float(v).is_integer() else v for v in value.model)
        return f"'<point>{x} {y}</point>'"

    if isinstance(action, (LeftClick, Click, MiddleClick)):
        return f"click(point={point(action.coordinate)})" if action.coordinate else "click()"
    if isinstance(action, (DoubleClick, RightClick, MouseMove)):
        verb = {"double_click": "left_double", "right_click": "right_single",
                "mouse_move": "hover"}[action.action]
        return f"{verb}(point={point(action.coordinate)})" if action.coordinate else f"{verb}()"
    if isinstance(action, (Drag, Swipe)):
        return (f"drag(start_point={point(action.coordinate)}, "
                f"end_point={point(action.coordinate2)})")
    if isinstance(action, LeftClickDrag):
        return f"drag(end_point={point(action.coordinate)})"
    if isinstance(action, LongPress):
        return f"long_press(point={point(action.coordinate)})"
    if isinstance(action, Key):
        return f"hotkey(key={_quoted(' '.join(k.lower() for k in action.keys))})"
    if isinstance(action, TypeText):
        return f"type(content={_quoted(action.text)})"
    if isinstance(action, Scroll):
        where = f"point={point(action.coordinate)}, " if action.coordinate else ""
        return f"scroll({where}direction='{'up' if action.pixels > 0 else 'down'}')"
    if isinstance(action, Open):
        return f"open_app(app_name={_quoted(action.text)})"
    if isinstance(action, SystemButton):
        return {"Home": "press_home()", "Back": "press_back()"}.get(
            action.button, f"hotkey(key='{action.button.lower()}')")
    if isinstance(action, Wait):
        return "wait()"
    if isinstance(action, Answer):
        return f"finished(content={_quoted(action.text)})"
    if isinstance(action, Terminate):
        return "finished()" if action.status == "success" else "call_user()"
    raise ValueError(f"no UI-TARS form for {action.action}")


def _quoted(text: str) -> str:
    """A Python string literal in single quotes, as the prompt asks ("Use escape characters")."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"


# -- grounding ----------------------------------------------------------------------------


def ground_prompt(description: str, frame: Frame) -> Prompt:
    """``GROUNDING_DOUBAO`` with the description, the screenshot after it in the same turn
    (as ClawGUI-Eval feeds UI-TARS-1.5 grounding questions)."""
    text = fill(template("ui-tars-1.5/grounding.txt"), instruction=description)
    return Prompt(messages=[Message(role="system", text=SYSTEM),
                            Message(role="user", text=text, image=True)])


def ground_answer(text: str, frame: Frame) -> Located:
    return located_action(parse_answer(text, frame, "computer"))


FAMILY = Family(
    name=NAME,
    title="UI-TARS-1.5-7B (ByteDance-Seed/UI-TARS-1.5-7B)",
    source=SOURCE,
    coordinates="pixels",
    factor=FACTOR,
    min_pixels=MIN_PIXELS,
    max_pixels=MAX_PIXELS,
    history="earlier answers (Thought/Action) as assistant turns; the last 5 screenshots "
            "(current included) as user turns before them",
    history_images=HISTORY_IMAGES,
    prompt=agent_prompt,
    parse=parse_answer,
    feedback=feedback,
    ground=Grounding(prompt=ground_prompt, parse=ground_answer,
                     source="bytedance/UI-TARS codes/ui_tars/prompt.py GROUNDING_DOUBAO"),
    names=(r"ui[-_ ]?tars",),
)
