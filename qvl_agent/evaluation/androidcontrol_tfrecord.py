"""AndroidControl as Google ships it: GZIP TFRecord shards of ``tf.train.Example`` episodes.

Each record is one episode (google-research/google-research android_control/README.md):
``episode_id`` (int64), ``goal`` (bytes), ``screenshots`` (PNG bytes, one per observation),
``screenshot_widths`` / ``screenshot_heights`` (int64), ``accessibility_trees`` (serialized
``AndroidAccessibilityForest``, one per observation), ``actions`` (JSON strings, one fewer
than the screenshots) and ``step_instructions`` (one per action). Step ``i`` is screenshot
``i`` with action ``i``.

Element boxes come from the step's accessibility forest (:mod:`.accessibility`): every
element's box goes into ``ui_boxes`` (AITW's same-box tap rule), and a click's or long
press's target box is the smallest element box holding the point, as UGround picks it. When
a screenshot's pixels differ from its recorded screen size, the action's point and the boxes
are scaled into the screenshot's pixels.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from pathlib import Path

from qvl_agent.evaluation.accessibility import element_boxes
from qvl_agent.evaluation.episode_splits import episode_key
from qvl_agent.evaluation.episodes import ScrollConvention, androidcontrol_target, step_goal
from qvl_agent.evaluation.grounding_sets import scale_box
from qvl_agent.evaluation.image_sources import ImageStore
from qvl_agent.evaluation.protos import ProtoError, parse_example, text
from qvl_agent.evaluation.records import RecordError, image_size
from qvl_agent.evaluation.samples import (
    DatasetError, Skipped, StepSample, Target, smallest_box_containing,
)
from qvl_agent.evaluation.tfrecord import RecordFault, is_gzip, read_records

TFRECORD_SUFFIXES = (".tfrecord", ".tfrecords", ".gz")
NOT_SHARDS = (".json", ".jsonl", ".md", ".txt", ".parquet", ".png", ".jpg", ".jpeg", ".webp")
MAX_SCREEN_SIDE = 100_000
POINT_ACTIONS = ("click", "long_press")


def tfrecord_shards(source: Path) -> list[Path] | None:
    """The TFRecord shards ``source`` names (a shard, a folder holding them, or a glob pattern
    such as ``android_control-0000*``); None when it names JSON annotations instead."""
    pattern = str(source)
    if any(char in pattern for char in "*?[") and not source.exists():
        files = [Path(p) for p in sorted(glob.glob(pattern)) if Path(p).is_file()]
        if not files:
            raise DatasetError(f"no file matches {pattern}")
        shards = [p for p in files if _is_shard(p)]
        return shards or None
    if source.is_dir():
        return sorted(p for p in source.iterdir() if p.is_file() and _is_shard(p)) or None
    if source.is_file() and _is_shard(source):
        return [source]
    return None


def _is_shard(path: Path) -> bool:
    if path.suffix.lower() in NOT_SHARDS:
        return False
    return (path.suffix.lower() in TFRECORD_SUFFIXES or path.name.startswith("android_control")
            or is_gzip(path))


def read_androidcontrol_tfrecord(shards: list[Path], store: ImageStore, level: str = "high",
                                 scroll: ScrollConvention = "content",
                                 episodes: set[str] | None = None,
                                 ) -> tuple[Iterator[StepSample], list[Skipped]]:
    """The samples of the episodes in ``episodes`` (all when None), read shard by shard as
    they are asked for, and the records and steps skipped so far."""
    skipped: list[Skipped] = []
    return _samples(shards, store, level, scroll, episodes, skipped), skipped


def _samples(shards: list[Path], store: ImageStore, level: str, scroll: ScrollConvention,
             episodes: set[str] | None, skipped: list[Skipped]) -> Iterator[StepSample]:
    for shard in shards:
        for item in read_records(shard):
            if isinstance(item, RecordFault):
                skipped.append(Skipped(where=f"{item.path} record {item.index}",
                                       reason=item.message))
                continue
            index, data = item
            where = f"{shard} record {index}"
            try:
                features = parse_example(data)
            except ProtoError as error:
                skipped.append(Skipped(where=where, reason=str(error)))
                continue
            yield from _episode(features, where, store, level, scroll, episodes, skipped)


def _episode(features: dict[str, list], where: str, store: ImageStore, level: str,
             scroll: ScrollConvention, episodes: set[str] | None,
             skipped: list[Skipped]) -> list[StepSample]:
    ids = features.get("episode_id") or []
    if not ids or not isinstance(ids[0], int):
        skipped.append(Skipped(where=where, reason='no integer "episode_id" feature'))
        return []
    episode = str(ids[0])
    if episodes is not None and episode_key(episode) not in episodes:
        return []
    goal = text(features["goal"][0]) if features.get("goal") else None
    actions = [text(a) for a in features.get("actions", []) if isinstance(a, bytes)]
    if goal is None or not actions:
        reason = 'no "goal" feature' if goal is None else "the episode has no actions"
        skipped.append(Skipped(where=f"{where} (episode {episode})", reason=reason))
        return []
    instructions = [text(i) for i in features.get("step_instructions", []) if isinstance(i, bytes)]
    screenshots = features.get("screenshots", [])
    trees = features.get("accessibility_trees", [])
    widths, heights = features.get("screenshot_widths", []), features.get("screenshot_heights", [])
    samples: list[StepSample] = []
    history: list[Target] = []
    complete = True
    for step, action in enumerate(actions):
        step_where = f"{where} step {step}"
        try:
            if step >= len(screenshots) or not isinstance(screenshots[step], bytes):
                raise RecordError(f"no screenshot for step {step}")
            image = store.put(screenshots[step])
            size = image_size(image)
            screen = _screen(widths, heights, step, size)
            ui_boxes = element_boxes(trees[step], screen) if step < len(trees) else []
            target = androidcontrol_target(action, scroll, [])
            if target.action in POINT_ACTIONS and target.point is not None:
                box = smallest_box_containing(ui_boxes, target.point)
                target = target.model_copy(update={"boxes": [box] if box else []})
            scaled_from = None
            if screen != size:
                target = _rescaled(target, screen, size)
                ui_boxes = [scale_box(b, screen, size) for b in ui_boxes]
                scaled_from = screen
        except (RecordError, ProtoError) as error:
            skipped.append(Skipped(where=step_where, reason=str(error)))
            complete = False
            continue
        samples.append(StepSample(
            id=f"{episode}/{step}", episode=episode, step=step,
            goal=step_goal(goal, instructions, step, level), image=image, target=target,
            history=list(history), ui_boxes=ui_boxes, where=step_where, scaled_from=scaled_from))
        history.append(target)
    if not complete:
        samples = [s.model_copy(update={"episode_complete": False}) for s in samples]
    return samples


def _screen(widths: list, heights: list, step: int, size: tuple[int, int]) -> tuple[int, int]:
    """The screen size the step's actions and boxes are in (the screenshot's, unless recorded)."""
    if step >= len(widths) or step >= len(heights):
        return size
    width, height = widths[step], heights[step]
    if not (isinstance(width, int) and isinstance(height, int)
            and 0 < width <= MAX_SCREEN_SIDE and 0 < height <= MAX_SCREEN_SIDE):
        raise RecordError(f"screenshot size {width}x{height} is not a screen size")
    return width, height


def _rescaled(target: Target, screen: tuple[int, int], size: tuple[int, int]) -> Target:
    sx, sy = size[0] / screen[0], size[1] / screen[1]
    update: dict = {"boxes": [scale_box(b, screen, size) for b in target.boxes]}
    for name in ("point", "point2"):
        point = getattr(target, name)
        if point is not None:
            update[name] = (point[0] * sx, point[1] * sy)
    return target.model_copy(update=update)
