"""ScreenSpot v1/v2 and ScreenSpot-Pro annotation readers.

* v1/v2 (SeeClick, OS-Atlas): ``img_filename``, ``instruction``, ``bbox`` = [x, y, w, h]
  pixels, ``data_type`` (text/icon), ``data_source`` (ios, android, macos, windows, or a web
  site). Splits: platform (mobile/desktop/web) x type.
* Pro: ``bbox`` = [x1, y1, x2, y2] pixels plus ``img_size``, ``group``, ``application``,
  ``platform``, ``ui_type``. Splits: group, application, ui_type.

Boxes are checked on load (positive size, inside the image): a mirror with another box
convention fails loudly per record instead of scoring silently wrong.
"""

from __future__ import annotations

from pathlib import Path

from qvl_agent.evaluation.records import (
    RecordError, field, image_size, numbers, resolve_image, usable_records,
)
from qvl_agent.evaluation.samples import Box, GroundingSample, Skipped

PLATFORMS = {"ios": "mobile", "android": "mobile", "windows": "desktop", "macos": "desktop"}
# How far (pixels) a box may stick out of its image before the record is refused as mislabelled.
BOX_SLACK = 2.0


def read_screenspot(annotations: Path, images: Path | None, pro: bool = False,
                    ) -> tuple[list[GroundingSample], list[Skipped]]:
    samples: list[GroundingSample] = []
    skipped: list[Skipped] = []
    for file, where, record in usable_records(annotations, skipped):
        try:
            image = resolve_image(field(record, "img_filename", str), images, file)
            samples.append(_sample(record, where, image, pro, len(samples) + len(skipped)))
        except RecordError as error:
            skipped.append(Skipped(where=where, reason=str(error)))
    return samples, skipped


def _sample(record, where: str, image: Path, pro: bool, position: int) -> GroundingSample:
    instruction = field(record, "instruction", str)
    raw = numbers(field(record, "bbox", (list, str)), 4, "bbox")
    if not image.is_file():
        raise RecordError(f"image not found: {image}")
    if pro:
        x1, y1, x2, y2 = raw
        size = tuple(numbers(record["img_size"], 2, "img_size")) if "img_size" in record else image_size(image)
        split = {name: str(record.get(name, "unknown")) for name in ("group", "application", "platform", "ui_type")}
    else:
        x, y, w, h = raw
        x1, y1, x2, y2 = x, y, x + w, y + h
        size = image_size(image)
        source = str(record.get("data_source", "unknown")).lower()
        split = {"platform": PLATFORMS.get(source, "web"), "source": source,
                 "type": str(record.get("data_type", "unknown"))}
    box: Box = (x1, y1, x2, y2)
    _check_box(box, size)
    return GroundingSample(id=str(record.get("id", position)), image=image, instruction=instruction,
                           box=box, split=split, where=where)


def _check_box(box: Box, size: tuple[float, float]) -> None:
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
