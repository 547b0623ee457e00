"""Where a sample's screenshot is: a file beside the annotations, or bytes inside the dataset.

Datasets on the Hub and some exports carry the screenshot itself: parquet ``image`` structs
({bytes, path}), base64 strings, ``data:image/...;base64,`` URLs, TFRecord PNG bytes. Those are
decoded here (never taken for file names) and written once, byte for byte, into the eval's
``images/`` folder under a name made from their content, so that the eval, its resume and
``qvl-agent report`` all read a plain file, and a screenshot shared by several records is
stored once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import tempfile
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from qvl_agent.evaluation.records import RecordError, resolve_image

# Leading bytes of the image formats Pillow reads that datasets use, and their suffixes.
IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", ".png"), (b"\xff\xd8\xff", ".jpg"), (b"GIF87a", ".gif"),
               (b"GIF89a", ".gif"), (b"BM", ".bmp"), (b"II*\x00", ".tif"), (b"MM\x00*", ".tif"))
DATA_URL = re.compile(r"data:image/[\w.+-]+;base64,", re.ASCII)
BASE64_TEXT = re.compile(r"[A-Za-z0-9+/=\s]+", re.ASCII)
# Shorter strings are file names: the smallest real PNG is about 70 bytes (96 in base64).
MIN_INLINE_CHARS = 64
# A screenshot inside a zip archive larger than this is refused before it is read.
MAX_ARCHIVED_BYTES = 256 * 1024 * 1024


def image_suffix(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return next((suffix for magic, suffix in IMAGE_MAGIC if data.startswith(magic)), None)


def inline_bytes(value: str) -> bytes | None:
    """The image in a data URL or a base64 string; None when ``value`` is a file name."""
    head = value[:64].lstrip()
    if DATA_URL.match(head):
        payload = value.lstrip()[DATA_URL.match(head).end():]
        try:
            return base64.b64decode(payload, validate=False)
        except (binascii.Error, ValueError):
            raise RecordError("a data URL whose base64 payload does not decode") from None
    if head.startswith("data:"):
        raise RecordError(f"a data URL that is not base64 image data: {value[:40]!r}...")
    if len(value) < MIN_INLINE_CHARS or not BASE64_TEXT.fullmatch(value):
        return None
    try:
        data = base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        return None
    return data if image_suffix(data) else None


class ImageStore:
    """Screenshots that came inline, kept as files named by their content."""

    def __init__(self, directory: Path):
        self.directory = directory

    def put(self, data: bytes) -> Path:
        suffix = image_suffix(data)
        if suffix is None:
            raise RecordError(f"the embedded screenshot ({len(data):,} bytes, starting "
                              f"{data[:8]!r}) is not an image")
        path = self.directory / f"{hashlib.sha256(data).hexdigest()[:24]}{suffix}"
        if not (path.is_file() and path.stat().st_size == len(data)):
            self.directory.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(path.name + ".partial")
            partial.write_bytes(data)
            os.replace(partial, path)  # never a half-written screenshot under the real name
        return path


def temporary_store() -> ImageStore:
    """A store for readers called without an eval directory (the runner passes its own)."""
    return ImageStore(Path(tempfile.mkdtemp(prefix="qvl-eval-images-")))


def locate_image(value: Any, images: Path | None, annotation_file: Path,
                 store: ImageStore) -> Path:
    """The file holding the screenshot that a record's image field names or carries.

    ``value`` is a file name, a base64 string or data URL, raw bytes, or a ``{bytes, path}``
    struct as the Hub's image feature stores it."""
    if isinstance(value, dict):
        data = value.get("bytes")
        if data:
            return locate_image(data, images, annotation_file, store)
        if value.get("path"):
            return locate_image(str(value["path"]), images, annotation_file, store)
        raise RecordError("the image field holds neither bytes nor a path")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return store.put(bytes(value))
    if not isinstance(value, str) or not value.strip():
        raise RecordError(f"the image field is not a file name or image data "
                          f"({type(value).__name__})")
    data = inline_bytes(value)
    if data is not None:
        return store.put(data)
    if images is not None and images.suffix.lower() == ".zip" and images.is_file():
        return store.put(archived_image(images, value))
    image = resolve_image(value, images, annotation_file)
    if not image.is_file():
        raise RecordError(f"image not found: {image}")
    return image


def archived_image(archive: Path, name: str) -> bytes:
    """The bytes of ``name`` inside a zip archive of screenshots (OS-Copilot/ScreenSpot-v2 ships
    ``screenspotv2_image.zip``): the member of that path, else the one of that file name."""
    members = _members(archive, archive.stat().st_mtime_ns)
    member = members.get(name.replace("\\", "/")) or members.get(Path(name).name)
    if member is None:
        raise RecordError(f"image not found: {name} in {archive}")
    if member.file_size > MAX_ARCHIVED_BYTES:
        raise RecordError(f"image {name} in {archive} is {member.file_size:,} bytes, too large")
    try:
        with zipfile.ZipFile(archive) as opened:
            return opened.read(member)
    except (zipfile.BadZipFile, OSError, RuntimeError) as error:
        raise RecordError(f"cannot read {name} from {archive}: {error}") from None


@lru_cache(maxsize=4)
def _members(archive: Path, stamp: int) -> dict[str, zipfile.ZipInfo]:
    """Every file member by its path and by its bare file name (the first of a repeated name)."""
    try:
        with zipfile.ZipFile(archive) as opened:
            infos = [info for info in opened.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, OSError) as error:
        raise RecordError(f"cannot read the archive {archive}: {error}") from None
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        members.setdefault(Path(info.filename).name, info)
    members.update({info.filename: info for info in infos})
    return members
