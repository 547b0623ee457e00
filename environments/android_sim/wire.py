"""ADB transport messages: the 24-byte header and its checks (AOSP adb ``protocol.txt``).

Every message is six little-endian uint32s: command, arg0, arg1, data_length, data_check,
magic (= command ^ 0xffffffff), then ``data_length`` bytes. ``data_check`` is named crc32 in
the docs but adb computes a plain byte sum; from protocol version 0x01000001 on, both sides
skip it (send 0), which matters for multi-megabyte screencaps.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

HEADER = struct.Struct("<6I")

CNXN = 0x4E584E43
AUTH = 0x48545541
OPEN = 0x4E45504F
OKAY = 0x59414B4F
CLSE = 0x45534C43
WRTE = 0x45545257
STLS = 0x534C5453
SYNC = 0x434E5953

NAMES = {CNXN: "CNXN", AUTH: "AUTH", OPEN: "OPEN", OKAY: "OKAY", CLSE: "CLSE",
         WRTE: "WRTE", STLS: "STLS", SYNC: "SYNC"}

VERSION_MIN = 0x01000000
VERSION_SKIP_CHECKSUM = 0x01000001
VERSION = VERSION_SKIP_CHECKSUM
MAX_PAYLOAD_V1 = 4 * 1024  # what both sides may send before CNXN has been exchanged
MAX_PAYLOAD = 1024 * 1024  # modern adbd's limit; the server's CNXN may ask for less


class ProtocolError(ConnectionError):
    """The peer sent something that is not an ADB transport message."""


@dataclass(frozen=True)
class Message:
    command: int
    arg0: int
    arg1: int
    data: bytes = b""

    @property
    def name(self) -> str:
        return NAMES.get(self.command, f"0x{self.command:08x}")

    def __repr__(self) -> str:
        preview = self.data[:60]
        more = "..." if len(self.data) > 60 else ""
        return f"{self.name}({self.arg0}, {self.arg1}, {len(self.data)}B {preview!r}{more})"


def checksum(data: bytes) -> int:
    return sum(data) & 0xFFFFFFFF


def encode(message: Message, with_checksum: bool) -> bytes:
    check = checksum(message.data) if with_checksum else 0
    header = HEADER.pack(message.command, message.arg0, message.arg1, len(message.data),
                         check, message.command ^ 0xFFFFFFFF)
    return header + message.data


def read_message(sock: socket.socket, max_payload: int) -> Message:
    """Read one message; EOF raises ConnectionError, a malformed header ProtocolError."""
    command, arg0, arg1, length, check, magic = HEADER.unpack(_read_exact(sock, HEADER.size))
    if magic != command ^ 0xFFFFFFFF:
        raise ProtocolError(f"bad magic in header of command 0x{command:08x}")
    if length > max_payload:
        raise ProtocolError(f"{NAMES.get(command, command)} carries {length} bytes > {max_payload}")
    data = _read_exact(sock, length) if length else b""
    if check and check != checksum(data):
        raise ProtocolError(f"{NAMES.get(command, command)} data checksum mismatch")
    return Message(command, arg0, arg1, data)


def _read_exact(sock: socket.socket, size: int) -> bytes:
    chunks, remaining = [], size
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            raise ConnectionError("the adb server closed the transport")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
