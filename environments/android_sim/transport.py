"""The device side of the ADB transport protocol (what adbd speaks to the adb server).

Messages are a 24-byte header (command, arg0, arg1, data length, data checksum, magic =
command ^ 0xffffffff, all little-endian uint32) plus data. The server says CNXN, we answer
CNXN with our banner (no AUTH: a phone with adb authentication off). It then OPENs a stream
per service ("shell:CMD", "shell,v2,...:CMD", "exec:CMD"); we answer OKAY, send the output in
WRTE messages (waiting for the server's OKAY before each next one, as the protocol requires)
and CLSE when done.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

A_CNXN = 0x4E584E43
A_OPEN = 0x4E45504F
A_OKAY = 0x59414B4F
A_WRTE = 0x45545257
A_CLSE = 0x45534C43
A_AUTH = 0x48545541
VERSION = 0x01000001
MAX_PAYLOAD = 1024 * 1024  # what current adb servers offer

# shell protocol (v2) packet ids: id byte + LE32 length + data
SHELL_STDOUT, SHELL_STDERR, SHELL_EXIT = 1, 2, 3


@dataclass
class CommandResult:
    stdout: bytes = b""
    stderr: bytes = b""
    exit_code: int = 0


# service command -> its result; supplied by the phone
RunCommand = Callable[[str], CommandResult]


def message(command: int, arg0: int, arg1: int, data: bytes = b"") -> bytes:
    return struct.pack("<6I", command, arg0, arg1, len(data), sum(data) & 0xFFFFFFFF,
                       command ^ 0xFFFFFFFF) + data


def service_output(service: str, run: RunCommand) -> bytes:
    """The bytes a service streams back, framed as that service frames them."""
    kind, _, command = service.partition(":")
    options = kind.split(",")
    if options[0] == "shell" and "v2" in options:
        result = run(command)
        return (_packet(SHELL_STDOUT, result.stdout) + _packet(SHELL_STDERR, result.stderr)
                + _packet(SHELL_EXIT, bytes([result.exit_code & 0xFF])))
    if options[0] in ("shell", "exec"):
        # No shell protocol: adbd puts stderr on the same stream as stdout.
        result = run(command)
        return result.stderr + result.stdout
    return b""  # unknown service: an empty stream that closes at once


def _packet(kind: int, data: bytes) -> bytes:
    return bytes([kind]) + struct.pack("<I", len(data)) + data if data or kind == SHELL_EXIT else b""


@dataclass
class _Stream:
    local_id: int  # ours
    remote_id: int  # the server's
    chunks: deque[bytes] = field(default_factory=deque)


class DeviceConnection:
    """One transport connection from the adb server; runs until the socket closes."""

    def __init__(self, sock: socket.socket, banner: str, run: RunCommand) -> None:
        self.sock = sock
        self.banner = banner
        self.run = run
        self.max_payload = MAX_PAYLOAD
        self._streams: dict[int, _Stream] = {}
        self._next_id = 1
        self._send_lock = threading.Lock()

    def serve(self) -> None:
        try:
            while True:
                command, arg0, arg1, data = self._receive()
                self._handle(command, arg0, arg1, data)
        except (EOFError, OSError):
            pass
        finally:
            self.close()

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def _handle(self, command: int, arg0: int, arg1: int, data: bytes) -> None:
        if command == A_CNXN:
            self.max_payload = max(4096, min(arg1, MAX_PAYLOAD))
            self._send(message(A_CNXN, VERSION, self.max_payload, self.banner.encode()))
        elif command == A_OPEN:
            stream = _Stream(local_id=self._next_id, remote_id=arg0)
            self._next_id += 1
            output = service_output(data.rstrip(b"\0").decode("utf-8", "replace"), self.run)
            for start in range(0, len(output), self.max_payload):
                stream.chunks.append(output[start:start + self.max_payload])
            self._streams[stream.local_id] = stream
            self._send(message(A_OKAY, stream.local_id, stream.remote_id))
            self._send_next(stream)
        elif command == A_OKAY:
            stream = self._streams.get(arg1)
            if stream is not None:
                self._send_next(stream)
        elif command == A_CLSE:
            self._streams.pop(arg1, None)
        # WRTE from the server (stdin) is acknowledged and ignored.
        elif command == A_WRTE:
            stream = self._streams.get(arg1)
            if stream is not None:
                self._send(message(A_OKAY, stream.local_id, stream.remote_id))

    def _send_next(self, stream: _Stream) -> None:
        if stream.chunks:
            self._send(message(A_WRTE, stream.local_id, stream.remote_id, stream.chunks.popleft()))
        elif self._streams.pop(stream.local_id, None) is not None:
            self._send(message(A_CLSE, stream.local_id, stream.remote_id))

    def _send(self, data: bytes) -> None:
        with self._send_lock:
            self.sock.sendall(data)

    def _receive(self) -> tuple[int, int, int, bytes]:
        header = self._exact(24)
        command, arg0, arg1, length, _checksum, magic = struct.unpack("<6I", header)
        if magic != command ^ 0xFFFFFFFF:
            raise EOFError("corrupt ADB message header")
        return command, arg0, arg1, self._exact(length) if length else b""

    def _exact(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data
