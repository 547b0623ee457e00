"""Qwen3-VL's conventions, as its release states them: the data the ``qwen3-vl`` family needs.

* **Resize**: 16-pixel patches merged 2x2, so both sides become multiples of 32
  (``geometry.QWEN3_VL_FACTOR``), within the checkpoints' preprocessor_config bounds
  ``size = {"shortest_edge": 65536, "longest_edge": 16777216}`` (64 to 16384 visual tokens;
  ``geometry.QWEN3_VL_MIN_PIXELS``/``QWEN3_VL_MAX_PIXELS``). ``geometry.smart_resize(h, w,
  32, ...)`` equals the Qwen3-VL image processor's resize (tests/test_qwen3_vl.py).
* **Coordinates**: relative, not pixels. The tool descriptions state a fixed screen
  instead of the screenshot's size, and answers map back through it:

  - computer_use (QwenLM/Qwen3-VL cookbooks/computer_use.ipynb, 96a8f59, read from the copy
    Firefly-llm/Qwen3-VL@08254a9): ``ComputerUse(cfg={"display_width_px": 1000,
    "display_height_px": 1000})`` - "The screen's resolution is 1000x1000." - and
    ``x_resized = x / 1000 * resized_width``;
  - mobile_use (QwenLM/Qwen3-VL@9658872 cookbooks/mobile_agent.ipynb): "The screen's
    resolution is 999x999." and ``rescale_coordinates``: ``round(x / 999 * width)``;
  - grounding (cookbooks/2d_grounding.ipynb): ``bbox_2d`` / ``point_2d`` on 0-1000,
    ``x / 1000 * width`` ("relative coordinates ranging from 0 to 1000").

  Since the grid is relative, mapping through the resized image or straight onto the
  screen gives the same pixel: ``x_screen = x / scale * W_screen``
  (``Frame.to_screen`` of a ``rel1000`` or ``rel999`` frame). The two scales differ by 0.1 %
  (at most 2 px on a 1920 px screen); OSWorld's qwen3vl agent mixes them (tool says 1000,
  code divides by 999), we follow each cookbook.
* **The Qwen3-era tool schemas** (cookbooks/utils/agent_function_call.py at 0dcc180) add
  ``triple_click``, ``hscroll`` and ``answer`` to computer_use; the mobile cookbook's
  mobile_use drops ``key`` and ``open`` and adds ``answer``.
"""

from __future__ import annotations

from dataclasses import dataclass

from qvl_agent.geometry import QWEN3_VL_FACTOR, QWEN3_VL_MAX_PIXELS, QWEN3_VL_MIN_PIXELS

FACTOR = QWEN3_VL_FACTOR
MIN_PIXELS = QWEN3_VL_MIN_PIXELS
MAX_PIXELS = QWEN3_VL_MAX_PIXELS


@dataclass(frozen=True)
class ToolScreen:
    """The screen a Qwen3-VL tool description states, and the grid its answers are on."""

    resolution: tuple[int, int]  # "The screen's resolution is {w}x{h}."
    scale: int  # x_resized = x / scale * resized_width
    source: str


TOOL_SCREENS: dict[str, ToolScreen] = {
    "computer": ToolScreen(
        (1000, 1000),
        1000,
        "QwenLM/Qwen3-VL cookbooks/computer_use.ipynb (96a8f59; copy Firefly-llm/Qwen3-VL@08254a9)",
    ),
    "mobile": ToolScreen((999, 999), 999, "QwenLM/Qwen3-VL@9658872 cookbooks/mobile_agent.ipynb"),
}
# bbox_2d / point_2d answers of the grounding cookbook.
GROUNDING_SCALE = 1000
