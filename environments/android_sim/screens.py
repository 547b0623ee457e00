"""What the simulated phone shows, and what is where: one layout drives drawing and taps.

``layout(state, width, height)`` lists the widgets of the current screen with their boxes in
the current orientation's pixels; ``render`` draws exactly those boxes and ``hit`` finds the
widget under a tap, so tapping where an icon is drawn always opens that app.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

APPS = [  # label, package, colour
    ("Settings", "com.android.settings", (96, 125, 139)),
    ("Notes", "com.example.notes", (255, 179, 0)),
    ("Contacts", "com.google.android.contacts", (30, 136, 229)),
    ("Clock", "com.google.android.deskclock", (67, 160, 71)),
]
LAUNCHER = "com.google.android.apps.nexuslauncher"
TOGGLES = [("airplane_mode", "Airplane mode"), ("wifi", "Wi-Fi"), ("bluetooth", "Bluetooth")]
CONTACTS = [f"Contact {n:02d}" for n in range(1, 41)]
FONT_FILES = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
              "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"]
CJK_FONT = "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"


@dataclass(frozen=True)
class Widget:
    name: str  # e.g. "app:com.android.settings", "toggle:wifi", "field:note", "row:3"
    box: tuple[int, int, int, int]  # x1, y1, x2, y2
    label: str = ""

    def contains(self, x: float, y: float) -> bool:
        x1, y1, x2, y2 = self.box
        return x1 <= x < x2 and y1 <= y < y2

    @property
    def centre(self) -> tuple[int, int]:
        x1, y1, x2, y2 = self.box
        return (x1 + x2) // 2, (y1 + y2) // 2


def layout(state: dict[str, Any], width: int, height: int) -> list[Widget]:
    unit = min(width, height) / 1080  # everything scales with the short side
    top = round(110 * unit)  # below the status bar
    app = state["foreground"]
    if app == LAUNCHER:
        size, gap = round(200 * unit), round(60 * unit)
        columns = max(1, (width - gap) // (size + gap))
        widgets = []
        for index, (label, package, _) in enumerate(APPS):
            row, column = divmod(index, columns)
            x = gap + column * (size + gap)
            y = top + gap + row * (size + round(80 * unit) + gap)
            widgets.append(Widget(f"app:{package}", (x, y, x + size, y + size), label))
        return widgets
    if app == "com.android.settings":
        row = round(150 * unit)
        return [Widget(f"toggle:{key}", (0, top + round(120 * unit) + i * row, width, top + round(120 * unit) + (i + 1) * row), label)
                for i, (key, label) in enumerate(TOGGLES)]
    if app == "com.example.notes":
        margin = round(40 * unit)
        return [Widget("field:note", (margin, top + round(140 * unit), width - margin, top + round(460 * unit)), "Note")]
    if app == "com.google.android.contacts":
        row = round(140 * unit)
        first = state["contacts_offset"]
        visible = (height - top - round(120 * unit)) // row
        return [Widget(f"row:{first + i}", (0, top + round(120 * unit) + i * row, width, top + round(120 * unit) + (i + 1) * row),
                       CONTACTS[first + i]) for i in range(min(visible, len(CONTACTS) - first))]
    return []


def hit(state: dict[str, Any], width: int, height: int, x: float, y: float) -> Widget | None:
    for widget in layout(state, width, height):
        if widget.contains(x, y):
            return widget
    return None


@cache
def _font(size: int, cjk: bool = False) -> Any:
    for path in ([CJK_FONT] if cjk else FONT_FILES):
        if Path(path).is_file():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


def _text(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, size: int, fill) -> None:
    font = _font(size, cjk=not text.isascii())
    draw.text(xy, text, font=font, fill=fill)


def render(state: dict[str, Any], width: int, height: int) -> Image.Image:
    unit = min(width, height) / 1080
    app = state["foreground"]
    image = Image.new("RGB", (width, height), (250, 250, 250) if app != LAUNCHER else (32, 48, 80))
    draw = ImageDraw.Draw(image)
    # Status bar: time, and the plane when airplane mode is on.
    draw.rectangle((0, 0, width, round(110 * unit)), fill=(20, 20, 20))
    _text(draw, (round(40 * unit), round(30 * unit)), "12:30", round(48 * unit), (255, 255, 255))
    if state["toggles"]["airplane_mode"]:
        _text(draw, (width - round(320 * unit), round(30 * unit)), "✈ Airplane", round(44 * unit), (255, 255, 255))
    title = {"com.android.settings": "Settings", "com.example.notes": "Notes",
             "com.google.android.contacts": "Contacts", "com.google.android.deskclock": "Clock"}.get(app)
    if title:
        _text(draw, (round(40 * unit), round(140 * unit)), title, round(72 * unit), (30, 30, 30))
    if app == "com.google.android.deskclock":
        _text(draw, (round(200 * unit), round(500 * unit)), "12:30", round(200 * unit), (30, 30, 30))
    for widget in layout(state, width, height):
        x1, y1, x2, y2 = widget.box
        kind = widget.name.split(":")[0]
        if kind == "app":
            colour = next(c for _, p, c in APPS if f"app:{p}" == widget.name)
            draw.rounded_rectangle(widget.box, radius=round(40 * unit), fill=colour)
            _text(draw, (x1, y2 + round(15 * unit)), widget.label, round(44 * unit), (255, 255, 255))
        elif kind == "toggle":
            on = state["toggles"][widget.name.split(":")[1]]
            draw.line((x1, y2 - 1, x2, y2 - 1), fill=(220, 220, 220), width=2)
            _text(draw, (round(40 * unit), y1 + round(45 * unit)), widget.label, round(52 * unit), (30, 30, 30))
            track = (x2 - round(200 * unit), y1 + round(45 * unit), x2 - round(60 * unit), y1 + round(105 * unit))
            draw.rounded_rectangle(track, radius=round(30 * unit), fill=(26, 115, 232) if on else (180, 180, 180))
            knob_x = track[2] - round(60 * unit) if on else track[0]
            draw.ellipse((knob_x, track[1], knob_x + round(60 * unit), track[3]), fill=(255, 255, 255))
        elif kind == "field":
            focused = state["focused_field"] == "note"
            draw.rectangle(widget.box, outline=(26, 115, 232) if focused else (150, 150, 150), width=4, fill=(255, 255, 255))
            text = state["fields"]["note"] or ("" if focused else "Tap to write a note")
            colour = (20, 20, 20) if state["fields"]["note"] else (150, 150, 150)
            for line_number, line in enumerate(text.split("\n")[:5]):
                _text(draw, (x1 + round(20 * unit), y1 + round(20 * unit) + line_number * round(56 * unit)), line, round(44 * unit), colour)
        elif kind == "row":
            draw.line((x1, y2 - 1, x2, y2 - 1), fill=(220, 220, 220), width=2)
            _text(draw, (round(60 * unit), y1 + round(45 * unit)), widget.label, round(48 * unit), (30, 30, 30))
    return image
