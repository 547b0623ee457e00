"""TFRecord files read without TensorFlow: the framing, with both CRCs checked, GZIP or not.

Each record is (tensorflow/python/lib/io/python_io.py, "TFRecords Format Details")::

    uint64 length                    little-endian
    uint32 masked_crc32c(length)     of those 8 bytes
    byte   data[length]
    uint32 masked_crc32c(data)

with ``masked = ((crc >> 15) | (crc << 17)) + 0xa282ead8`` (mod 2**32) and CRC32C the
Castagnoli CRC. A file written with compression ``GZIP`` (as AndroidControl's shards are) is
that byte stream inside one gzip stream; it is recognised by the gzip magic bytes.

A record whose data checksum fails is reported and skipped; one whose length checksum fails,
or a file cut short, ends that file (the framing can no longer be trusted): every problem is a
:class:`RecordFault` naming the file and the record's index, and the caller goes on.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from qvl_agent.evaluation.samples import DatasetError

GZIP_MAGIC = b"\x1f\x8b"
MASK_DELTA = 0xA282EAD8
# A record larger than this is taken for a corrupt length (AndroidControl's largest episodes
# are some tens of megabytes); reading it would only exhaust memory.
MAX_RECORD_BYTES = 1 << 31


@dataclass(frozen=True)
class RecordFault:
    """A record that could not be read; ``fatal`` when the rest of the file is lost too."""

    path: Path
    index: int
    reason: str
    fatal: bool

    @property
    def message(self) -> str:
        return self.reason + ("; the rest of this file is skipped" if self.fatal else "")

    def __str__(self) -> str:
        return f"{self.path} record {self.index}: {self.message}"


def crc32c(data: bytes) -> int:
    try:
        import google_crc32c
    except ImportError:
        raise DatasetError("reading TFRecord files needs google-crc32c: "
                           "pip install 'qvl-agent[eval]'") from None
    return google_crc32c.value(data)


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + MASK_DELTA) & 0xFFFFFFFF


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as file:
        return file.read(2) == GZIP_MAGIC


def read_records(path: Path) -> Iterator[tuple[int, bytes] | RecordFault]:
    """``(index, data)`` for each record of ``path``, or a :class:`RecordFault`."""
    index = 0
    try:
        with (gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")) as stream:
            while True:
                header = _read_exact(stream, 12)
                if not header:
                    return
                if len(header) < 12:
                    yield RecordFault(path, index, "the file ends inside a record header "
                                      "(a truncated download?)", fatal=True)
                    return
                length_bytes, length_crc = header[:8], struct.unpack("<I", header[8:])[0]
                if masked_crc32c(length_bytes) != length_crc:
                    yield RecordFault(path, index, "the length's checksum does not match",
                                      fatal=True)
                    return
                (length,) = struct.unpack("<Q", length_bytes)
                if length > MAX_RECORD_BYTES:
                    yield RecordFault(path, index, f"a record of {length:,} bytes is implausible",
                                      fatal=True)
                    return
                body = _read_exact(stream, length + 4)
                if len(body) < length + 4:
                    yield RecordFault(path, index, "the file ends inside the record "
                                      "(a truncated download?)", fatal=True)
                    return
                data, data_crc = body[:length], struct.unpack("<I", body[length:])[0]
                if masked_crc32c(data) != data_crc:
                    yield RecordFault(path, index, "the data's checksum does not match "
                                      "(a corrupt record)", fatal=False)
                else:
                    yield index, data
                index += 1
    except (OSError, EOFError, zlib.error) as error:  # a damaged gzip stream, an unreadable file
        yield RecordFault(path, index, f"cannot read on: {error}", fatal=True)


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    """``size`` bytes, or fewer only at the end of the stream."""
    chunks, wanted = [], size
    while wanted:
        chunk = stream.read(wanted)
        if not chunk:
            break
        chunks.append(chunk)
        wanted -= len(chunk)
    return b"".join(chunks)
