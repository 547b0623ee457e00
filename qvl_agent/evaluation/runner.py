"""Run a model over a dataset: N requests in flight, resumable, audited line by line.

The output directory holds ``eval.json`` (what was asked), ``predictions.jsonl`` (one line
per sample, in input order once finished; appended as samples finish before that, so an
interrupted eval resumes without recomputing), ``metrics.json``, and ``images/`` when the
dataset carries its screenshots inline (parquet, TFRecord, base64).

The dataset is read and checked by :func:`prepare_eval` before any model is loaded: a dataset
with nothing usable in it fails there, with the reasons, and so does an eval that scored
nothing because every sample's screenshot turned out unreadable.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, model_validator

from qvl_agent.evaluation.androidcontrol_tfrecord import (
    read_androidcontrol_tfrecord, tfrecord_shards,
)
from qvl_agent.evaluation.episode_splits import split_episodes
from qvl_agent.evaluation.episodes import read_aitz, read_androidcontrol, read_runs, target_from_action
from qvl_agent.evaluation.grounding_sets import read_screenspot
from qvl_agent.evaluation.image_sources import ImageStore, temporary_store
from qvl_agent.evaluation.metrics import grounding_metrics, step_metrics
from qvl_agent.evaluation.predict import ImageError, Prediction, load_image_cached, predict
from qvl_agent.evaluation.progress import Progress
from qvl_agent.evaluation.samples import GroundingSample, Skipped, StepSample
from qvl_agent.evaluation.scorers import (
    GROUNDING_SCORER, STEP_SCORERS, default_scorer, describe_grounding, grounding_hit,
)
from qvl_agent.families import DEFAULT_FAMILY, FamilyError, get_family
from qvl_agent.geometry import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS
from qvl_agent.jsonl import read_lines
from qvl_agent.models.base import Model
from qvl_agent.trajectory import write_atomically

Format = Literal["screenspot", "screenspot-pro", "aitz", "androidcontrol", "run"]
FORMATS: tuple[str, ...] = ("screenspot", "screenspot-pro", "aitz", "androidcontrol", "run")
GROUNDING_FORMATS = ("screenspot", "screenspot-pro")
CONFIG_FILE, PREDICTIONS_FILE, METRICS_FILE = "eval.json", "predictions.jsonl", "metrics.json"
IMAGES_DIR = "images"  # screenshots that came inline in the dataset, as files
# Skipped records listed by name in metrics.json (all are counted).
LISTED_SKIPS = 100


class EvalError(ValueError):
    """An eval that cannot start or go on (bad dataset, an out dir from another eval)."""


class NothingToScore(EvalError):
    """A dataset with no usable sample, or an eval whose every sample was skipped: a figure
    over nothing would read as a result, so it is an error that says why."""

    def __init__(self, message: str, skipped: list[Skipped]):
        super().__init__(message)
        self.skipped = skipped


class EvalConfig(BaseModel):
    format: Format
    annotations: str
    images: str | None = None
    model: str
    # The model family whose prompt, frame and parser the eval uses (qvl_agent.families).
    family: str = DEFAULT_FAMILY
    min_pixels: int = DEFAULT_MIN_PIXELS
    max_pixels: int = DEFAULT_MAX_PIXELS
    scorer: str | None = None  # step formats only; None: the format's default (see scorers)
    level: Literal["high", "low"] = "high"  # androidcontrol only
    scroll: Literal["content", "finger"] = "content"  # androidcontrol's scroll convention
    split: str | None = None  # androidcontrol: train, validation or test (splits.json)
    subsplit: str | None = None  # androidcontrol: IDD, app_unseen, ... (test_subsplits.json)
    limit: int | None = None
    # Raised whenever a scorer's rules change, so that a resumed eval never mixes verdicts
    # of old and new rules (the saved settings then differ, and the eval says so).
    scoring_rules: int = 2

    @model_validator(mode="after")
    def _resolve_scorer(self) -> "EvalConfig":
        if self.scorer is None:
            self.scorer = default_scorer(self.format)
        return self

    def identity(self) -> dict[str, Any]:
        """What must match for a resumed eval to reuse earlier predictions."""
        identity = self.model_dump(exclude={"limit"})
        for name in ("split", "subsplit"):  # unset: as evals written before they existed
            if identity[name] is None:
                del identity[name]
        return identity


Dataset = tuple[list[GroundingSample] | list[StepSample], list[Skipped]]


def load_dataset(config: EvalConfig, images_dir: Path | None = None) -> Dataset:
    """The samples (at most ``config.limit``) and the records skipped while reading them.
    Inline screenshots are written to ``images_dir``."""
    annotations = Path(config.annotations)
    images = Path(config.images) if config.images else None
    store = ImageStore(images_dir) if images_dir is not None else temporary_store()
    if (config.split or config.subsplit) and config.format != "androidcontrol":
        raise EvalError("--split and --subsplit choose AndroidControl episodes "
                        "(--format androidcontrol)")
    if config.format in GROUNDING_FORMATS:
        pro = config.format == "screenspot-pro"
        samples, skipped = read_screenspot(annotations, images, pro, store)
    elif config.format == "aitz":
        samples, skipped = read_aitz(annotations, images, store)
    elif config.format == "androidcontrol":
        shards = tfrecord_shards(annotations)
        folder = (shards[0].parent if shards
                  else annotations if annotations.is_dir() else annotations.parent)
        episodes = split_episodes(folder, config.split, config.subsplit)
        if shards:
            samples, skipped = read_androidcontrol_tfrecord(shards, store, config.level,
                                                            config.scroll, episodes)
        else:
            samples, skipped = read_androidcontrol(annotations, images, config.level, config.scroll,
                                                   store, episodes)
    else:
        samples, skipped = read_runs(annotations)
    needs_boxes = config.format not in GROUNDING_FORMATS and STEP_SCORERS[config.scorer].needs_boxes
    kept: list = []
    for sample in samples:  # readers of large files read as far as this loop asks
        if needs_boxes and sample.target.point is not None and not sample.target.boxes:
            skipped.append(Skipped(where=sample.where, reason=f"no target box, which the "
                                   f"{config.scorer} scorer needs"))
            continue
        kept.append(sample)
        if config.limit is not None and len(kept) >= config.limit:
            break
    return kept, skipped


def prepare_eval(config: EvalConfig, out: Path) -> Dataset:
    """Read and check the dataset (annotations, each screenshot's header) before any model is
    loaded. Raises :class:`NothingToScore` when no sample is usable, with the reasons."""
    if config.format in GROUNDING_FORMATS:
        if config.scorer != GROUNDING_SCORER:
            raise EvalError(f"--scorer is for step formats; {config.format} is scored by "
                            "whether the point is in the target box")
    elif config.scorer not in STEP_SCORERS:
        raise EvalError(f"unknown scorer {config.scorer!r}; choose from {', '.join(STEP_SCORERS)}")
    _check_out(config, out, ignore=("model",))  # the model is checked once it is loaded
    samples, skipped = load_dataset(config, out / IMAGES_DIR)
    _check_family(config, samples)
    if not samples:
        chosen = "".join(f" {option} {value}" for option, value in
                         (("--split", config.split), ("--subsplit", config.subsplit)) if value)
        if skipped:
            more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
            message = (f"nothing to score in {config.annotations}{chosen}: all {len(skipped)} "
                       f"records were skipped; {skipped[0]}{more}")
        else:
            message = f"nothing to score in {config.annotations}{chosen}: it holds no records"
        raise NothingToScore(message, skipped)
    return samples, skipped


def run_eval(config: EvalConfig, model: Model, out: Path, workers: int = 1,
             progress_stream=None, dataset: Dataset | None = None) -> dict[str, Any]:
    """Evaluate; returns the metrics (also written to ``out/metrics.json``). ``dataset`` is
    what :func:`prepare_eval` returned, when the caller checked it before loading the model.
    Raises :class:`NothingToScore` (after writing the metrics) when every sample was skipped."""
    samples, skipped = dataset if dataset is not None else prepare_eval(config, out)
    if config.limit is not None:
        samples = samples[: config.limit]
    out.mkdir(parents=True, exist_ok=True)
    done = _resume(config, out)
    score = _score_grounding if config.format in GROUNDING_FORMATS else _score_step
    todo = [(i, s) for i, s in enumerate(samples) if i not in done]
    progress = Progress(len(samples), done=len(samples) - len(todo), stream=progress_stream)
    lock = threading.Lock()
    with open(out / PREDICTIONS_FILE, "a", encoding="utf-8") as sink:
        def evaluate(index: int, sample) -> None:
            record = {"index": index, "id": sample.id, **_evaluate(sample, config, model, score)}
            with lock:
                sink.write(json.dumps(record, ensure_ascii=False) + "\n")
                sink.flush()
                done[index] = record
            progress.advance()

        _run_all(evaluate, todo, workers)
    progress.close()
    records = [done[i] for i in range(len(samples)) if i in done]
    write_atomically(out / PREDICTIONS_FILE, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    metrics = _metrics(config, records, skipped)
    write_atomically(out / METRICS_FILE, json.dumps(metrics, indent=2, ensure_ascii=False))
    if not metrics.get("n"):
        late = [r for r in records if "skipped" in r]
        first = f"; {_late_skip(late[0])}" if late else ""
        raise NothingToScore(f"nothing was scored: all {len(records)} samples were skipped{first} "
                             f"(every reason is in {out / METRICS_FILE})",
                             _all_skips(records, skipped))
    return metrics


def _check_family(config: EvalConfig, samples: list) -> None:
    """The family must have an agent prompt for every step sample's action space."""
    try:
        family = get_family(config.family)
        if config.format not in GROUNDING_FORMATS:
            for space in sorted({getattr(s, "space", "computer") for s in samples}):
                family.check_space(space)
    except FamilyError as error:
        raise EvalError(str(error)) from None


def _run_all(evaluate, todo: list, workers: int) -> None:
    """At most ``workers`` samples in flight; on an error or Ctrl-C, finish nothing new."""
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="qvl-eval") as pool:
        pending: set[Future] = set()
        queue = iter(todo)
        try:
            for index, sample in queue:
                pending.add(pool.submit(evaluate, index, sample))
                if len(pending) >= workers:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        future.result()
            for future in pending:
                future.result()
        except BaseException:
            for future in pending:
                future.cancel()
            raise


def _evaluate(sample, config: EvalConfig, model: Model, score) -> dict[str, Any]:
    space = getattr(sample, "space", "computer")
    goal = getattr(sample, "goal", None) or sample.instruction
    try:
        image = load_image_cached(sample.image)
        prediction = predict(model, image, goal, space, config.min_pixels, config.max_pixels,
                             getattr(sample, "history", None), family=config.family,
                             grounding=config.format in GROUNDING_FORMATS)
    except ImageError as error:  # e.g. a screenshot whose header was fine but whose data is not
        record = {"image": str(sample.image), "where": sample.where, "skipped": str(error)}
        if isinstance(sample, StepSample):  # its episode is then left out of episode figures
            record.update(episode=sample.episode, step=sample.step, episode_complete=False)
        return record
    scaled = {"scaled_from": sample.scaled_from} if sample.scaled_from else {}
    return {"image": str(sample.image), **scaled, **score(sample, prediction, config),
            "response": prediction.response, "error": prediction.error,
            "image_size": prediction.image_size, "resized_size": prediction.resized_size,
            "prompt_tokens": prediction.prompt_tokens, "generated_tokens": prediction.generated_tokens,
            "model_ms": prediction.model_ms}


def _score_grounding(sample: GroundingSample, prediction: Prediction, config: EvalConfig) -> dict[str, Any]:
    # The answer in pixels of the image the model saw, whatever its family's frame (0-1000...).
    answered = prediction.model_point
    seen = prediction.frame.to_resized(*answered) if answered is not None else None
    hit = grounding_hit(seen, prediction.resized_size, sample.box, prediction.image_size)
    return {"instruction": sample.instruction, "split": sample.split, "box": sample.box,
            "point": prediction.point, "predicted_box": prediction.box, "correct": hit}


def _score_step(sample: StepSample, prediction: Prediction, config: EvalConfig) -> dict[str, Any]:
    scorer = STEP_SCORERS[config.scorer]
    predicted = None
    if prediction.action is not None:
        predicted = target_from_action(prediction.action, lambda p: prediction.frame.to_image(*p.model))
        if prediction.box is not None:  # the box the model answered (aitz judges a click by it)
            predicted = predicted.model_copy(update={"boxes": [prediction.box]})
    return {"episode": sample.episode, "step": sample.step, "goal": sample.goal,
            "episode_complete": sample.episode_complete,
            "target": sample.target.model_dump(), "predicted": predicted.model_dump() if predicted else None,
            "type_match": scorer.type_match(predicted, sample.target),
            "exact_match": scorer.exact_match(predicted, sample.target, sample, prediction.image_size)}


def _metrics(config: EvalConfig, records: list[dict], skipped: list[Skipped]) -> dict[str, Any]:
    every_skip = _all_skips(records, skipped)
    if config.format in GROUNDING_FORMATS:
        figures = grounding_metrics(records, config.format, describe_grounding(), len(every_skip))
    else:
        figures = step_metrics(records, STEP_SCORERS[config.scorer].describe())
    return {
        **figures,
        "skipped": len(every_skip),
        "skipped_samples": [str(s) for s in every_skip[:LISTED_SKIPS]],
        # Samples whose screenshot is another size than their annotation's screen: their boxes
        # and points were scaled into the screenshot's pixels.
        "scaled_annotations": sum(1 for r in records if r.get("scaled_from")),
        "config": {**config.model_dump(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds")},
    }


def _all_skips(records: list[dict], skipped: list[Skipped]) -> list[Skipped]:
    return skipped + [_late_skip(r) for r in records if "skipped" in r]


def _late_skip(record: dict) -> Skipped:
    """A sample skipped while it was evaluated (its screenshot would not decode)."""
    return Skipped(where=record.get("where") or record.get("image", record["id"]),
                   reason=record["skipped"])


def _check_out(config: EvalConfig, out: Path, ignore: tuple[str, ...] = ()) -> bool:
    """Whether ``out`` already holds this eval; an error when it holds another one."""
    config_path = out / CONFIG_FILE
    if not config_path.is_file():
        return False
    try:
        earlier = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise EvalError(f"{config_path} cannot be read ({error}); use another --out, or delete "
                        "it to start again") from None
    if not isinstance(earlier, dict):
        raise EvalError(f"{config_path} is not an eval's settings; use another --out")
    identity = config.identity()
    changed = sorted(k for k in {*identity, *earlier} - set(ignore)
                     if earlier.get(k) != identity.get(k))
    if changed:
        raise EvalError(f"{out} holds an eval with other settings ({', '.join(changed)}); "
                        "use another --out, or delete it to start again")
    return True


def _resume(config: EvalConfig, out: Path) -> dict[int, dict]:
    """Earlier predictions of the same eval in ``out``, by sample index."""
    if not _check_out(config, out):
        write_atomically(out / CONFIG_FILE, json.dumps(config.identity(), indent=2))
    done: dict[int, dict] = {}
    predictions = out / PREDICTIONS_FILE
    if predictions.is_file():
        for _, line in read_lines(predictions):
            try:
                record = json.loads(line)  # None (not UTF-8) raises TypeError
                done[int(record["index"])] = record
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue  # a line torn by an interruption is simply computed again
        # Drop torn lines now, so that new lines are not appended to half of one.
        write_atomically(predictions, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in done.values()))
    return done

