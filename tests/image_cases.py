"""Test images and sizes: UI-like screens, and the sizes that test a smart_resize against the
processor's own for any resize factor."""

from __future__ import annotations

import random

import numpy as np
from PIL import Image


def boundary_sizes(factor: int) -> list[tuple[int, int]]:
    """Odd, tiny, huge and extreme-aspect (height, width) sizes (up to 1:199), down to one
    pixel: sides on both sides of the factor's multiples and halves, where rounding flips."""
    half, quarter = factor // 2, factor // 4
    sides = {1, 2, quarter, half - 1, half, half + 1, factor - 1, factor, factor + 1,
             factor + half - 1, factor + half, 2 * factor - 1, 2 * factor, 2 * factor + 1,
             100, 333, 719, 720, 721, 1079, 1080, 1081, 1280, 1920, 2400, 2560, 3840, 4320,
             7680, 20000}
    sizes = {(h, w) for h in sides for w in sides}
    rng = random.Random(factor)
    sizes |= {(rng.randint(15, 12000), rng.randint(15, 12000)) for _ in range(400)}
    for ratio in (199, 198.5, 150, 100, 50, 3.7):
        for short in (1, 10, half, half + 1, factor - 8, factor, factor + 2, 50, 100, 1000):
            sizes |= {(short, int(short * ratio)), (int(short * ratio), short)}
    return sorted(sizes)


def rejected_or(function, *args):
    """``function(*args)``, or "rejected" when it raises ValueError (both sides must agree)."""
    try:
        return function(*args)
    except ValueError:
        return "rejected"


def screen_like(width: int, height: int, seed: int = 0) -> Image.Image:
    """Flat blocks with sharp edges, like a UI, plus some noise."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (height // 20 + 1, width // 20 + 1, 3), dtype=np.uint8)
    pixels = np.repeat(np.repeat(blocks, 20, axis=0), 20, axis=1)[:height, :width]
    noise = rng.integers(-8, 9, pixels.shape)
    return Image.fromarray(np.clip(pixels.astype(int) + noise, 0, 255).astype(np.uint8))
