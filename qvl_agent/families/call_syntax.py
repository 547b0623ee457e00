"""Python-call answers (``click(start_box='(10,20)')``) read without evaluating them.

UI-TARS answers ``Thought: ...`` then ``Action: name(key='value', ...)``; its own parser runs
``ast.parse`` on each call and needs well-formed Python. Models also write unescaped quotes
inside ``content``, unquoted values (``start_box=(10,20)``), a positional value, a call whose
closing parenthesis was cut off, and several calls separated by blank lines: this reader takes
all of those, and says what it fixed in ``notes``. Values come back as strings with Python's
escapes (``\\n``, ``\\'``, ``\\"``, ``\\\\``) decoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NAME = re.compile(r"\s*([A-Za-z_]\w*)\s*\(")
_KEY = re.compile(r"\s*([A-Za-z_]\w*)\s*=\s*")
# After a string's closing quote: the next keyword argument, or the call's end.
_AFTER_STRING = re.compile(r"\s*(?:,\s*[A-Za-z_]\w*\s*=|,?\s*\)|,?\s*$)")
_ESCAPES = {"n": "\n", "t": "\t", "'": "'", '"': '"', "\\": "\\"}


class CallSyntaxError(ValueError):
    """The text holds no readable call; the message says what was expected."""


@dataclass
class Call:
    name: str
    # Keyword arguments as written (decoded strings); a positional value is under "".
    args: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def read_calls(text: str) -> list[Call]:
    """Every call in ``text``, in order (an answer may hold several, one per paragraph)."""
    calls: list[Call] = []
    position = 0
    while True:
        match = _NAME.match(text, position)
        if match is None:
            rest = text[position:].strip()
            if not calls:
                raise CallSyntaxError(f"expected an action like click(start_box='(x,y)'), "
                                      f"got {_shown(rest)}")
            if rest:
                calls[-1].notes.append(f"ignored text after the action: {_shown(rest)}")
            return calls
        call = Call(name=match.group(1))
        position = _read_arguments(text, match.end(), call)
        calls.append(call)


def _read_arguments(text: str, position: int, call: Call) -> int:
    """Fill ``call.args`` from the text after its ``(``; returns where the call ends."""
    while True:
        while position < len(text) and text[position] in " \t\n,":
            position += 1
        if position >= len(text):
            call.notes.append(f"{call.name}(...) was not closed with ')'")
            return position
        if text[position] == ")":
            return position + 1
        key_match = _KEY.match(text, position)
        key = ""
        if key_match is not None:
            key, position = key_match.group(1), key_match.end()
        elif "" in call.args:
            raise CallSyntaxError(f"{call.name}(...) has a second value without a name; write "
                                  f"{call.name}(name='value', ...)")
        if position < len(text) and text[position] in "'\"":
            value, position = _read_string(text, position, call)
        else:
            value, position = _read_bare(text, position)
            call.notes.append(f"{key or 'the value'} of {call.name} was not quoted")
        if key in call.args:
            call.notes.append(f"{call.name} repeated {key}=; the first one was used")
        else:
            call.args[key] = value


def _read_string(text: str, start: int, call: Call) -> tuple[str, int]:
    """A quoted value: it ends at the same quote followed by the next argument or ``)``, so
    that an unescaped quote inside (``content='it's'``) is kept as text."""
    quote = text[start]
    chars: list[str] = []
    position = start + 1
    while position < len(text):
        char = text[position]
        if char == "\\" and position + 1 < len(text):
            following = text[position + 1]
            chars.append(_ESCAPES.get(following, "\\" + following))
            position += 2
            continue
        if char == quote and _AFTER_STRING.match(text, position + 1):
            return "".join(chars), position + 1
        chars.append(char)
        position += 1
    call.notes.append(f"a value of {call.name} was not closed with {quote}")
    return "".join(chars), position


def _read_bare(text: str, position: int) -> tuple[str, int]:
    """An unquoted value such as ``(10,20)`` or ``[1, 2, 3, 4]``: up to the next comma or the
    call's closing parenthesis outside brackets."""
    depth = 0
    start = position
    while position < len(text):
        char = text[position]
        if char in "([<":
            depth += 1
        elif char in ")]>":
            if depth == 0:
                break
            depth -= 1
        elif char == "," and depth == 0:
            break
        elif char == "\n" and depth == 0:
            break
        position += 1
    return text[start:position].strip(), position


def _shown(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")
