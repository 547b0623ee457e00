"""Screenshot -> the vision encoder's input, without the stock image processor's detours.

The result equals ``Qwen2VLImageProcessor(images=[image], do_resize=False)`` (to float
rounding; tests compare the two) but costs a fraction: the uint8 pixels are reordered into
patches first (a quarter of the bytes of float32), then rescaled and normalised in one
fused multiply-add, on the model's device, so on a GPU the arithmetic happens there.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from qvl_agent.imaging import hwc_pixels


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
    out: Any | None = None,
) -> tuple[Any, Any]:
    """Return ``(pixel_values, image_grid_thw)`` as the Qwen2-VL image processor lays them out.

    ``pixel_values`` has one row per 14x14 patch, ordered by 2x2 merge group, each row
    ``channels x temporal x patch x patch`` values (a still image repeats in time). ``out``,
    a tensor of the right shape, dtype and device, is filled and returned instead of a new
    one: reusing it across steps saves the page faults of a fresh 20-50 MB tensor each time.
    """
    import torch

    pixels = hwc_pixels(image).to(device)  # H, W, C uint8 (only this goes to a GPU)
    height, width, channels = pixels.shape
    grid_h, grid_w = height // patch_size, width // patch_size
    if grid_h * patch_size != height or grid_w * patch_size != width or grid_h % merge_size or grid_w % merge_size:
        raise ValueError(
            f"image {width}x{height} is not a whole number of "
            f"{patch_size * merge_size}-pixel merge groups"
        )
    rows, row_size = grid_h * grid_w, channels * temporal_patch_size * patch_size * patch_size
    if out is None or tuple(out.shape) != (rows, row_size) or out.dtype != dtype or out.device != pixels.device:
        out = torch.empty(rows, row_size, dtype=dtype, device=pixels.device)
    patches = pixels.reshape(
        grid_h // merge_size, merge_size, patch_size, grid_w // merge_size, merge_size, patch_size, channels
    ).permute(0, 3, 1, 4, 6, 2, 5)  # gh/m, gw/m, m, m, C, p, p
    # (x / 255 - mean) / std as one multiply-add per value, written straight into the first
    # time slot of ``out`` (no float copy of the image, no expanded intermediate).
    std_t = torch.tensor(std, dtype=torch.float32, device=pixels.device)
    mean_t = torch.tensor(mean, dtype=torch.float32, device=pixels.device)
    scale = (1.0 / (255.0 * std_t)).reshape(channels, 1, 1)
    offset = (-mean_t / std_t).reshape(channels, 1, 1)
    slots = out.view(*patches.shape[:5], temporal_patch_size, patch_size, patch_size)
    torch.addcmul(offset, patches, scale, out=slots[:, :, :, :, :, 0])
    for frame in range(1, temporal_patch_size):
        slots[:, :, :, :, :, frame].copy_(slots[:, :, :, :, :, 0])
    grid = torch.tensor([[1, grid_h, grid_w]], dtype=torch.int64, device=pixels.device)
    return out, grid
