"""Writers of the official dataset files, for the reader tests: written independently of the
readers (their own CRC32C, their own protobuf wire encoder), so a mistake on either side shows.

* TFRecord framing: uint64 length, masked CRC32C of it, data, masked CRC32C of the data
  (tensorflow/python/lib/io/python_io.py), GZIP-compressed as AndroidControl's shards are.
* ``tf.train.Example`` (tensorflow/core/example/{example,feature}.proto): Example.features=1;
  Features.feature=1 (map<string, Feature>: entries of key=1, value=2); Feature.bytes_list=1,
  float_list=2, int64_list=3; each list's value=1, numbers packed (proto3).
* ``AndroidAccessibilityForest`` (android_env/proto/a11y/*.proto): windows=1; window.id=3,
  window_type=6, tree=11; tree.nodes=1; node unique_id=1, bounds_in_screen=2 (left=1, top=2,
  right=3, bottom=4), class_name=3, content_description=4, hint_text=5, text=7,
  is_clickable=14, is_visible_to_user=23, child_ids=25 (packed), tooltip_text=31. Booleans
  are written even when false, as the shipped trees have them.
"""

from __future__ import annotations

import gzip
import io
import struct
from pathlib import Path

from PIL import Image

# -- CRC32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit into a table ------------


def _table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


TABLE = _table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked(data: bytes) -> int:
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def frame(record: bytes) -> bytes:
    length = struct.pack("<Q", len(record))
    return length + struct.pack("<I", masked(length)) + record + struct.pack("<I", masked(record))


def write_shard(path: Path, records: list[bytes], compress: bool = True) -> Path:
    data = b"".join(frame(r) for r in records)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


# -- protobuf wire format ----------------------------------------------------------------------


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int32/int64: two's complement in ten bytes
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def key(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def length_delimited(number: int, payload: bytes) -> bytes:
    return key(number, 2) + varint(len(payload)) + payload


def varint_field(number: int, value: int) -> bytes:
    return key(number, 0) + varint(value)


def example(features: dict[str, list]) -> bytes:
    """A serialized tf.train.Example; a list of bytes is a BytesList, of ints an Int64List,
    of floats a FloatList."""
    entries = b""
    for name, values in features.items():
        if all(isinstance(v, bytes) for v in values):
            feature = length_delimited(1, b"".join(length_delimited(1, v) for v in values))
        elif all(isinstance(v, int) for v in values):
            packed = b"".join(varint(v) for v in values)
            feature = length_delimited(3, length_delimited(1, packed))
        else:
            packed = b"".join(struct.pack("<f", v) for v in values)
            feature = length_delimited(2, length_delimited(1, packed))
        entry = length_delimited(1, name.encode()) + length_delimited(2, feature)
        entries += length_delimited(1, entry)
    return length_delimited(1, entries)


def node(unique_id: int, bounds: tuple[int, int, int, int],
         class_name: str = "android.widget.TextView", text: str = "", description: str = "",
         hint: str = "", tooltip: str = "", visible: bool = True, clickable: bool = False,
         children: tuple[int, ...] = ()) -> bytes:
    rect = b"".join(varint_field(n, v) for n, v in zip((1, 2, 3, 4), bounds))
    out = varint_field(1, unique_id) + length_delimited(2, rect)
    out += length_delimited(3, class_name.encode())
    for number, value in ((4, description), (5, hint), (7, text), (31, tooltip)):
        if value:
            out += length_delimited(number, value.encode())
    out += varint_field(14, int(clickable)) + varint_field(23, int(visible))
    if children:
        out += length_delimited(25, b"".join(varint(c) for c in children))
    return out


def forest(windows: list[list[bytes]]) -> bytes:
    out = b""
    for window_id, nodes in enumerate(windows):
        tree = b"".join(length_delimited(1, n) for n in nodes)
        window = varint_field(3, window_id) + varint_field(6, 1) + length_delimited(11, tree)
        out += length_delimited(1, window)
    return out


# -- images ------------------------------------------------------------------------------------


def png(size: tuple[int, int], colour: str = "white") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def truncated_png(size: tuple[int, int]) -> bytes:
    """A PNG whose header reads fine but whose pixel data is cut off."""
    buffer = io.BytesIO()
    Image.effect_noise(size, 64).convert("RGB").save(buffer, "PNG")
    data = buffer.getvalue()
    return data[: len(data) // 2]
