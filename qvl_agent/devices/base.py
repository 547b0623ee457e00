"""The Device protocol: ``screenshot()`` and ``execute()``, nothing about models."""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from qvl_agent.actions import Action, Answer, Space, Terminate, Wait
from qvl_agent.geometry import Monitor


class DeviceError(RuntimeError):
    """The device could not capture or act; the message says what to do about it."""


class CaptureError(DeviceError):
    """A screenshot failed. The agent never acts on a failed capture."""


class Observation(BaseModel):
    """One screenshot of one monitor, in that monitor's own pixels."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    image: Image.Image
    monitor: Monitor
    captured_at: float = Field(default_factory=time.time)
    capture_ms: float = 0.0


@runtime_checkable
class Device(Protocol):
    """Something with a screen the agent can see and act on."""

    name: str
    space: Space

    def screenshot(self) -> Observation:
        """Capture the screen; raise :class:`CaptureError` rather than return a bad image."""
        ...

    def execute(self, action: Action) -> None:
        """Perform a resolved action (screen coordinates filled in)."""
        ...

    def close(self) -> None: ...


def perform_device_independent(action: Action) -> bool:
    """Do what every device does the same way (wait; terminate and answer do nothing on the
    screen); True when ``action`` was one of those."""
    if isinstance(action, Wait):
        time.sleep(action.time)
        return True
    return isinstance(action, (Terminate, Answer))
