"""Screen <-> model coordinates. The only module that converts coordinates.

Qwen2.5-VL answers in absolute pixels of the image *after* ``smart_resize``
(not the screen's pixels, not 0-1000). A :class:`Frame` records both sizes for one
screenshot and maps a model point back to an absolute screen pixel.

Out-of-image rule (documented in README "Coordinates"):

* a model point inside the resized image maps proportionally onto the monitor;
* a point at most ``EDGE_TOLERANCE`` model pixels beyond an edge (models do answer
  ``x == width`` for the rightmost column) is clamped onto the nearest edge pixel;
* anything further away is rejected with :class:`CoordinateError`, which the agent feeds
  back to the model. A click never lands outside the chosen monitor.
"""

from __future__ import annotations

import math

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from qvl_agent.imaging import resize_bicubic

# The values Qwen2.5-VL checkpoints ship in preprocessor_config.json.
FACTOR = 28
DEFAULT_MIN_PIXELS = 3136  # 4 * 28 * 28
DEFAULT_MAX_PIXELS = 12845056  # 16384 * 28 * 28
MAX_ASPECT_RATIO = 200
# The range of min_pixels and max_pixels: one 28x28 patch group at least (below it smart_resize
# silently gives more than asked, or a zero side), and no more than this program decodes.
PIXELS_RANGE = (FACTOR * FACTOR, 100_000_000)

# How far (in model pixels) beyond the image edge a point may be and still be clamped.
EDGE_TOLERANCE = 28


class CoordinateError(ValueError):
    """A model coordinate that cannot be mapped onto the screen."""


def pixel_bounds_problem(min_pixels: int, max_pixels: int) -> str | None:
    """Why ``min_pixels``/``max_pixels`` cannot be used, naming the allowed range; None if fine."""
    low, high = PIXELS_RANGE
    for name, value in (("max_pixels", max_pixels), ("min_pixels", min_pixels)):
        if not low <= value <= high:
            return f"{name} {value} is out of range: use {low} (28*28) to {high}"
    if min_pixels > max_pixels:
        return f"min_pixels {min_pixels} is more than max_pixels {max_pixels}"
    return None


def aspect_problem(width: int, height: int) -> str | None:
    """Why a ``width`` x ``height`` screen cannot be shown to the model; None if it can."""
    if width <= 0 or height <= 0:
        return f"a {width}x{height} image has no pixels"
    if max(width, height) / min(width, height) > MAX_ASPECT_RATIO:
        ratio = max(width, height) / min(width, height)
        return (f"a {width}x{height} image is {ratio:.0f}:1; Qwen2.5-VL takes images up to "
                f"{MAX_ASPECT_RATIO}:1")
    return None


def _round_by_factor(value: float, factor: int) -> int:
    return round(value / factor) * factor


def _ceil_by_factor(value: float, factor: int) -> int:
    return math.ceil(value / factor) * factor


def _floor_by_factor(value: float, factor: int) -> int:
    return math.floor(value / factor) * factor


def smart_resize(
    height: int,
    width: int,
    factor: int = FACTOR,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[int, int]:
    """Return ``(height, width)`` as Qwen2.5-VL's image processor resizes an image.

    The same result as transformers' ``Qwen2VLImageProcessor`` for every size (note the
    order: height first); tests compare the two. Both sides become multiples of ``factor`` and the area lands
    within ``[min_pixels, max_pixels]``.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if (problem := pixel_bounds_problem(min_pixels, max_pixels)) is not None:
        raise ValueError(problem)
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ValueError(
            f"absolute aspect ratio must be smaller than {MAX_ASPECT_RATIO}, "
            f"got {max(height, width) / min(height, width)}"
        )
    # No max(factor, ...) here: transformers lets a side under factor/2 round to 0 and then
    # scales up to min_pixels, and the model saw images resized exactly that way.
    h_bar = _round_by_factor(height, factor)
    w_bar = _round_by_factor(width, factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, _floor_by_factor(height / beta, factor))
        w_bar = max(factor, _floor_by_factor(width / beta, factor))
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = _ceil_by_factor(height * beta, factor)
        w_bar = _ceil_by_factor(width * beta, factor)
    return h_bar, w_bar


class Monitor(BaseModel):
    """One monitor in absolute virtual-screen pixels (a phone is one monitor at 0,0)."""

    model_config = ConfigDict(frozen=True)

    left: int = 0
    top: int = 0
    width: int = Field(gt=0)
    height: int = Field(gt=0)

    def to_local(self, x: float, y: float) -> tuple[float, float]:
        """An absolute screen pixel in this monitor's (and its screenshot's) own pixels."""
        return x - self.left, y - self.top

    def to_absolute(self, x: float, y: float) -> tuple[float, float]:
        """A pixel of this monitor (or its screenshot) in absolute screen pixels."""
        return self.left + x, self.top + y

    def same_place(self, screen: tuple[float, float], other: Monitor) -> tuple[int, int]:
        """The absolute pixel of this monitor at the place ``screen`` has on ``other``
        (a recorded point moved onto a screen of another size)."""
        x, y = other.to_local(*screen)
        return self.to_absolute(_clamp(round(x * self.width / other.width), self.width),
                                _clamp(round(y * self.height / other.height), self.height))


class Frame(BaseModel):
    """The geometry of one screenshot: the monitor it shows and the size the model sees."""

    model_config = ConfigDict(frozen=True)

    monitor: Monitor
    resized_width: int
    resized_height: int
    min_pixels: int = DEFAULT_MIN_PIXELS
    max_pixels: int = DEFAULT_MAX_PIXELS
    factor: int = FACTOR

    @classmethod
    def fit(
        cls,
        monitor: Monitor,
        min_pixels: int = DEFAULT_MIN_PIXELS,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        factor: int = FACTOR,
    ) -> Frame:
        height, width = smart_resize(monitor.height, monitor.width, factor, min_pixels, max_pixels)
        return cls(
            monitor=monitor,
            resized_width=width,
            resized_height=height,
            min_pixels=min_pixels,
            max_pixels=max_pixels,
            factor=factor,
        )

    @property
    def screen_size(self) -> tuple[int, int]:
        return self.monitor.width, self.monitor.height

    @property
    def resized_size(self) -> tuple[int, int]:
        return self.resized_width, self.resized_height

    def to_screen(self, x: float, y: float) -> tuple[int, int]:
        """Map a model-space point to an absolute screen pixel on this frame's monitor.

        Raises :class:`CoordinateError` for points further than ``EDGE_TOLERANCE``
        outside the resized image.
        """
        for value, size, axis in ((x, self.resized_width, "x"), (y, self.resized_height, "y")):
            if not math.isfinite(value) or value < -EDGE_TOLERANCE or value > size + EDGE_TOLERANCE:
                raise CoordinateError(
                    f"coordinate {axis}={value:g} is outside the screenshot, which is "
                    f"{self.resized_width}x{self.resized_height} pixels; "
                    f"use 0 <= x < {self.resized_width} and 0 <= y < {self.resized_height}"
                )
        local_x = _clamp(round(x * self.monitor.width / self.resized_width), self.monitor.width)
        local_y = _clamp(round(y * self.monitor.height / self.resized_height), self.monitor.height)
        return self.monitor.to_absolute(local_x, local_y)

    def to_image(self, x: float, y: float) -> tuple[float, float]:
        """A model-space point in the screenshot's own pixels, unrounded and unclamped.

        For scoring against annotated boxes, where rounding to a pixel could move a point
        across a box edge; acting uses :meth:`to_screen`.
        """
        return x * self.monitor.width / self.resized_width, y * self.monitor.height / self.resized_height

    def to_model(self, screen_x: float, screen_y: float) -> tuple[int, int]:
        """Map an absolute screen pixel to the model-space pixel that shows it."""
        local_x, local_y = self.monitor.to_local(screen_x, screen_y)
        return (
            _clamp(round(local_x * self.resized_width / self.monitor.width), self.resized_width),
            _clamp(round(local_y * self.resized_height / self.monitor.height), self.resized_height),
        )


def _clamp(value: int, size: int) -> int:
    return max(0, min(size - 1, value))


def model_view(image: Image.Image, frame: Frame) -> Image.Image:
    """The screenshot at the size the model sees, resized once, up front.

    Handing the model an image already at its target size means its processor does not
    resize again (see :mod:`qvl_agent.imaging` for how the resize is done).
    """
    if image.size != frame.screen_size:
        raise ValueError(
            f"screenshot is {image.size[0]}x{image.size[1]} but the frame's monitor is "
            f"{frame.monitor.width}x{frame.monitor.height}"
        )
    if image.mode != "RGB":
        image = image.convert("RGB")
    return resize_bicubic(image, frame.resized_size)
