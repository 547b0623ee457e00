"""Where an action points, as SVG drawn over its screenshot (the report and the watch page).

The SVG's ``viewBox`` is the screenshot's own pixel size, so a mark at a recorded pixel sits
on that pixel however the page scales the image. Marks are outlines, never filled: a ring
with a crosshair whose centre is left open, a box outline, an arrow, each translucent over a
light halo, so the label of the element under them stays readable on any background. The
crosshair's arms start outside the ring (and run diagonally, off the line of a label's text):
nothing is drawn inside the ring but a one-pixel dot.
Colours: magenta = what the model did (or is about to do), green = the target (eval).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from qvl_agent.actions import Action, Point
from qvl_agent.geometry import Monitor

PREDICTED, TARGET = "#ff00ff", "#00c800"
OPACITY = 0.8  # of a mark's colour; the halo under it is white at HALO_OPACITY
HALO_OPACITY = 0.45
# The crosshair's arms point diagonally: a label is a horizontal band of text, and arms along
# it would strike through its letters; diagonal arms start above and below the line.
DIAGONALS = tuple((sx * 0.7071, sy * 0.7071) for sx in (1, -1) for sy in (1, -1))


@dataclass(frozen=True)
class Mark:
    kind: Literal["point", "arrow", "box"]
    # point: (x, y); arrow: (x1, y1, x2, y2); box: (x1, y1, x2, y2), screenshot pixels
    at: tuple[float, ...]
    colour: str = PREDICTED
    css: str = ""  # extra class names, e.g. the action's name or "target"


def action_marks(action: Action | None, monitor: Monitor) -> list[Mark]:
    """The marks of ``action``'s screen points, in the pixels of ``monitor``'s screenshot."""
    if action is None:
        return []
    local = {name: monitor.to_local(*value.screen) for name, value in action
             if isinstance(value, Point) and value.screen is not None}
    marks = []
    if "coordinate" in local and "coordinate2" in local:
        marks.append(Mark("arrow", (*local["coordinate"], *local["coordinate2"]),
                          css=f"action {action.action}"))
    if "coordinate" in local:
        marks.append(Mark("point", local["coordinate"], css=f"action {action.action}"))
    return marks


def svg_marks(marks: list[Mark], width: int, height: int) -> str:
    """An ``<svg>`` sized to a ``width`` x ``height`` screenshot, holding ``marks``."""
    unit = max(width, height) / 200  # marks sized to the screenshot, not to the page
    body = "".join(_svg(mark, unit) for mark in marks)
    return (f'<svg class="marks" viewBox="0 0 {width} {height}" preserveAspectRatio="none" '
            f'xmlns="http://www.w3.org/2000/svg">{body}</svg>')


def _stroke(colour: str, width: float) -> str:
    return f'stroke="{colour}" stroke-opacity="{OPACITY}" stroke-width="{width:.2f}" fill="none"'


def _halo(width: float) -> str:
    return (f'stroke="#ffffff" stroke-opacity="{HALO_OPACITY}" stroke-width="{width:.2f}" '
            'fill="none"')


def _twice(shape: str, width: float, colour: str) -> str:
    """The shape over a wider white halo (visible on dark and light screens alike)."""
    return shape.format(style=_halo(width * 2.0)) + shape.format(style=_stroke(colour, width))


def _svg(mark: Mark, unit: float) -> str:
    line = 0.3 * unit
    if mark.kind == "point":
        x, y = mark.at
        ring = 3 * unit
        inner, outer = 1.15 * ring, 1.85 * ring  # arms outside the ring: its inside stays clear
        ticks = "".join(
            f'<line x1="{x + dx * inner:.1f}" y1="{y + dy * inner:.1f}" '
            f'x2="{x + dx * outer:.1f}" y2="{y + dy * outer:.1f}" {{style}}/>'
            for dx, dy in DIAGONALS)
        shape = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{ring:.1f}" {{style}}/>' + ticks
        dot = (f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{0.12 * unit:.2f}" fill="{mark.colour}" '
               f'fill-opacity="{OPACITY}"/>')  # the exact pixel, about one screen pixel wide
        return (f'<g class="mark {mark.css}" data-x="{x:.1f}" data-y="{y:.1f}">'
                f'{_twice(shape, line, mark.colour)}{dot}</g>')
    if mark.kind == "arrow":
        x1, y1, x2, y2 = mark.at
        length = max(((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5, 1e-6)
        ux, uy = (x2 - x1) / length, (y2 - y1) / length
        head = 3 * unit
        left = (x2 - head * ux - 0.6 * head * uy, y2 - head * uy + 0.6 * head * ux)
        right = (x2 - head * ux + 0.6 * head * uy, y2 - head * uy - 0.6 * head * ux)
        shape = (f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" {{style}}/>'
                 f'<polyline points="{left[0]:.1f},{left[1]:.1f} {x2:.1f},{y2:.1f} '
                 f'{right[0]:.1f},{right[1]:.1f}" {{style}}/>')
        return f'<g class="mark swipe {mark.css}">{_twice(shape, 1.5 * line, mark.colour)}</g>'
    x1, y1, x2, y2 = mark.at
    shape = (f'<rect x="{x1:.1f}" y="{y1:.1f}" width="{x2 - x1:.1f}" height="{y2 - y1:.1f}" '
             f'{{style}}/>')
    return f'<g class="mark box {mark.css}">{_twice(shape, line, mark.colour)}</g>'
