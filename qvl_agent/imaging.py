"""Resizing a screenshot to the size the model sees, once, as fast as this machine allows.

With torch installed, torch's antialiased bicubic resize on the uint8 image (the kernel
torchvision's resize uses, so the result matches transformers' fast Qwen2-VL image
processor); it is 4-5x faster than Pillow's on a 1080p frame and within 2 grey levels of
it. Without torch, Pillow's bicubic (what transformers' Pillow processor does).
"""

from __future__ import annotations

import importlib.util
import io
import warnings
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError


@cache
def resizer_name() -> str:
    """``torch-bicubic-aa`` or ``pil-bicubic``; recorded with each run."""
    try:
        available = importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):  # a broken or deliberately blocked torch
        available = False
    return "torch-bicubic-aa" if available else "pil-bicubic"


def resize_bicubic(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``image`` (RGB) resized to ``size`` = (width, height)."""
    if image.size == size:
        return image
    if resizer_name() == "pil-bicubic":
        return image.resize(size, Image.Resampling.BICUBIC)
    import torch
    import torch.nn.functional as F

    pixels = np.array(image)  # H, W, 3, uint8: one writable copy, as torch wants
    tensor = torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0)  # channels-last memory: fastest
    width, height = size
    resized = F.interpolate(tensor, size=(height, width), mode="bicubic", antialias=True)[0]
    pixels_hwc = resized.permute(1, 2, 0).contiguous()
    image = Image.fromarray(pixels_hwc.numpy(), "RGB")
    # Keep the pixels as a tensor too: the local backend patchifies them without going back
    # through Pillow (a copy of the whole image saved per step). Read-only makes Pillow swap
    # in a new core image before any drawing, which invalidates the cached tensor.
    image.readonly = 1
    image.info[HWC_PIXELS] = (image.im, pixels_hwc)
    return image


HWC_PIXELS = "qvl_agent.hwc_uint8"


def hwc_pixels(image: Image.Image):
    """The image as an (H, W, 3) uint8 torch tensor; free when :func:`resize_bicubic` made it."""
    import torch

    core, cached = image.info.get(HWC_PIXELS, (None, None))
    if cached is not None and core is image.im:
        return cached
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return torch.from_numpy(np.array(rgb))


# Largest image decoded from a file or a request: 100 megapixels (a 12000x8000 photo; the
# largest ScreenSpot-Pro screenshots are about 20). Past this a tiny compressed file can
# expand to gigabytes (a "decompression bomb"), so the size is checked from the header first.
MAX_DECODED_PIXELS = 100_000_000


class ImageReadError(ValueError):
    """An image that cannot be read: missing, corrupt, not an image, or too large to decode."""


def open_image(source: str | Path | bytes, max_pixels: int = MAX_DECODED_PIXELS,
               what: str = "image") -> Image.Image:
    """The image in ``source`` (a path or the file's bytes) decoded as RGB.

    The declared size is checked against ``max_pixels`` before any pixel is decoded; every
    failure is an :class:`ImageReadError` that names the file.
    """
    name = f"{what} {source}" if not isinstance(source, bytes) else what
    try:
        with warnings.catch_warnings():  # Pillow warns past 89 MP; the limit here decides
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        with image:
            width, height = image.size
            if width * height > max_pixels:
                raise ImageReadError(
                    f"{name} is {width}x{height} ({width * height:,} pixels), more than the "
                    f"{max_pixels:,} this program decodes"
                )
            return image.convert("RGB")
    except ImageReadError:
        raise
    except Image.DecompressionBombError as error:  # Pillow's own limit, met while opening
        raise ImageReadError(f"{name} is too large to decode: {error}") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{name} is not an image in a format Pillow reads") from None
    except (OSError, ValueError, SyntaxError) as error:  # missing, truncated, not an image
        raise ImageReadError(f"cannot read {name}: {error}") from None


def preview_jpeg(image: Image.Image, max_width: int = 1280, quality: int = 80,
                 exact: bool = True) -> bytes:
    """A JPEG of ``image`` at most ``max_width`` wide, for pages that show screenshots (the
    report, the watch page): a fraction of the PNG's size, sharp enough to read labels.

    ``exact``: scaled to ``max_width`` (bilinear); otherwise shrunk by the smallest whole
    factor that fits (box filter), which costs a few ms instead of ~50 for a 1080p frame."""
    if image.width > max_width and exact:
        image = image.resize((max_width, max(1, round(image.height * max_width / image.width))),
                             Image.BILINEAR)
    elif image.width > max_width:
        image = image.reduce(-(-image.width // max_width))
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
