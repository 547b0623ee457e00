"""Draw where an action points on a screenshot (``qvl-agent ground --save``)."""

from __future__ import annotations

from PIL import Image, ImageDraw

MARK_COLOUR = (255, 0, 255)  # magenta: rare in screenshots, easy to find by eye and in tests
BOX_COLOUR = (0, 200, 0)


def draw_marks(image: Image.Image, point: tuple[float, float] | None = None,
               box: tuple[float, float, float, float] | None = None) -> Image.Image:
    """A copy of ``image`` with ``box`` outlined and ``point`` ringed, sized to the image."""
    marked = image.convert("RGB")
    pen = ImageDraw.Draw(marked)
    scale = max(2, round(min(marked.size) / 100))
    if box is not None:
        pen.rectangle(box, outline=BOX_COLOUR, width=max(1, scale // 2))
    if point is not None:
        x, y = point
        radius = 3 * scale
        pen.ellipse((x - radius, y - radius, x + radius, y + radius), outline=MARK_COLOUR, width=scale)
        pen.line((x - 2 * radius, y, x + 2 * radius, y), fill=MARK_COLOUR, width=max(1, scale // 2))
        pen.line((x, y - 2 * radius, x, y + 2 * radius), fill=MARK_COLOUR, width=max(1, scale // 2))
    return marked
