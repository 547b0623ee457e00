"""Devices: the screens the agent can see and act on."""

from qvl_agent.devices.base import CaptureError, Device, DeviceError, Observation

__all__ = ["CaptureError", "Device", "DeviceError", "Observation"]
