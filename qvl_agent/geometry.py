"""Screen <-> model coordinates. The only module that converts coordinates.

Qwen2.5-VL answers in absolute pixels of the image *after* ``smart_resize``
(not the screen's pixels, not 0-1000). A :class:`Frame` records both sizes for one
screenshot and maps a model point back to an absolute screen pixel.

Other model families answer in other coordinate frames (their family says which, see
``qvl_agent/families``); the Frame carries it as ``coordinates``:

* ``pixels``: absolute pixels of the resized image (Qwen2.5-VL, UI-TARS-1.5, GUI-Owl, Holo1,
  Holo1.5, GTA1, UI-Venus-Ground-7B/72B);
* ``rel1000``: a 0-1000 grid over the image (Qwen3-VL's computer_use tool and grounding,
  UI-Venus-1.5);
* ``rel999``: a 0-999 grid (Qwen3-VL's mobile_use tool, whose cookbook maps
  ``round(x / 999 * W)``);
* ``rel1``: fractions of the image.

A relative point is the same fraction of the resized image and of the screen, so it maps
straight onto the screen: ``x_screen = round(x / scale * W_screen)``, exactly as Qwen3-VL's
mobile cookbook rounds.

Out-of-image rule (documented in README "Coordinates"):

* a model point inside the resized image maps proportionally onto the monitor;
* a point at most ``EDGE_TOLERANCE`` model pixels beyond an edge (models do answer
  ``x == width`` for the rightmost column) is clamped onto the nearest edge pixel;
* anything further away is rejected with :class:`CoordinateError`, which the agent feeds
  back to the model. A click never lands outside the chosen monitor.
"""

from __future__ import annotations

import math

from typing import Literal

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from qvl_agent.imaging import resize_bicubic

# The values Qwen2.5-VL checkpoints ship in preprocessor_config.json.
FACTOR = 28
DEFAULT_MIN_PIXELS = 3136  # 4 * 28 * 28
DEFAULT_MAX_PIXELS = 12845056  # 16384 * 28 * 28
# Qwen3-VL-{2B,4B,8B}-Instruct: 16-pixel patches merged 2x2, and its preprocessor_config's
# size {"shortest_edge": 65536, "longest_edge": 16777216} (64 to 16384 visual tokens).
QWEN3_VL_FACTOR = 32
QWEN3_VL_MIN_PIXELS = 65536  # 64 * 32 * 32
QWEN3_VL_MAX_PIXELS = 16777216  # 16384 * 32 * 32
MAX_ASPECT_RATIO = 200
# The range of min_pixels and max_pixels: one 28x28 patch group at least (below it smart_resize
# silently gives more than asked, or a zero side), and no more than this program decodes.
PIXELS_RANGE = (FACTOR * FACTOR, 100_000_000)

# How far (in model pixels) beyond the image edge a point may be and still be clamped.
EDGE_TOLERANCE = 28

# The coordinate frames a model may answer in, and the full scale of each (None: pixels).
Coordinates = Literal["pixels", "rel1000", "rel999", "rel1"]
COORDINATE_SCALES: dict[str, float | None] = {
    "pixels": None, "rel1000": 1000.0, "rel999": 999.0, "rel1": 1.0,
}


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

    @property
    def centre(self) -> tuple[int, int]:
        """The absolute pixel at this monitor's centre."""
        return self.left + self.width // 2, self.top + self.height // 2

    def moved(self, screen: tuple[float, float], dx: float, dy: float) -> tuple[int, int]:
        """The absolute pixel ``(dx, dy)`` screen pixels from ``screen``, kept on this monitor
        (a swipe a model asked for by direction and distance)."""
        x, y = self.to_local(screen[0] + dx, screen[1] + dy)
        return self.to_absolute(_clamp(round(x), self.width), _clamp(round(y), self.height))

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
    # What the model's numbers mean (see the module docstring); runs recorded before
    # families existed were all Qwen2.5-VL, hence the default.
    coordinates: Coordinates = "pixels"

    @classmethod
    def fit(
        cls,
        monitor: Monitor,
        min_pixels: int = DEFAULT_MIN_PIXELS,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        factor: int = FACTOR,
        coordinates: Coordinates = "pixels",
    ) -> Frame:
        height, width = smart_resize(monitor.height, monitor.width, factor, min_pixels, max_pixels)
        return cls(
            monitor=monitor,
            resized_width=width,
            resized_height=height,
            min_pixels=min_pixels,
            max_pixels=max_pixels,
            factor=factor,
            coordinates=coordinates,
        )

    @property
    def screen_size(self) -> tuple[int, int]:
        return self.monitor.width, self.monitor.height

    @property
    def resized_size(self) -> tuple[int, int]:
        return self.resized_width, self.resized_height

    def to_resized(self, x: float, y: float) -> tuple[float, float]:
        """A point in this frame's model coordinates as pixels of the resized image
        (``x / 1000 * resized_width`` for ``rel1000``, as Qwen3-VL's cookbooks compute it)."""
        scale = COORDINATE_SCALES[self.coordinates]
        if scale is None:
            return x, y
        return x / scale * self.resized_width, y / scale * self.resized_height

    def to_screen(self, x: float, y: float) -> tuple[int, int]:
        """Map a model-space point to an absolute screen pixel on this frame's monitor.

        Raises :class:`CoordinateError` for points further than ``EDGE_TOLERANCE`` resized
        pixels outside the image (the same tolerance in every coordinate frame).
        """
        for value, axis in ((x, "x"), (y, "y")):
            if not math.isfinite(value):
                raise CoordinateError(f"coordinate {axis}={value:g} is not a point on the "
                                      f"screenshot{self.valid_range()}")
        rx, ry = self.to_resized(x, y)
        for value, resized, size, axis in ((x, rx, self.resized_width, "x"),
                                           (y, ry, self.resized_height, "y")):
            if resized < -EDGE_TOLERANCE or resized > size + EDGE_TOLERANCE:
                raise CoordinateError(f"coordinate {axis}={value:g} is outside the screenshot"
                                      + self.valid_range())
        image_x, image_y = self.to_image(x, y)
        local_x = _clamp(round(image_x), self.monitor.width)
        local_y = _clamp(round(image_y), self.monitor.height)
        return self.monitor.to_absolute(local_x, local_y)

    @property
    def model_extent(self) -> tuple[int, int] | tuple[float, float]:
        """The size of the space the model answers in, as its prompt states the screen's
        resolution: the resized image's pixels, or the grid (1000x1000 for ``rel1000``)."""
        scale = COORDINATE_SCALES[self.coordinates]
        if scale is None:
            return self.resized_width, self.resized_height
        return (int(scale), int(scale)) if scale.is_integer() else (scale, scale)

    def valid_range(self) -> str:
        """What a model point must be in this frame, said the way the model is told."""
        scale = COORDINATE_SCALES[self.coordinates]
        if scale is None:
            return (f", which is {self.resized_width}x{self.resized_height} pixels; "
                    f"use 0 <= x < {self.resized_width} and 0 <= y < {self.resized_height}")
        top = f"{scale:g}"
        return f" (coordinates relative to it: use 0 <= x <= {top} and 0 <= y <= {top})"

    def to_image(self, x: float, y: float) -> tuple[float, float]:
        """A model-space point in the screenshot's own pixels, unrounded and unclamped.

        For scoring against annotated boxes, where rounding to a pixel could move a point
        across a box edge; acting uses :meth:`to_screen`.
        """
        scale = COORDINATE_SCALES[self.coordinates]
        if scale is not None:  # a fraction of the resized image is that fraction of the screen
            return x / scale * self.monitor.width, y / scale * self.monitor.height
        return (x * self.monitor.width / self.resized_width,
                y * self.monitor.height / self.resized_height)

    def to_model(self, screen_x: float, screen_y: float) -> tuple[float, float]:
        """Map an absolute screen pixel to the model-space point that shows it (whole
        resized pixels, or whole grid steps; fractions for ``rel1``)."""
        local_x, local_y = self.monitor.to_local(screen_x, screen_y)
        scale = COORDINATE_SCALES[self.coordinates]
        if scale is None:
            return (_clamp(round(local_x * self.resized_width / self.monitor.width),
                           self.resized_width),
                    _clamp(round(local_y * self.resized_height / self.monitor.height),
                           self.resized_height))
        fx = _clamp(round(local_x), self.monitor.width) / self.monitor.width
        fy = _clamp(round(local_y), self.monitor.height) / self.monitor.height
        if scale == 1.0:
            return fx, fy
        return round(fx * scale), round(fy * scale)


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

