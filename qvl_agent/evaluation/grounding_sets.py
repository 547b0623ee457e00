"""ScreenSpot v1/v2 and ScreenSpot-Pro readers: the JSON files and the Hub's parquet files.

Record layouts, and the box convention each one uses:

* v1/v2 JSON (SeeClick, OS-Atlas ``OS-Copilot/ScreenSpot-v2``) and the ``lmms-lab/ScreenSpot-v2``
  parquet: ``img_filename``, ``instruction``, ``bbox`` = [x, y, w, h] pixels, ``data_type``
  (text/icon), ``data_source`` (ios, android, macos, windows, or a web site).
* ``rootsautomation/ScreenSpot`` and ``HongxinLi/ScreenSpot_v2`` parquet: ``file_name``
  instead of ``img_filename``, and ``bbox`` = [x1, y1, x2, y2] normalised to 0-1.
* Pro JSON (``likaixin/ScreenSpot-Pro`` annotations/*.json) and the ``lmms-lab/ScreenSpot-Pro``
  parquet: ``bbox`` = [x1, y1, x2, y2] pixels of ``img_size`` = [W, H], plus ``group``,
  ``application``, ``platform``, ``ui_type``.

The parquet files embed the screenshot (an ``image`` struct {bytes, path}); JSON records name
a file, or carry the image inline (base64 or a data URL). Every box ends up as (x1, y1, x2, y2)
in the screenshot's own pixels: a normalised box is multiplied by the image's size, and a Pro
box whose screenshot was downscaled from ``img_size`` is scaled into the image by the same
factor (the point the model answers is then compared in the pixels it saw). Boxes are checked
on load (positive size, inside the image, the magnitude its convention implies), so a mirror
with another convention fails loudly per record instead of scoring silently wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from qvl_agent.evaluation.image_sources import ImageStore, locate_image, temporary_store
from qvl_agent.evaluation.records import (
    ANNOTATION_SUFFIXES, RecordError, annotation_files, field, image_size, numbers,
    usable_records,
)
from qvl_agent.evaluation.samples import Box, GroundingSample, Skipped

PLATFORMS = {"ios": "mobile", "android": "mobile", "windows": "desktop", "macos": "desktop"}
# How far (pixels) a box may stick out of its image before the record is refused as mislabelled.
BOX_SLACK = 2.0
# How far a downscaled screenshot's shape may differ from its img_size's (rounding of the sides).
SHAPE_TOLERANCE = 0.01
GROUNDING_SUFFIXES = (*ANNOTATION_SUFFIXES, ".parquet")

BoxLayout = Literal["xywh", "xyxy", "xyxy-normalised"]


def read_screenspot(annotations: Path, images: Path | None, pro: bool = False,
                    store: ImageStore | None = None,
                    ) -> tuple[Iterator[GroundingSample], list[Skipped]]:
    """The samples, read as they are asked for, and the records skipped so far (the list
    fills while the samples are read)."""
    files = annotation_files(annotations, GROUNDING_SUFFIXES)
    store = store or temporary_store()
    skipped: list[Skipped] = []
    return _samples(files, images, pro, store, skipped), skipped


def _samples(files: list[Path], images: Path | None, pro: bool, store: ImageStore,
             skipped: list[Skipped]) -> Iterator[GroundingSample]:
    position = 0
    for file in files:
        if file.suffix == ".parquet":
            from qvl_agent.evaluation.parquet_rows import parquet_rows

            rows = parquet_rows(file, skipped)
        else:
            rows = ((file, where, record, None)
                    for file, where, record in usable_records(file, skipped))
        for file_, where, record, columns in rows:
            try:
                image = locate_image(_image_field(record), images, file_, store)
                yield _sample(record, where, image, _layout(pro, columns), pro, position)
            except RecordError as error:
                skipped.append(Skipped(where=where, reason=str(error)))
            position += 1


def _image_field(record: Any) -> Any:
    """The embedded image when there is one, else the file name."""
    if isinstance(record, dict) and record.get("image") is not None:
        return record["image"]
    for name in ("img_filename", "file_name"):
        if isinstance(record, dict) and record.get(name) is not None:
            return record[name]
    return field(record, "img_filename", str)  # raises: missing, or not a JSON object


def _layout(pro: bool, columns: set[str] | None) -> BoxLayout:
    if pro:
        return "xyxy"
    if columns is not None and "file_name" in columns and "img_filename" not in columns:
        return "xyxy-normalised"  # rootsautomation/ScreenSpot, HongxinLi/ScreenSpot_v2
    return "xywh"


def _sample(record: Any, where: str, image: Path, layout: BoxLayout, pro: bool,
            position: int) -> GroundingSample:
    instruction = field(record, "instruction", str)
    raw = numbers(field(record, "bbox", (list, str)), 4, "bbox")
    size = image_size(image)
    box = _in_pixels(raw, layout, size)
    scaled_from = None
    if pro and record.get("img_size") is not None:
        annotated = tuple(numbers(record["img_size"], 2, "img_size"))
        if annotated != size:
            box, scaled_from = scale_box(box, annotated, size), annotated
    if pro:
        split = {name: str(record.get(name) or "unknown")
                 for name in ("group", "application", "platform", "ui_type")}
    else:
        source = str(record.get("data_source") or "unknown").lower()
        split = {"platform": PLATFORMS.get(source, "web"), "source": source,
                 "type": str(record.get("data_type") or "unknown")}
    check_box(box, size)
    return GroundingSample(id=str(record.get("id", position)), image=image, instruction=instruction,
                           box=box, split=split, where=where, scaled_from=scaled_from)


def _in_pixels(raw: list[float], layout: BoxLayout, size: tuple[int, int]) -> Box:
    width, height = size
    if layout == "xyxy-normalised":
        if not all(-0.001 <= v <= 1.001 for v in raw):
            raise RecordError(f"bbox {raw} is not normalised to 0-1, as this layout's boxes are "
                              "(a file_name column: rootsautomation/ScreenSpot's layout)")
        return raw[0] * width, raw[1] * height, raw[2] * width, raw[3] * height
    if max(raw) <= 1.0 and width * height > 4:
        raise RecordError(f"bbox {raw} looks normalised to 0-1, but this layout's boxes are "
                          "in pixels")
    if layout == "xywh":
        x, y, w, h = raw
        return x, y, x + w, y + h
    return raw[0], raw[1], raw[2], raw[3]


def scale_box(box: Box, annotated: tuple[float, float], size: tuple[int, int]) -> Box:
    """``box`` in pixels of an ``annotated`` = (W, H) screen, mapped into an image of ``size``
    (the same screen, resized). A different shape is a different picture: refused."""
    (aw, ah), (width, height) = annotated, size
    if aw <= 0 or ah <= 0:
        raise RecordError(f"img_size {[aw, ah]} is not a size")
    sx, sy = width / aw, height / ah
    if abs(sx - sy) > SHAPE_TOLERANCE * max(sx, sy):
        raise RecordError(f"the image is {width}x{height} but the annotation's size is "
                          f"{aw:g}x{ah:g}, another shape (cropped, or the wrong image?)")
    return box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy


def check_box(box: Box, size: tuple[float, float]) -> None:
    x1, y1, x2, y2 = box
    width, height = size
    if x2 <= x1 or y2 <= y1:
        raise RecordError(f"bbox {list(box)} has no area (is it in the other box convention?)")
    if x1 < -BOX_SLACK or y1 < -BOX_SLACK or x2 > width + BOX_SLACK or y2 > height + BOX_SLACK:
        raise RecordError(f"bbox {list(box)} lies outside the {width:g}x{height:g} image")


# Splits whose cells are averaged for the unweighted (macro) mean, per format.
MACRO_CELLS = {"screenspot": ("platform", "type"), "screenspot-pro": ("group", "ui_type")}
REPORTED_SPLITS = {
    "screenspot": (("platform", "type"), ("platform",), ("type",)),
    "screenspot-pro": (("group",), ("application",), ("ui_type",), ("group", "ui_type"), ("platform",)),
}
