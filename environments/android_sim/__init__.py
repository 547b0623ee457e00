"""A simulated Android phone that the real adb server connects to.

``python -m environments.android_sim --port P --state FILE`` listens on 127.0.0.1:P and
speaks the device side of the ADB transport protocol; ``adb connect 127.0.0.1:P`` makes it
a device the unmodified adbutils client drives like a real phone. See phone.py for the
state file and the fault switches.
"""
