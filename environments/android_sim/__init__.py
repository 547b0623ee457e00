"""A simulated Android phone for the real adb server.

``python -m environments.android_sim --port P --state FILE`` listens on 127.0.0.1:P and
speaks the device (adbd) side of the ADB transport protocol, so that the real adb server
connects to it with ``adb connect 127.0.0.1:P`` and unmodified adbutils drives it exactly
as a phone. It answers the shell commands agents use (input, screencap, wm, dumpsys, am,
monkey, pm, ime, settings, getprop ...), renders its screens with Pillow, and mirrors its
state (see phone.py) to FILE. Faults (dropped connection, failing screencap, rotation) are
switched through a loopback control socket (control.py).

Modules: wire (message framing), transport (handshake, streams, flow control), services
(shell/exec streams), shell_syntax + shell (``sh -c``), commands/ (Android tools), phone
(state), layout + render (screen), faults, control, server (listener), cli, session and
adb_server (start it and a real adb server from tests and benches).
"""
