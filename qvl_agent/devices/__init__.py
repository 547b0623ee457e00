"""Devices: the screens the agent can see and act on."""

from __future__ import annotations

from qvl_agent.devices.base import CaptureError, Device, DeviceError, Observation

__all__ = ["CaptureError", "Device", "DeviceError", "Observation", "open_device"]


def open_device(spec: str, monitor: int = 1, choose=None) -> Device:
    """``desktop``, ``android``, ``android:SERIAL`` or ``image:FILE`` (a still screenshot).

    ``choose(serials) -> serial`` is asked when ``android`` matches several phones.
    """
    kind, _, argument = spec.partition(":")
    if kind == "desktop":
        from qvl_agent.devices.desktop import DesktopDevice

        return DesktopDevice(monitor=monitor)
    if kind == "android":
        from qvl_agent.devices.android import AndroidDevice, adb_client, list_devices

        client = adb_client()
        serial = argument or None
        if serial is None and choose is not None:
            ready = [d["serial"] for d in list_devices(client) if d["state"] == "device"]
            if len(ready) > 1:
                serial = choose(ready)
        return AndroidDevice(serial, client=client)
    if kind == "image":
        from qvl_agent.devices.still import StillImageDevice

        if not argument:
            raise DeviceError("--device image needs a file: --device image:screenshot.png")
        return StillImageDevice.from_file(argument)
    raise DeviceError(f"unknown device {spec!r}; use desktop, android[:SERIAL] or image:FILE")
