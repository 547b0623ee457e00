"""The X keyboard's active layout group and locked modifiers, through the XKB extension.

A keycode types what the *active group* of the keymap holds for it: with ``us,ru`` and the
Russian group active, the key of ``e`` types ``у``. python-xlib has no XKB module; these are
the three requests needed, laid out as in XKBproto.h (xkbUseExtension, xkbGetState,
xkbLatchLockState).
"""

from __future__ import annotations

from typing import Any

from Xlib.protocol import rq

USE_CORE_KEYBOARD = 0x100  # XkbUseCoreKbd
LOCK_MASK = 1 << 1  # Caps Lock, when locked


class _UseExtension(rq.ReplyRequest):
    _request = rq.Struct(
        rq.Card8("opcode"), rq.Opcode(0), rq.RequestLength(),
        rq.Card16("wanted_major"), rq.Card16("wanted_minor"),
    )
    _reply = rq.Struct(
        rq.ReplyCode(), rq.Bool("supported"), rq.Card16("sequence_number"), rq.ReplyLength(),
        rq.Card16("server_major"), rq.Card16("server_minor"), rq.Pad(20),
    )


class _GetState(rq.ReplyRequest):
    _request = rq.Struct(
        rq.Card8("opcode"), rq.Opcode(4), rq.RequestLength(),
        rq.Card16("device_spec"), rq.Pad(2),
    )
    _reply = rq.Struct(
        rq.ReplyCode(), rq.Card8("device_id"), rq.Card16("sequence_number"), rq.ReplyLength(),
        rq.Card8("mods"), rq.Card8("base_mods"), rq.Card8("latched_mods"), rq.Card8("locked_mods"),
        rq.Card8("group"), rq.Card8("locked_group"), rq.Int16("base_group"),
        rq.Int16("latched_group"), rq.Card8("compat_state"), rq.Card8("grab_mods"),
        rq.Card8("compat_grab_mods"), rq.Card8("lookup_mods"), rq.Card8("compat_lookup_mods"),
        rq.Pad(1), rq.Card16("ptr_btn_state"), rq.Pad(6),
    )


class _LatchLockState(rq.Request):
    _request = rq.Struct(
        rq.Card8("opcode"), rq.Opcode(5), rq.RequestLength(),
        rq.Card16("device_spec"), rq.Card8("affect_mod_locks"), rq.Card8("mod_locks"),
        rq.Bool("lock_group"), rq.Card8("group_lock"), rq.Card8("affect_mod_latches"),
        rq.Card8("mod_latches"), rq.Pad(1), rq.Bool("latch_group"), rq.Int16("group_latch"),
    )


class KeyboardState:
    """XKB state of ``display``'s core keyboard; without XKB, group 0 and nothing locked."""

    def __init__(self, display: Any) -> None:
        self._display = display.display  # the protocol-level connection
        self._opcode: int | None = None
        extension = display.query_extension("XKEYBOARD")
        if extension is not None and extension.present:
            reply = _UseExtension(
                display=self._display, opcode=extension.major_opcode,
                wanted_major=1, wanted_minor=0,
            )
            if reply.supported:
                self._opcode = extension.major_opcode

    @property
    def available(self) -> bool:
        return self._opcode is not None

    def read(self) -> tuple[int, int]:
        """(the effective group, 0-3; the locked modifiers)."""
        if self._opcode is None:
            return 0, 0
        state = _GetState(display=self._display, opcode=self._opcode, device_spec=USE_CORE_KEYBOARD)
        return state.group, state.locked_mods

    def lock_modifiers(self, mask: int, locked: int) -> None:
        """Set the locks of the modifiers in ``mask`` to those in ``locked``."""
        if self._opcode is None:
            return
        _LatchLockState(
            display=self._display, opcode=self._opcode, device_spec=USE_CORE_KEYBOARD,
            affect_mod_locks=mask, mod_locks=locked, lock_group=False, group_lock=0,
            affect_mod_latches=0, mod_latches=0, latch_group=False, group_latch=0,
        )

    def lock_group(self, group: int) -> None:
        """Make ``group`` (0-3) the locked group, as a layout switch key does."""
        if self._opcode is None:
            raise RuntimeError("this X server has no XKB extension; it has one layout group")
        _LatchLockState(
            display=self._display, opcode=self._opcode, device_spec=USE_CORE_KEYBOARD,
            affect_mod_locks=0, mod_locks=0, lock_group=True, group_lock=group,
            affect_mod_latches=0, mod_latches=0, latch_group=False, group_latch=0,
        )
