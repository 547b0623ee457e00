"""Screenshot -> the vision encoder's input, without the stock image processor's detours.

The result equals ``Qwen2VLImageProcessor(images=[image], do_resize=False)`` (to float
rounding; tests compare the two) but costs a fraction: the uint8 pixels are reordered into
patches first (a quarter of the bytes of float32), then rescaled and normalised in one
fused multiply-add, on the model's device, so on a GPU the arithmetic happens there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image


def patchify(
    image: Image.Image,
    *,
    mean: list[float],
    std: list[float],
    patch_size: int,
    merge_size: int,
    temporal_patch_size: int,
    device: Any,
    dtype: Any,
) -> tuple[Any, Any]:
    """Return ``(pixel_values, image_grid_thw)`` as the Qwen2-VL image processor lays them out.

    ``pixel_values`` has one row per 14x14 patch, ordered by 2x2 merge group, each row
    ``channels x temporal x patch x patch`` values (a still image repeats in time).
    """
    import torch

    pixels = torch.from_numpy(np.array(image.convert("RGB"))).to(device)  # H, W, C uint8
    height, width, channels = pixels.shape
    grid_h, grid_w = height // patch_size, width // patch_size
    if grid_h * patch_size != height or grid_w * patch_size != width or grid_h % merge_size or grid_w % merge_size:
        raise ValueError(
            f"image {width}x{height} is not a whole number of "
            f"{patch_size * merge_size}-pixel merge groups"
        )
    patches = pixels.reshape(
        grid_h // merge_size, merge_size, patch_size, grid_w // merge_size, merge_size, patch_size, channels
    ).permute(0, 3, 1, 4, 6, 2, 5)  # gh/m, gw/m, m, m, C, p, p
    # (x / 255 - mean) / std as one multiply-add per value.
    std_t = torch.tensor(std, dtype=torch.float32, device=device)
    mean_t = torch.tensor(mean, dtype=torch.float32, device=device)
    scale = (1.0 / (255.0 * std_t)).reshape(channels, 1, 1)
    offset = (-mean_t / std_t).reshape(channels, 1, 1)
    normalised = torch.addcmul(offset, patches.float(), scale)
    repeated = normalised.unsqueeze(5).expand(*normalised.shape[:5], temporal_patch_size, patch_size, patch_size)
    pixel_values = repeated.reshape(grid_h * grid_w, channels * temporal_patch_size * patch_size * patch_size)
    grid = torch.tensor([[1, grid_h, grid_w]], dtype=torch.int64, device=device)
    return pixel_values.to(dtype), grid
