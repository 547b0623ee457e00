"""Type any text and press any key chord on X11 exactly, through XTEST.

pyautogui drops characters its US-layout table lacks and types ``<`` as ``>``. xdotool
types anything, but it remaps a spare keycode per character and restores it right after
the key event; an app that refreshes its keymap on the MappingNotify *after* the restore
reads the key as nothing, so characters go missing (seen here with Tk: "héllo" -> "hllo").

This typer gives each distinct character that the keymap lacks its own spare keycode,
keeps those mappings while the text is typed, and restores them only after a pause long
enough for the app to have read them. Texts with more such characters than there are spare
keycodes are typed in chunks, with the same pause between chunks.

A keycode types what the keymap's *active layout group* holds for it (with ``us,ru`` and
the Russian group active, the key of ``e`` types ``у``), so a character counts as present
only in the active group's columns of the core keymap, read afresh (with the group, from
XKB) for every text and chord; a group the core keymap does not show (3 or 4) gets every
character remapped. A spare keycode maps its character in every column: one-group keys
type the same in any group, and a letter's spare keycode holds both its cases. Caps Lock
(which apps apply differently to different kinds of keys) is unlocked while the typer types
and locked again after.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from qvl_agent.devices.xkb_state import LOCK_MASK, KeyboardState
from qvl_agent.keys import X11_KEYSYMS

# Time for the app to process the MappingNotify events before we remap again or restore.
REMAP_SETTLE_SECONDS = 0.15
SPECIAL_KEYSYMS = {"\n": "Return", "\t": "Tab"}
# Modifier keys are found in any column: their keycodes do not depend on the group.
MODIFIER_KEYSYMS = (
    "Shift_L", "Shift_R", "Control_L", "Control_R", "Alt_L", "Alt_R", "Meta_L", "Meta_R",
    "Super_L", "Super_R", "Hyper_L", "Hyper_R", "ISO_Level3_Shift", "Mode_switch",
    "Caps_Lock", "Num_Lock",
)


class X11Typer:
    def __init__(self, display_name: str) -> None:
        from Xlib import XK
        from Xlib.display import Display

        self._XK = XK
        self._display: Any = Display(display_name)
        self._keyboard = KeyboardState(self._display)
        self._modifiers = {XK.string_to_keysym(name) for name in MODIFIER_KEYSYMS}
        self._read_keymap()
        if not self._spare or not self._shift:
            raise RuntimeError("this X server's keymap has no spare keycodes or no Shift key")

    def type(self, text: str) -> None:
        self._read_keymap()
        pending = [self._keysym(char) for char in text]
        with self._caps_lock_off():
            while pending:
                chunk, remapped = self._take_chunk(pending)
                del pending[: len(chunk)]
                with self._mapped(remapped):
                    for keysym in chunk:
                        self._hold_keys([self._key_for(keysym, remapped)])

    def press_chord(self, names: list[str]) -> None:
        """Press the keys together, in order, and release them in reverse; ``names`` are
        canonical key names (:mod:`qvl_agent.keys`): a named key or one character."""
        self._read_keymap()
        keysyms = [
            self._keysym(name) if len(name) == 1
            else self._XK.string_to_keysym(X11_KEYSYMS.get(name, name))
            for name in names
        ]
        if 0 in keysyms:
            raise ValueError(f"X11 has no key {names[keysyms.index(0)]!r}")
        chunk, remapped = self._take_chunk(keysyms)
        if len(chunk) < len(keysyms):
            raise ValueError(f"too many keys missing from the keymap in {names}")
        caps_lock = self._XK.string_to_keysym("Caps_Lock")
        # A chord that presses Caps Lock toggles it: that one leaves the lock alone.
        unlocked = self._caps_lock_off() if caps_lock not in keysyms else contextlib.nullcontext()
        with unlocked, self._mapped(remapped):
            self._hold_keys([self._key_for(keysym, remapped) for keysym in keysyms])

    def close(self) -> None:
        self._display.close()

    # -- internals -------------------------------------------------------------------------

    def _read_keymap(self) -> None:
        """The keymap and keyboard state now: they change when the user switches layouts."""
        info = self._display.display.info
        first, last = info.min_keycode, info.max_keycode
        mapping = self._display.get_keyboard_mapping(first, last - first + 1)
        self._width = len(mapping[0])
        # Keycodes with no symbols at all; keycode 8 is skipped (some clients ignore it).
        self._spare = [
            first + i for i, syms in enumerate(mapping) if not any(syms) and first + i > 8
        ]
        self._where: dict[int, list[tuple[int, int]]] = {}  # keysym -> [(keycode, column)]
        for offset, syms in enumerate(mapping):
            for column, keysym in enumerate(syms):
                if keysym:
                    self._where.setdefault(keysym, []).append((first + offset, column))
        group, locked = self._keyboard.read()
        # The core keymap shows groups 1 and 2 in columns 0-1 and 2-3 (XKB's core mapping).
        self._columns = (2 * group, 2 * group + 1) if group < 2 else ()
        self._caps_locked = bool(locked & LOCK_MASK)
        shift = self._XK.string_to_keysym("Shift_L")
        self._shift = min((code for code, _ in self._where.get(shift, [])), default=0)

    def _keysym(self, char: str) -> int:
        if char in SPECIAL_KEYSYMS:
            return self._XK.string_to_keysym(SPECIAL_KEYSYMS[char])
        code = ord(char)
        # Latin-1 keysyms equal their code points; the rest are 0x01000000 + code point.
        return code if 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xFF else 0x01000000 | code

    def _existing(self, keysym: int) -> tuple[int, bool] | None:
        """(keycode, needs shift) when the active group already types the keysym."""
        places = self._where.get(keysym, [])
        if keysym in self._modifiers and places:
            keycode, _ = min(places, key=lambda place: place[1])
            return keycode, False
        for keycode, column in places:
            if column in self._columns:
                return keycode, column == self._columns[1]
        return None

    @contextlib.contextmanager
    def _caps_lock_off(self) -> Iterator[None]:
        if not self._caps_locked:
            yield
            return
        self._keyboard.lock_modifiers(LOCK_MASK, 0)
        try:
            yield
        finally:
            self._display.sync()
            self._keyboard.lock_modifiers(LOCK_MASK, LOCK_MASK)
            self._display.sync()

    def _take_chunk(self, pending: list[int]) -> tuple[list[int], dict[int, tuple[int, int]]]:
        """The longest prefix of keysyms whose missing ones fit in the spare keycodes, and
        what each spare keycode gets: a letter's two cases (one keycode serves both, the
        upper with Shift), or the one keysym."""
        chunk: list[int] = []
        remapped: dict[int, tuple[int, int]] = {}  # spare keycode -> (level 1, level 2)
        where: dict[int, int] = {}  # keysym -> spare keycode
        for keysym in pending:
            if keysym not in where and self._existing(keysym) is None:
                if len(remapped) == len(self._spare):
                    break
                keycode = self._spare[len(remapped)]
                remapped[keycode] = _cases(keysym) or (keysym, keysym)
                where.update(dict.fromkeys(remapped[keycode], keycode))
            chunk.append(keysym)
        return chunk, remapped

    @contextlib.contextmanager
    def _mapped(self, remapped: dict[int, tuple[int, int]]) -> Iterator[None]:
        """Map the spare keycodes and let the app read them; restore them afterwards."""
        if remapped:
            for keycode, levels in remapped.items():
                # Every group gets the same levels: the key types the same in any group.
                row = (levels * self._width)[: self._width]
                self._display.change_keyboard_mapping(keycode, [row])
            self._display.sync()
            time.sleep(REMAP_SETTLE_SECONDS)
        try:
            yield
            self._display.sync()
        finally:
            if remapped:
                time.sleep(REMAP_SETTLE_SECONDS)
                for keycode in remapped:
                    self._display.change_keyboard_mapping(keycode, [(0,) * self._width])
                self._display.sync()

    def _key_for(self, keysym: int, remapped: dict[int, tuple[int, int]]) -> tuple[int, bool]:
        for keycode, (lower, upper) in remapped.items():
            if keysym in (lower, upper):
                return keycode, keysym == upper != lower
        found = self._existing(keysym)
        assert found is not None
        return found

    def _hold_keys(self, keys: list[tuple[int, bool]]) -> None:
        """Press each key in order (Shift first for one that needs it, unless the chord
        holds Shift already), then release them all in reverse."""
        from Xlib import X
        from Xlib.ext import xtest

        pressed: list[int] = []
        for keycode, shifted in keys:
            if shifted and self._shift not in pressed:
                xtest.fake_input(self._display, X.KeyPress, self._shift)
                pressed.append(self._shift)
            xtest.fake_input(self._display, X.KeyPress, keycode)
            pressed.append(keycode)
        for keycode in reversed(pressed):
            xtest.fake_input(self._display, X.KeyRelease, keycode)


def _cases(keysym: int) -> tuple[int, int] | None:
    """(lower, upper) keysyms of a letter that has both cases (Latin-1 or Unicode keysym)."""
    if keysym >= 0x01000000:
        char = chr(keysym & 0xFFFFFF)
    elif keysym <= 0xFF:
        char = chr(keysym)
    else:
        return None
    lower, upper = char.lower(), char.upper()
    if lower == upper or len(lower) != 1 or len(upper) != 1 or upper.lower() != lower:
        return None

    def keysym_of(letter: str) -> int:
        code = ord(letter)
        return code if 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xFF else 0x01000000 | code

    return keysym_of(lower), keysym_of(upper)
