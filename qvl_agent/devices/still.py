"""A device that shows a still screenshot and records the actions it is asked to perform.

``--device image:shot.png`` lets a user see what a model would do on a saved screenshot
without touching any real screen; tests use it to drive the loop without a display.
"""

from __future__ import annotations

import time
from pathlib import Path

from PIL import Image

from qvl_agent.actions import Action, Space
from qvl_agent.devices.base import CaptureError, Observation
from qvl_agent.geometry import Monitor, aspect_problem
from qvl_agent.imaging import ImageReadError, open_image


class StillImageDevice:
    def __init__(self, image: Image.Image, space: Space = "computer", name: str = "image") -> None:
        self.image = image.convert("RGB")
        self.space: Space = space
        self.name = name
        self.performed: list[Action] = []

    @classmethod
    def from_file(cls, path: str | Path, space: Space = "computer") -> StillImageDevice:
        path = Path(path)
        try:
            image = open_image(path, what="screenshot")
        except ImageReadError as error:
            raise CaptureError(str(error)) from None
        # The size is known now: fail before the model loads.
        if (problem := aspect_problem(*image.size)) is not None:
            raise CaptureError(f"screenshot {path} cannot be shown to the model: {problem}")
        return cls(image, space, name=f"image:{path}")

    def screenshot(self) -> Observation:
        started = time.perf_counter()
        width, height = self.image.size
        return Observation(
            image=self.image.copy(),
            monitor=Monitor(width=width, height=height),
            capture_ms=(time.perf_counter() - started) * 1000,
        )

    def execute(self, action: Action) -> None:
        self.performed.append(action)

    def close(self) -> None:
        pass
