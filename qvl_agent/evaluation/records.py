"""Reading annotation files record by record, so one bad record never stops a dataset.

An annotation source is a ``.json`` file (a list of records, or one record), a ``.jsonl``
file (one record per line), or a directory tree of them (read in path order). Each record comes
with where it is, "FILE:LINE" or "FILE record N", for error messages.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from qvl_agent.evaluation.samples import DatasetError, Skipped
from qvl_agent.imaging import MAX_DECODED_PIXELS
from qvl_agent.jsonl import NOT_UTF8, read_lines

ANNOTATION_SUFFIXES = (".json", ".jsonl")


def annotation_files(source: Path, suffixes: tuple[str, ...] = ANNOTATION_SUFFIXES) -> list[Path]:
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.suffix in suffixes and p.is_file())
        if not files:
            raise DatasetError(f"{source} holds no {' or '.join(suffixes)} annotation files")
        return files
    if source.is_file():
        return [source]
    raise DatasetError(f"annotation file or directory not found: {source}")


def read_records(source: Path) -> Iterator[tuple[Path, str, Any] | Skipped]:
    """``(file, where, record)`` for each record, or a :class:`Skipped` for one that is not JSON."""
    for path in annotation_files(source):
        if path.suffix == ".jsonl":
            for number, line in read_lines(path):
                if line is None:
                    yield Skipped(where=f"{path}:{number}", reason=NOT_UTF8)
                    continue
                try:
                    yield path, f"{path}:{number}", json.loads(line)
                except json.JSONDecodeError as error:
                    yield Skipped(where=f"{path}:{number}", reason=f"not valid JSON ({error.msg})")
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            yield Skipped(where=str(path), reason="not UTF-8 text; file skipped")
            continue
        except json.JSONDecodeError as error:
            yield Skipped(where=f"{path}:{error.lineno}", reason=f"not valid JSON ({error.msg}); file skipped")
            continue
        for number, record in enumerate(data if isinstance(data, list) else [data]):
            yield path, f"{path} record {number}", record


def usable_records(source: Path, skipped: list[Skipped]) -> Iterator[tuple[Path, str, Any]]:
    """:func:`read_records` with the unreadable ones added to ``skipped``."""
    for item in read_records(source):
        if isinstance(item, Skipped):
            skipped.append(item)
        else:
            yield item


def image_size(path: Path) -> tuple[int, int]:
    """Width and height from the image header (the pixels are not decoded): the cheap check,
    before any model loads, that a record's screenshot is there and is an image."""
    try:
        with warnings.catch_warnings():  # Pillow warns past 89 MP; MAX_DECODED_PIXELS decides
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise RecordError(f"cannot read image {path}: {error}") from None
    if width * height > MAX_DECODED_PIXELS:
        raise RecordError(f"image {path} is {width}x{height}, more than the "
                          f"{MAX_DECODED_PIXELS:,} pixels this program decodes")
    return width, height


def resolve_image(name: str, images: Path | None, annotation_file: Path) -> Path:
    """Where an annotation's image file is: under ``images``, else beside the annotation
    file; as named, then by its bare file name. The first candidate when none exists, for
    the error message."""
    base = images if images is not None else annotation_file.parent
    candidates = [base / name, base / Path(name).name]
    return next((c for c in candidates if c.is_file()), candidates[0])


class RecordError(ValueError):
    """One record that cannot be used; becomes a :class:`Skipped` with its location."""


def field(record: Any, name: str, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(record, dict):
        raise RecordError(f"expected a JSON object, got {type(record).__name__}")
    if name not in record:
        raise RecordError(f'missing field "{name}"')
    value = record[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise RecordError(f'field "{name}" has the wrong type ({type(value).__name__})')
    return value


def numbers(value: Any, count: int, name: str) -> list[float]:
    """``value`` as ``count`` numbers; JSON strings such as "[0.5, 0.2]" are accepted."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise RecordError(f'field "{name}" is not a list of numbers: {value!r}') from None
    if isinstance(value, tuple):
        value = list(value)
    if (not isinstance(value, list) or len(value) != count
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        raise RecordError(f'field "{name}" must hold {count} numbers, got {_shown(value)}')
    if not all(math.isfinite(v) for v in value):  # JSON allows NaN and Infinity
        raise RecordError(f'field "{name}" holds a number that is not finite: {value}')
    return [float(v) for v in value]


def _shown(value: Any) -> str:
    try:
        return json.dumps(value)[:200]
    except (TypeError, ValueError):
        return repr(value)[:200]
