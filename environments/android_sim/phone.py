"""The simulated phone: its state, the shell commands it answers, and the listening socket.

State (written to the JSON state file, atomically, after every command that changes it):
foreground app, toggles, text fields and the focused one, rotation, installed packages, the
IME, files created by ``touch``, every input event and every command the shell ran.

Faults are switched at run time through a JSON control file (``--control``, default
``STATE.control.json``) that the phone reads before each command:

    {"fail_screencap": 2}          the next 2 screencaps print an error and no image
    {"screencap_junk": 1}          the next PNG screencap has a stderr warning in front
    {"drop": true, "refuse_seconds": 3}
                                   close every connection now; refuse new ones for 3 s
    {"rotation": 1}                landscape (0 = portrait)
Each switch is consumed (removed from the file) when it takes effect.
"""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import struct
import threading
import time
from pathlib import Path
from typing import Any

from environments.android_sim import screens
from environments.android_sim.shell import quote, run_line
from environments.android_sim.transport import CommandResult, DeviceConnection

ADB_KEYBOARD = "com.android.adbkeyboard"
ADB_KEYBOARD_IME = "com.android.adbkeyboard/.AdbIME"
LATIN_IME = "com.android.inputmethod.latin/.LatinIME"
BASE_PACKAGES = [screens.LAUNCHER, "com.android.inputmethod.latin", *(p for _, p, _ in screens.APPS)]
KEYCODES = {"3": "HOME", "4": "BACK", "66": "ENTER", "67": "DEL", "61": "TAB", "187": "APP_SWITCH",
            "24": "VOLUME_UP", "25": "VOLUME_DOWN", "26": "POWER"}
NPE = b"java.lang.NullPointerException: Attempt to get length of null array\n"


class Phone:
    def __init__(self, state_path: Path, width: int = 1080, height: int = 2400,
                 adb_keyboard: bool = False, control_path: Path | None = None) -> None:
        self.state_path = Path(state_path)
        self.control_path = Path(control_path) if control_path else self.state_path.with_suffix(".control.json")
        self.natural = (width, height)
        self.lock = threading.RLock()
        packages = BASE_PACKAGES + ([ADB_KEYBOARD] if adb_keyboard else [])
        self.state: dict[str, Any] = {
            "foreground": screens.LAUNCHER, "toggles": {key: False for key, _ in screens.TOGGLES},
            "fields": {"note": ""}, "focused_field": None, "contacts_offset": 0, "selected_contact": None,
            "rotation": 0, "packages": packages, "ime": LATIN_IME, "enabled_imes": [LATIN_IME],
            "files": [], "events": [], "commands": [], "screencaps": 0,
        }
        self.connections: list[DeviceConnection] = []
        self.refuse_until = 0.0
        self._write()

    # -- geometry ----------------------------------------------------------------------------

    @property
    def size(self) -> tuple[int, int]:
        width, height = self.natural
        return (height, width) if self.state["rotation"] % 2 else (width, height)

    # -- the shell ---------------------------------------------------------------------------

    def run(self, line: str) -> CommandResult:
        with self.lock:
            self._apply_control()
            result = run_line(line, self._command)
            self._write()
            return result

    def _command(self, argv: list[str]) -> CommandResult:
        self.state["commands"].append(quote(argv))
        name, args = argv[0], argv[1:]
        handler = getattr(self, "_cmd_" + name.replace("-", "_"), None)
        if handler is None:
            return CommandResult(stderr=f"/system/bin/sh: {name}: not found\n".encode(), exit_code=127)
        return handler(args)

    @staticmethod
    def _out(text: str) -> CommandResult:
        return CommandResult(stdout=text.encode())

    def _cmd_echo(self, args: list[str]) -> CommandResult:
        return self._out(" ".join(args) + "\n")

    def _cmd_true(self, args: list[str]) -> CommandResult:
        return CommandResult()

    def _cmd_false(self, args: list[str]) -> CommandResult:
        return CommandResult(exit_code=1)

    def _cmd_id(self, args: list[str]) -> CommandResult:
        return self._out("uid=2000(shell) gid=2000(shell)\n")

    def _cmd_touch(self, args: list[str]) -> CommandResult:
        self.state["files"].extend(args)
        return CommandResult()

    def _cmd_getprop(self, args: list[str]) -> CommandResult:
        props = {"ro.product.model": "QvlSim Pixel", "ro.build.version.sdk": "34", "ro.product.name": "qvlsim"}
        return self._out((props.get(args[0], "") if args else "".join(f"[{k}]: [{v}]\n" for k, v in props.items())) + "\n")

    def _cmd_wm(self, args: list[str]) -> CommandResult:
        if args[:1] == ["size"]:
            return self._out("Physical size: %dx%d\n" % self.natural)
        if args[:1] == ["density"]:
            return self._out("Physical density: 420\n")
        return CommandResult(stderr=b"wm: unknown command\n", exit_code=1)

    def _cmd_dumpsys(self, args: list[str]) -> CommandResult:
        service = args[0] if args else ""
        width, height = self.natural
        if service == "display":
            return self._out(f"DisplayDeviceInfo{{\"Built-in Screen\": {width} x {height}, "
                             f"orientation={self.state['rotation']}}}\n  mCurrentOrientation={self.state['rotation']}\n")
        app = self.state["foreground"]
        activity = f"{app}/{app}.MainActivity"
        if service == "window":
            return self._out(f"  mCurrentFocus=Window{{4f2e1a u0 {activity}}}\n  mFocusedApp=ActivityRecord{{1 u0 {activity} t1}}\n")
        if service == "activity":
            return self._out(f"    mResumedActivity: ActivityRecord{{1 u0 {activity} t1}}\n")
        return self._out("")

    def _cmd_screencap(self, args: list[str]) -> CommandResult:
        if self._take_fault("fail_screencap"):
            return CommandResult(stderr=b"Error: Failed to take screenshot\n", exit_code=1)
        self.state["screencaps"] += 1
        width, height = self.size
        image = screens.render(self.state, width, height)
        if "-p" in args:
            buffer = io.BytesIO()
            image.save(buffer, "PNG", compress_level=1)
            junk = b"[Warning] Multiple displays were found, but no display id was specified! Defaulting to the first display found.\n"
            return CommandResult(stdout=buffer.getvalue(), stderr=junk if self._take_fault("screencap_junk") else b"")
        header = struct.pack("<IIII", width, height, 1, 1)  # RGBA_8888, sRGB
        return CommandResult(stdout=header + image.convert("RGBA").tobytes())

    def _cmd_input(self, args: list[str]) -> CommandResult:
        if not args:
            return CommandResult(stderr=b"usage: input ...\n", exit_code=1)
        command, rest = args[0], args[1:]
        if command == "tap" and len(rest) == 2:
            self._tap(float(rest[0]), float(rest[1]))
        elif command == "swipe" and len(rest) >= 4:
            x1, y1, x2, y2 = (float(v) for v in rest[:4])
            duration = int(rest[4]) if len(rest) > 4 else 300
            self._swipe(x1, y1, x2, y2, duration)
        elif command == "text" and rest:
            text = rest[0]
            if not text.isascii():
                return CommandResult(stderr=NPE, exit_code=255)
            self._type(text.replace("%s", " "))
        elif command == "keyevent" and rest:
            for code in rest:
                self._key(KEYCODES.get(code, code.removeprefix("KEYCODE_")))
        else:
            return CommandResult(stderr=f"input: unknown command {command}\n".encode(), exit_code=1)
        return CommandResult()

    def _cmd_monkey(self, args: list[str]) -> CommandResult:
        package = args[args.index("-p") + 1] if "-p" in args else ""
        if package not in self.state["packages"] or package in (ADB_KEYBOARD, "com.android.inputmethod.latin"):
            return self._out("** No activities found to run, monkey aborted.\n")
        self._open(package)
        return self._out("Events injected: 1\n## Network stats: elapsed time=12ms\n")

    def _cmd_am(self, args: list[str]) -> CommandResult:
        if args[:1] == ["start"] and "-n" in args:
            package = args[args.index("-n") + 1].split("/")[0]
            if package not in self.state["packages"]:
                return CommandResult(stdout=b"Error: Activity not started, unable to resolve Intent\n", exit_code=1)
            self._open(package)
            return self._out(f"Starting: Intent {{ cmp={args[args.index('-n') + 1]} }}\n")
        if args[:1] == ["broadcast"] and "-a" in args:
            return self._broadcast(args)
        return CommandResult(stderr=b"am: unknown command\n", exit_code=1)

    def _cmd_pm(self, args: list[str]) -> CommandResult:
        if args[:2] == ["list", "packages"]:
            wanted = [a for a in args[2:] if not a.startswith("-")]
            packages = [p for p in self.state["packages"] if not wanted or wanted[0] in p]
            return self._out("".join(f"package:{p}\n" for p in packages))
        return CommandResult(stderr=b"pm: unknown command\n", exit_code=1)

    def _cmd_ime(self, args: list[str]) -> CommandResult:
        available = [LATIN_IME] + ([ADB_KEYBOARD_IME] if ADB_KEYBOARD in self.state["packages"] else [])
        if args[:1] == ["list"]:
            return self._out("".join(f"{ime}\n" for ime in available))
        if args[:1] in (["enable"], ["set"]) and len(args) == 2:
            if args[1] not in available:
                return CommandResult(stderr=f"Unknown input method {args[1]}\n".encode(), exit_code=1)
            if args[0] == "enable":
                self.state["enabled_imes"].append(args[1])
                return self._out(f"Input method {args[1]}: now enabled\n")
            if args[1] not in self.state["enabled_imes"]:
                return CommandResult(stderr=f"Input method {args[1]} is not enabled\n".encode(), exit_code=1)
            self.state["ime"] = args[1]
            return self._out(f"Input method {args[1]} selected for user #0\n")
        return CommandResult(stderr=b"ime: unknown command\n", exit_code=1)

    def _cmd_settings(self, args: list[str]) -> CommandResult:
        if args == ["get", "secure", "default_input_method"]:
            return self._out(self.state["ime"] + "\n")
        if args[:2] == ["get", "global"] and args[2:] == ["airplane_mode_on"]:
            return self._out("1\n" if self.state["toggles"]["airplane_mode"] else "0\n")
        return self._out("null\n")

    # -- what the user would see happen ------------------------------------------------------

    def _event(self, **event: Any) -> None:
        self.state["events"].append({"t": round(time.time(), 3), **event})

    def _open(self, package: str) -> None:
        self.state["foreground"] = package
        self.state["focused_field"] = None
        self._event(kind="open", package=package)

    def _tap(self, x: float, y: float) -> None:
        width, height = self.size
        widget = screens.hit(self.state, width, height, x, y)
        self._event(kind="tap", x=x, y=y, widget=widget.name if widget else None)
        if widget is None:
            return
        kind, _, name = widget.name.partition(":")
        if kind == "app":
            self._open(name)
        elif kind == "toggle":
            self.state["toggles"][name] = not self.state["toggles"][name]
        elif kind == "field":
            self.state["focused_field"] = name
        elif kind == "row":
            self.state["selected_contact"] = screens.CONTACTS[int(name)]

    def _swipe(self, x1: float, y1: float, x2: float, y2: float, duration: int) -> None:
        if abs(x2 - x1) < 10 and abs(y2 - y1) < 10 and duration >= 500:
            width, height = self.size
            widget = screens.hit(self.state, width, height, x1, y1)
            self._event(kind="long_press", x=x1, y=y1, ms=duration, widget=widget.name if widget else None)
            return
        self._event(kind="swipe", x1=x1, y1=y1, x2=x2, y2=y2, ms=duration)
        if self.state["foreground"] == "com.google.android.contacts" and abs(y2 - y1) > 100:
            step = 5 if y2 < y1 else -5  # finger up = content moves up = later rows
            self.state["contacts_offset"] = max(0, min(len(screens.CONTACTS) - 5, self.state["contacts_offset"] + step))

    def _type(self, text: str) -> None:
        self._event(kind="text", text=text)
        field = self.state["focused_field"]
        if field is not None:
            self.state["fields"][field] += text

    def _key(self, name: str) -> None:
        self._event(kind="key", key=name)
        field = self.state["focused_field"]
        if name == "HOME":
            self._open(screens.LAUNCHER)
        elif name == "BACK":
            if field is not None:
                self.state["focused_field"] = None
            elif self.state["foreground"] != screens.LAUNCHER:
                self._open(screens.LAUNCHER)
        elif field is not None and name in ("ENTER", "TAB"):
            self.state["fields"][field] += "\n" if name == "ENTER" else "\t"
        elif field is not None and name == "DEL":
            self.state["fields"][field] = self.state["fields"][field][:-1]

    def _broadcast(self, args: list[str]) -> CommandResult:
        action = args[args.index("-a") + 1]
        extras = {args[i + 1]: args[i + 2] for i, a in enumerate(args[:-2]) if a == "--es"}
        ime_ready = ADB_KEYBOARD in self.state["packages"] and self.state["ime"] == ADB_KEYBOARD_IME
        self._event(kind="broadcast", action=action, delivered=ime_ready)
        if ime_ready and action == "ADB_INPUT_B64" and "msg" in extras:
            self._type(base64.b64decode(extras["msg"]).decode("utf-8"))
        elif ime_ready and action == "ADB_INPUT_TEXT" and "msg" in extras:
            self._type(extras["msg"])
        elif ime_ready and action == "ADB_CLEAR_TEXT" and self.state["focused_field"]:
            self.state["fields"][self.state["focused_field"]] = ""
        # As on Android: the broadcast "completes" whether or not anyone received it.
        return self._out(f"Broadcasting: Intent {{ act={action} flg=0x400000 }}\nBroadcast completed: result=0\n")

    # -- faults and state file -----------------------------------------------------------------

    def _control(self) -> dict[str, Any]:
        try:
            return json.loads(self.control_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def _apply_control(self) -> None:
        control = self._control()
        if "rotation" in control:
            self.state["rotation"] = int(control.pop("rotation")) % 4
            self._event(kind="rotate", rotation=self.state["rotation"])
            self._save_control(control)

    def _take_fault(self, name: str) -> bool:
        control = self._control()
        if control.get(name, 0) > 0:
            control[name] -= 1
            self._save_control(control)
            return True
        return False

    def _save_control(self, control: dict[str, Any]) -> None:
        _write_json(self.control_path, control)

    def watch_for_drops(self) -> None:
        """Poll the control file for {"drop": true}: close every connection at once."""
        while True:
            control = self._control()
            if control.pop("drop", False):
                self.refuse_until = time.monotonic() + float(control.pop("refuse_seconds", 0))
                self._save_control(control)
                with self.lock:
                    self._event(kind="dropped")
                    self._write()
                for connection in list(self.connections):
                    connection.close()
            time.sleep(0.05)

    def _write(self) -> None:
        _write_json(self.state_path, {**self.state, "screen": list(self.size)})

    # -- the socket ----------------------------------------------------------------------------

    def serve(self, port: int, banner: str) -> None:
        listener = socket.create_server(("127.0.0.1", port), reuse_port=False)
        threading.Thread(target=self.watch_for_drops, daemon=True).start()
        while True:
            sock, _ = listener.accept()
            if time.monotonic() < self.refuse_until:
                sock.close()
                continue
            connection = DeviceConnection(sock, banner, self.run)
            self.connections.append(connection)
            threading.Thread(target=self._serve_one, args=(connection,), daemon=True).start()

    def _serve_one(self, connection: DeviceConnection) -> None:
        connection.serve()
        if connection in self.connections:
            self.connections.remove(connection)


def _write_json(path: Path, value: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.write_text(json.dumps(value, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(temporary, path)
