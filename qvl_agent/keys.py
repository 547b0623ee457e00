"""Desktop key names: what a model may call a key, and the one name each key has here.

Models write keys many ways: ``["ctrl", "A"]``, ``["ctrl+a"]``, ``"Control_L"``, ``"cmd"``,
``"Return"``, ``"PgUp"``. :func:`chord` turns any of them into canonical names (pyautogui's
vocabulary, which every desktop backend here understands):

* names are case-insensitive, and so is a single letter: ``A`` is the key of ``a``, in a
  chord (``["ctrl", "A"]`` is Ctrl+A, not Ctrl+Shift+A) and alone; for a capital letter
  add ``shift`` or use the ``type`` action;
* an item holding ``+`` is a chord of its parts (``"ctrl+a"``, ``"ctrl++"``);
* aliases (``cmd``/``super``/``win``/``meta``, ``esc``/``escape``, ``return``, ``pgup``, X
  keysym names like ``Control_L``...) become one name;
* any other single character is the key that types it (``"+"``, ``"/"``, ``"é"``);
* anything else is an :class:`UnknownKey`, whose message lists the names there are (the
  parser feeds it back to the model).
"""

from __future__ import annotations

MODIFIERS = ("ctrl", "shift", "alt", "win")
# Canonical named keys -> X11 keysym names.
X11_KEYSYMS: dict[str, str] = {
    "enter": "Return", "esc": "Escape", "tab": "Tab", "space": "space",
    "backspace": "BackSpace", "delete": "Delete", "insert": "Insert",
    "home": "Home", "end": "End", "pageup": "Prior", "pagedown": "Next",
    "up": "Up", "down": "Down", "left": "Left", "right": "Right",
    "ctrl": "Control_L", "ctrlleft": "Control_L", "ctrlright": "Control_R",
    "shift": "Shift_L", "shiftleft": "Shift_L", "shiftright": "Shift_R",
    "alt": "Alt_L", "altleft": "Alt_L", "altright": "Alt_R",
    "win": "Super_L", "winleft": "Super_L", "winright": "Super_R",
    "capslock": "Caps_Lock", "numlock": "Num_Lock", "scrolllock": "Scroll_Lock",
    "printscreen": "Print", "pause": "Pause", "apps": "Menu",
    **{f"f{n}": f"F{n}" for n in range(1, 25)},
}
ALIASES: dict[str, str] = {
    "return": "enter", "kp_enter": "enter", "escape": "esc", "control": "ctrl",
    "control_l": "ctrlleft", "control_r": "ctrlright", "lctrl": "ctrlleft", "rctrl": "ctrlright",
    "shift_l": "shiftleft", "shift_r": "shiftright",
    "option": "alt", "alt_l": "altleft", "alt_r": "altright", "altgr": "altright",
    "cmd": "win", "command": "win", "super": "win", "meta": "win", "windows": "win",
    "super_l": "winleft", "super_r": "winright", "meta_l": "winleft", "meta_r": "winright",
    "del": "delete", "back_space": "backspace", "bksp": "backspace", "ins": "insert",
    "page_up": "pageup", "pgup": "pageup", "prior": "pageup",
    "page_down": "pagedown", "pgdn": "pagedown", "next": "pagedown",
    "arrowup": "up", "arrowdown": "down", "arrowleft": "left", "arrowright": "right",
    "uparrow": "up", "downarrow": "down", "leftarrow": "left", "rightarrow": "right",
    "arrow_up": "up", "arrow_down": "down", "arrow_left": "left", "arrow_right": "right",
    "spacebar": "space", "caps_lock": "capslock", "num_lock": "numlock",
    "scroll_lock": "scrolllock", "print_screen": "printscreen", "prtsc": "printscreen",
    "prtscr": "printscreen", "print": "printscreen", "menu": "apps", "context_menu": "apps",
    "plus": "+", "minus": "-", "equal": "=", "equals": "=", "comma": ",", "period": ".",
    "slash": "/", "backslash": "\\", "semicolon": ";", "apostrophe": "'", "quote": "'",
    "grave": "`", "backtick": "`", "bracketleft": "[", "bracketright": "]",
}
SUGGESTED = (
    "enter, esc, tab, space, backspace, delete, up, down, left, right, home, end, pageup, "
    "pagedown, f1-f12, ctrl, alt, shift, win, or one character such as a, 5 or /"
)


class UnknownKey(ValueError):
    """A key name no desktop here has; the message names the ones there are."""


def key_name(key: str) -> str:
    """The canonical name of one key (see the module's rules)."""
    if not isinstance(key, str):
        raise UnknownKey(f"a key name must be text, got {key!r}; use names like {SUGGESTED}")
    if key == " ":
        return "space"
    if len(key) == 1 and key.isprintable():
        return key.lower()  # only letters change: "A" is the key of "a"
    name = key.strip().lower().replace(" ", "_").replace("-", "_")
    name = ALIASES.get(name, ALIASES.get(name.replace("_", ""), name))
    if name in X11_KEYSYMS or (len(name) == 1 and name.isprintable()):
        return "space" if name == " " else name
    squeezed = name.replace("_", "")
    if squeezed in X11_KEYSYMS:  # page_up, caps_lock, print_screen, ...
        return squeezed
    shown = key if len(key) <= 40 else key[:40] + "..."
    raise UnknownKey(f"unknown key {shown!r}; use names like {SUGGESTED}")


def chord(keys: list[str]) -> list[str]:
    """Canonical names for keys pressed together; ``+`` inside an item splits it."""
    names: list[str] = []
    for key in keys:
        if isinstance(key, str) and "+" in key and len(key.strip()) > 1:
            parts = key.strip().split("+")
            # "ctrl++" and "+" name the plus key: an empty part next to another one.
            parts = [part for part in parts if part] + (["+"] if key.strip().endswith("++") else [])
            names.extend(key_name(part.strip()) for part in parts)
        else:
            names.append(key_name(key))
    if not names:
        raise UnknownKey(f"no key to press; use names like {SUGGESTED}")
    return names
