"""Devices: the screens the agent can see and act on."""

from __future__ import annotations

from qvl_agent.devices.base import CaptureError, Device, DeviceError, Observation

__all__ = ["CaptureError", "Device", "DeviceError", "Observation", "open_device"]


def open_device(spec: str, monitor: int = 1) -> Device:
    """``desktop`` (monitor N of this machine's display) or ``image:FILE`` (a still screenshot)."""
    kind, _, argument = spec.partition(":")
    if kind == "desktop":
        from qvl_agent.devices.desktop import DesktopDevice

        return DesktopDevice(monitor=monitor)
    if kind == "image":
        from qvl_agent.devices.still import StillImageDevice

        if not argument:
            raise DeviceError("--device image needs a file: --device image:screenshot.png")
        return StillImageDevice.from_file(argument)
    raise DeviceError(f"unknown device {spec!r}; use desktop or image:FILE")
