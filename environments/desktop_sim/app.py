"""The sandbox app: a few large, plainly labelled widgets whose state is mirrored to JSON.

State file layout (written atomically: temp file + ``os.replace``)::

    {
      "ready": true,                      # the window is mapped and laid out
      "seq": 12,                          # bumps on every write
      "pid": 1234,
      "screen": [1920, 1080],             # the X screen size
      "clicks": {"settings": 0, "submit": 0, "ok": 0},
      "entry": "",                        # the Name field
      "text": "",                         # the Notes box (may hold newlines)
      "dark_mode": false,
      "settings_open": false,
      "list_top": 0,                      # index of the first visible list item
      "list_selected": [],                # labels of the selected list items
      "pad": {"left": 0, "right": 0, "middle": 0, "double": 0,
              "block": [x, y],            # centre of the draggable block, screen pixels
              "last_drag": {"from": [x, y], "to": [x, y]} | null},
      "widgets": {"submit": {"x": .., "y": .., "w": .., "h": ..}, ...}
    }

Widget boxes are absolute screen pixels (``winfo_rootx/rooty/width/height``); the settings
dialog's widgets (``dark_mode``, ``close_settings``) are listed only while it is open.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tkinter as tk
from pathlib import Path
from typing import Any

FONT = ("DejaVu Sans", -20)  # negative: pixels, so the size does not depend on the X dpi
TITLE_FONT = ("DejaVu Sans", -26, "bold")
HEADER_BG = "#1f6feb"  # fixed in both themes: tests look for it in screenshots
THEMES = {
    False: {"bg": "#f2f2f2", "fg": "#1a1a1a", "field": "#ffffff"},
    True: {"bg": "#1e1e1e", "fg": "#e8e8e8", "field": "#2d2d2d"},
}
LIST_ITEMS = [f"Item {n}" for n in range(1, 61)]
BLOCK = 50  # side of the draggable block on the pad, pixels


def read_state(path: str | Path) -> dict[str, Any]:
    """The app's last written state (the file is replaced atomically, never half-written)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


class SandboxApp:
    def __init__(self, root: tk.Tk, state_path: Path, geometry: str | None = None) -> None:
        self.root = root
        self.state_path = state_path
        self.clicks = {"settings": 0, "submit": 0, "ok": 0}
        self.pad = {"left": 0, "right": 0, "middle": 0, "double": 0, "last_drag": None}
        self.ready = False
        self.seq = 0
        self._write_pending = False
        self._drag_from: tuple[int, int] | None = None
        self._drag_last: tuple[int, int] | None = None
        self.dialog: tk.Toplevel | None = None
        self.dark_mode = tk.BooleanVar(master=root, value=False)
        self.dark_mode.trace_add("write", lambda *_: self._on_dark_mode())

        root.title("Sandbox")
        root.geometry(geometry or f"{root.winfo_screenwidth()}x{root.winfo_screenheight()}+0+0")
        root.option_add("*Font", FONT)
        self._build()
        self._apply_theme()
        root.bind("<Configure>", lambda _event: self._schedule_write())
        root.after(20, self._wait_until_mapped)

    # -- layout ------------------------------------------------------------------------

    def _build(self) -> None:
        root = self.root
        header = tk.Frame(root, bg=HEADER_BG, height=64)
        header.pack(side="top", fill="x")
        header.pack_propagate(False)
        tk.Label(header, text="Sandbox", font=TITLE_FONT, bg=HEADER_BG, fg="white").pack(
            side="left", padx=24
        )
        self.status = tk.Label(header, text="", bg=HEADER_BG, fg="white")
        self.status.pack(side="right", padx=24)

        self.body = body = tk.Frame(root)
        body.pack(side="top", fill="both", expand=True, padx=32, pady=24)
        left = tk.Frame(body)
        left.grid(row=0, column=0, sticky="nw", padx=(0, 48))
        right = tk.Frame(body)
        right.grid(row=0, column=1, sticky="nw")

        buttons = tk.Frame(left)
        buttons.pack(anchor="w", pady=(0, 24))
        self.buttons = {}
        for name, label, command in (
            ("settings", "Settings", self._open_settings),
            ("submit", "Submit", None),
            ("ok", "OK", None),
        ):
            button = tk.Button(
                buttons, text=label, width=8, padx=16, pady=8,
                command=lambda n=name, c=command: self._click(n, c),
            )
            button.pack(side="left", padx=(0, 16))
            self.buttons[name] = button

        self.name_label = tk.Label(left, text="Name")
        self.name_label.pack(anchor="w")
        self.entry_var = tk.StringVar(master=root)
        self.entry_var.trace_add("write", lambda *_: self._schedule_write())
        self.entry = tk.Entry(left, textvariable=self.entry_var, width=32)
        self.entry.pack(anchor="w", ipady=8, pady=(4, 24))
        # Tk's Ctrl+A moves to the line start (emacs style); users expect select-all.
        self.entry.bind("<Control-a>", lambda _e: (self.entry.select_range(0, "end"), "break")[1])

        self.notes_label = tk.Label(left, text="Notes")
        self.notes_label.pack(anchor="w")
        self.text = tk.Text(left, width=36, height=6, undo=False)
        self.text.pack(anchor="w", pady=(4, 0))
        self.text.bind("<<Modified>>", self._on_text_modified)
        self.text.bind("<Control-a>", lambda _e: (self.text.tag_add("sel", "1.0", "end"), "break")[1])

        self.list_label = tk.Label(right, text="Items")
        self.list_label.pack(anchor="w")
        list_frame = tk.Frame(right)
        list_frame.pack(anchor="w", pady=(4, 24))
        self.listbox = tk.Listbox(list_frame, width=16, height=8, exportselection=False)
        scrollbar = tk.Scrollbar(list_frame, orient="vertical", command=self.listbox.yview)
        self.listbox.configure(yscrollcommand=lambda *a: (scrollbar.set(*a), self._schedule_write()))
        self.listbox.insert("end", *LIST_ITEMS)
        self.listbox.pack(side="left")
        scrollbar.pack(side="left", fill="y")
        self.listbox.bind("<<ListboxSelect>>", lambda _event: self._schedule_write())

        self.pad_label = tk.Label(right, text="Pad: click, double-click, right-click or drag")
        self.pad_label.pack(anchor="w")
        self.canvas = tk.Canvas(right, width=420, height=200, highlightthickness=1)
        self.canvas.pack(anchor="w", pady=(4, 0))
        self.block = self.canvas.create_rectangle(
            20, 20, 20 + BLOCK, 20 + BLOCK, fill="#e3a008", outline=""
        )
        canvas = self.canvas
        canvas.bind("<ButtonPress-1>", self._pad_press)
        canvas.bind("<B1-Motion>", self._pad_motion)
        canvas.bind("<ButtonRelease-1>", self._pad_release)
        canvas.bind("<Double-Button-1>", lambda _e: self._pad_count("double"))
        canvas.bind("<Button-2>", lambda _e: self._pad_count("middle"))
        canvas.bind("<Button-3>", lambda _e: self._pad_count("right"))
        self._update_status()

    def _open_settings(self) -> None:
        if self.dialog is not None:
            return
        dialog = self.dialog = tk.Toplevel(self.root)
        dialog.title("Settings")
        dialog.transient(self.root)
        # No window manager under Xvfb: the dialog appears exactly where it asks to be.
        x = self.root.winfo_rootx() + self.root.winfo_width() // 2 - 200
        y = self.root.winfo_rooty() + 140
        dialog.geometry(f"400x220+{x}+{y}")
        frame = tk.Frame(dialog, bd=2, relief="ridge")
        frame.pack(fill="both", expand=True)
        self.dialog_title = tk.Label(frame, text="Settings", font=TITLE_FONT)
        self.dialog_title.pack(pady=(16, 8))
        self.dark_check = tk.Checkbutton(frame, text="Dark mode", variable=self.dark_mode, padx=12, pady=8)
        self.dark_check.pack(pady=8)
        self.close_button = tk.Button(frame, text="Close", width=8, padx=16, pady=8, command=self._close_settings)
        self.close_button.pack(pady=8)
        dialog.protocol("WM_DELETE_WINDOW", self._close_settings)
        dialog.bind("<Map>", lambda _e: self._schedule_write())
        dialog.bind("<Configure>", lambda _e: self._schedule_write())
        self._apply_theme()
        self._schedule_write()

    def _close_settings(self) -> None:
        if self.dialog is not None:
            self.dialog.destroy()
            self.dialog = None
            self._schedule_write()

    # -- events ------------------------------------------------------------------------

    def _click(self, name: str, then: Any) -> None:
        self.clicks[name] += 1
        self._update_status()
        if then is not None:
            then()
        self._schedule_write()

    def _on_text_modified(self, _event: tk.Event) -> None:
        if self.text.edit_modified():
            self.text.edit_modified(False)  # re-arm: <<Modified>> fires only on the flag's change
            self._schedule_write()

    def _on_dark_mode(self) -> None:
        self._apply_theme()
        self._schedule_write()

    def _pad_count(self, kind: str) -> None:
        self.pad[kind] += 1
        self._schedule_write()

    def _pad_press(self, event: tk.Event) -> None:
        self.pad["left"] += 1
        self._drag_from = self._drag_last = (event.x_root, event.y_root)
        self._schedule_write()

    def _pad_motion(self, event: tk.Event) -> None:
        if self._drag_last is None:
            return
        dx, dy = event.x_root - self._drag_last[0], event.y_root - self._drag_last[1]
        self.canvas.move(self.block, dx, dy)
        self._drag_last = (event.x_root, event.y_root)

    def _pad_release(self, event: tk.Event) -> None:
        if self._drag_from is None:
            return
        self._pad_motion(event)
        to = (event.x_root, event.y_root)
        if to != self._drag_from:
            self.pad["last_drag"] = {"from": list(self._drag_from), "to": list(to)}
        self._drag_from = self._drag_last = None
        self._schedule_write()

    # -- appearance --------------------------------------------------------------------

    def _update_status(self) -> None:
        self.status.configure(text=f"Submitted {self.clicks['submit']} times")

    def _apply_theme(self) -> None:
        theme = THEMES[bool(self.dark_mode.get())]
        windows = [self.body]
        if self.dialog is not None:
            windows.append(self.dialog)
        self.root.configure(bg=theme["bg"])
        for top in windows:
            for widget in _descendants(top):
                _style(widget, theme)

    # -- state file --------------------------------------------------------------------

    def _wait_until_mapped(self) -> None:
        if not self.root.winfo_ismapped():
            self.root.after(20, self._wait_until_mapped)
            return
        self.root.update_idletasks()
        self.ready = True
        self._write_state()

    def _schedule_write(self) -> None:
        # Many changes arrive in one burst (a keystroke, a resize): write once when idle.
        if self.ready and not self._write_pending:
            self._write_pending = True
            self.root.after_idle(self._write_state)

    def _write_state(self) -> None:
        self._write_pending = False
        self.seq += 1
        state = {
            "ready": self.ready,
            "seq": self.seq,
            "pid": os.getpid(),
            "screen": [self.root.winfo_screenwidth(), self.root.winfo_screenheight()],
            "clicks": dict(self.clicks),
            "entry": self.entry_var.get(),
            "text": self.text.get("1.0", "end-1c"),
            "dark_mode": bool(self.dark_mode.get()),
            "settings_open": self.dialog is not None,
            "list_top": self.listbox.nearest(0),
            "list_selected": [self.listbox.get(i) for i in self.listbox.curselection()],
            "pad": {**self.pad, "block": self._block_centre()},
            "widgets": self._widget_boxes(),
        }
        temp = self.state_path.with_name(f".{self.state_path.name}.{os.getpid()}.tmp")
        temp.write_text(json.dumps(state, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(temp, self.state_path)

    def _block_centre(self) -> list[int]:
        x1, y1, x2, y2 = self.canvas.coords(self.block)
        return [
            self.canvas.winfo_rootx() + round((x1 + x2) / 2),
            self.canvas.winfo_rooty() + round((y1 + y2) / 2),
        ]

    def _widget_boxes(self) -> dict[str, dict[str, int]]:
        widgets: dict[str, tk.Misc] = {
            "window": self.root,
            "settings": self.buttons["settings"],
            "submit": self.buttons["submit"],
            "ok": self.buttons["ok"],
            "entry": self.entry,
            "text": self.text,
            "list": self.listbox,
            "pad": self.canvas,
            "status": self.status,
        }
        if self.dialog is not None and self.dialog.winfo_ismapped():
            widgets.update(
                settings_dialog=self.dialog,
                dark_mode=self.dark_check,
                close_settings=self.close_button,
            )
        return {name: _box(widget) for name, widget in widgets.items()}


def _box(widget: tk.Misc) -> dict[str, int]:
    return {
        "x": widget.winfo_rootx(),
        "y": widget.winfo_rooty(),
        "w": widget.winfo_width(),
        "h": widget.winfo_height(),
    }


def _descendants(widget: tk.Misc) -> list[tk.Misc]:
    found = [widget]
    for child in widget.winfo_children():
        found.extend(_descendants(child))
    return found


def _style(widget: tk.Misc, theme: dict[str, str]) -> None:
    field = isinstance(widget, (tk.Entry, tk.Text, tk.Listbox, tk.Canvas))
    options = {"bg": theme["field"] if field else theme["bg"]}
    if not isinstance(widget, (tk.Frame, tk.Canvas, tk.Toplevel, tk.Scrollbar)):
        options["fg"] = theme["fg"]
    if isinstance(widget, (tk.Entry, tk.Text)):
        options["insertbackground"] = theme["fg"]
    if isinstance(widget, (tk.Button, tk.Checkbutton)):
        options["activebackground"] = theme["bg"]
        options["activeforeground"] = theme["fg"]
    if isinstance(widget, tk.Checkbutton):
        options["selectcolor"] = theme["field"]
    widget.configure(**options)


def _geometry(value: str) -> str:
    if not re.fullmatch(r"\d+x\d+[+-]\d+[+-]\d+", value):
        raise argparse.ArgumentTypeError(f"expected WxH+X+Y (e.g. 1280x800+0+0), got {value!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m environments.desktop_sim", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--state", required=True, type=Path, help="JSON file the app keeps its state in")
    parser.add_argument("--geometry", type=_geometry, help="WxH+X+Y; default: the whole screen")
    args = parser.parse_args(argv)
    try:
        root = tk.Tk()
    except tk.TclError as error:
        parser.exit(2, f"cannot open a window ({error}); start Xvfb or run in a desktop session\n")
    SandboxApp(root, args.state.resolve(), args.geometry)
    root.mainloop()
    return 0
