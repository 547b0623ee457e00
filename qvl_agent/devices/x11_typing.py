"""Type any text on X11 exactly, through XTEST.

pyautogui drops characters its US-layout table lacks and types ``<`` as ``>``. xdotool
types anything, but it remaps a spare keycode per character and restores it right after
the key event; an app that refreshes its keymap on the MappingNotify *after* the restore
reads the key as nothing, so characters go missing (seen here with Tk: "héllo" -> "hllo").

This typer gives each distinct character that the keymap lacks its own spare keycode,
keeps those mappings while the text is typed, and restores them only after a pause long
enough for the app to have read them. Texts with more such characters than there are spare
keycodes are typed in chunks, with the same pause between chunks.
"""

from __future__ import annotations

import time
from typing import Any

# Time for the app to process the MappingNotify events before we remap again or restore.
REMAP_SETTLE_SECONDS = 0.15
SPECIAL_KEYSYMS = {"\n": "Return", "\t": "Tab"}


class X11Typer:
    def __init__(self, display_name: str) -> None:
        from Xlib import XK
        from Xlib.display import Display

        self._XK = XK
        self._display: Any = Display(display_name)
        info = self._display.display.info
        first, last = info.min_keycode, info.max_keycode
        mapping = self._display.get_keyboard_mapping(first, last - first + 1)
        # Keycodes with no symbols at all; keycode 8 is skipped (some clients ignore it).
        self._spare = [first + i for i, syms in enumerate(mapping) if not any(syms) and first + i > 8]
        self._width = len(mapping[0])
        shift = self._display.keysym_to_keycode(XK.string_to_keysym("Shift_L"))
        if not self._spare or not shift:
            raise RuntimeError("this X server's keymap has no spare keycodes or no Shift key")
        self._shift = shift

    def type(self, text: str) -> None:
        pending = list(text)
        while pending:
            chunk, remapped = self._take_chunk(pending)
            if remapped:
                self._map(remapped)
                self._display.sync()
                time.sleep(REMAP_SETTLE_SECONDS)
            for char in chunk:
                self._press(*self._key_for(char, remapped))
            self._display.sync()
            if remapped:
                time.sleep(REMAP_SETTLE_SECONDS)
                self._clear(list(remapped.values()))
                self._display.sync()

    def close(self) -> None:
        self._display.close()

    # -- internals -------------------------------------------------------------------------

    def _keysym(self, char: str) -> int:
        if char in SPECIAL_KEYSYMS:
            return self._XK.string_to_keysym(SPECIAL_KEYSYMS[char])
        code = ord(char)
        # Latin-1 keysyms equal their code points; the rest are 0x01000000 + code point.
        return code if 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xFF else 0x01000000 | code

    def _existing(self, keysym: int) -> tuple[int, bool] | None:
        """(keycode, needs shift) when the keymap already has the keysym on level 0 or 1."""
        for keycode, index in self._display.keysym_to_keycodes(keysym):
            if index in (0, 1):
                return keycode, index == 1
        return None

    def _take_chunk(self, pending: list[str]) -> tuple[list[str], dict[int, int]]:
        """Pop the longest prefix whose missing characters fit in the spare keycodes."""
        chunk: list[str] = []
        remapped: dict[int, int] = {}  # keysym -> spare keycode
        while pending:
            keysym = self._keysym(pending[0])
            if keysym not in remapped and self._existing(keysym) is None:
                if len(remapped) == len(self._spare):
                    break
                remapped[keysym] = self._spare[len(remapped)]
            chunk.append(pending.pop(0))
        return chunk, remapped

    def _map(self, keycodes_by_keysym: dict[int, int]) -> None:
        for keysym, keycode in keycodes_by_keysym.items():
            # Every level gets the keysym, so a held Shift does not change the character.
            self._display.change_keyboard_mapping(keycode, [(keysym,) * self._width])

    def _clear(self, keycodes: list[int]) -> None:
        for keycode in keycodes:
            self._display.change_keyboard_mapping(keycode, [(0,) * self._width])

    def _key_for(self, char: str, remapped: dict[int, int]) -> tuple[int, bool]:
        keysym = self._keysym(char)
        if keysym in remapped:
            return remapped[keysym], False
        found = self._existing(keysym)
        assert found is not None
        return found

    def _press(self, keycode: int, shifted: bool) -> None:
        from Xlib import X
        from Xlib.ext import xtest

        if shifted:
            xtest.fake_input(self._display, X.KeyPress, self._shift)
        xtest.fake_input(self._display, X.KeyPress, keycode)
        xtest.fake_input(self._display, X.KeyRelease, keycode)
        if shifted:
            xtest.fake_input(self._display, X.KeyRelease, self._shift)
