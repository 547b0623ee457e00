"""Run a model over a dataset: N requests in flight, resumable, audited line by line.

The output directory holds ``eval.json`` (what was asked), ``predictions.jsonl`` (one line
per sample, in input order once finished; appended as samples finish before that, so an
interrupted eval resumes without recomputing) and ``metrics.json``.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from qvl_agent.evaluation.episodes import read_aitz, read_androidcontrol, read_runs, target_from_action
from qvl_agent.evaluation.grounding_sets import read_screenspot
from qvl_agent.evaluation.metrics import grounding_metrics, step_metrics
from qvl_agent.evaluation.predict import ImageError, Prediction, load_image_cached, predict
from qvl_agent.evaluation.progress import Progress
from qvl_agent.evaluation.samples import GroundingSample, Skipped, StepSample
from qvl_agent.evaluation.scorers import STEP_SCORERS, point_in_box
from qvl_agent.geometry import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS
from qvl_agent.jsonl import read_lines
from qvl_agent.models.base import Model
from qvl_agent.trajectory import write_atomically

Format = Literal["screenspot", "screenspot-pro", "aitz", "androidcontrol", "run"]
FORMATS: tuple[str, ...] = ("screenspot", "screenspot-pro", "aitz", "androidcontrol", "run")
GROUNDING_FORMATS = ("screenspot", "screenspot-pro")
CONFIG_FILE, PREDICTIONS_FILE, METRICS_FILE = "eval.json", "predictions.jsonl", "metrics.json"
# Skipped records listed by name in metrics.json (all are counted).
LISTED_SKIPS = 100


class EvalError(ValueError):
    """An eval that cannot start or go on (bad dataset, an out dir from another eval)."""


class EvalConfig(BaseModel):
    format: Format
    annotations: str
    images: str | None = None
    model: str
    min_pixels: int = DEFAULT_MIN_PIXELS
    max_pixels: int = DEFAULT_MAX_PIXELS
    scorer: str = "aitw"  # step formats only
    level: Literal["high", "low"] = "high"  # androidcontrol only
    scroll: Literal["content", "finger"] = "content"  # androidcontrol's scroll convention
    limit: int | None = None

    def identity(self) -> dict[str, Any]:
        """What must match for a resumed eval to reuse earlier predictions."""
        return self.model_dump(exclude={"limit"})


def load_dataset(config: EvalConfig) -> tuple[list[GroundingSample] | list[StepSample], list[Skipped]]:
    annotations = Path(config.annotations)
    images = Path(config.images) if config.images else None
    if config.format in GROUNDING_FORMATS:
        return read_screenspot(annotations, images, pro=config.format == "screenspot-pro")
    if config.format == "aitz":
        samples, skipped = read_aitz(annotations, images)
    elif config.format == "androidcontrol":
        samples, skipped = read_androidcontrol(annotations, images, config.level, config.scroll)
    else:
        samples, skipped = read_runs(annotations)
    if STEP_SCORERS[config.scorer].needs_boxes:
        kept = []
        for sample in samples:
            if sample.target.point is not None and not sample.target.boxes:
                skipped.append(Skipped(where=sample.where, reason=f"no target box, which the "
                                       f"{config.scorer} scorer needs"))
            else:
                kept.append(sample)
        samples = kept
    return samples, skipped


def run_eval(config: EvalConfig, model: Model, out: Path, workers: int = 1,
             progress_stream=None) -> dict[str, Any]:
    """Evaluate; returns the metrics (also written to ``out/metrics.json``)."""
    if config.scorer not in STEP_SCORERS:
        raise EvalError(f"unknown scorer {config.scorer!r}; choose from {', '.join(STEP_SCORERS)}")
    samples, skipped = load_dataset(config)
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
    return metrics


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
                             getattr(sample, "history", None))
    except ImageError as error:
        return {"image": str(sample.image), "skipped": str(error)}
    return {"image": str(sample.image), **score(sample, prediction, config),
            "response": prediction.response, "error": prediction.error,
            "image_size": prediction.image_size, "resized_size": prediction.resized_size,
            "prompt_tokens": prediction.prompt_tokens, "generated_tokens": prediction.generated_tokens,
            "model_ms": prediction.model_ms}


def _score_grounding(sample: GroundingSample, prediction: Prediction, config: EvalConfig) -> dict[str, Any]:
    hit = prediction.point is not None and point_in_box(prediction.point, sample.box)
    return {"instruction": sample.instruction, "split": sample.split, "box": sample.box,
            "point": prediction.point, "predicted_box": prediction.box, "correct": hit}


def _score_step(sample: StepSample, prediction: Prediction, config: EvalConfig) -> dict[str, Any]:
    scorer = STEP_SCORERS[config.scorer]
    predicted = None
    if prediction.action is not None:
        predicted = target_from_action(prediction.action, lambda p: prediction.frame.to_image(*p.model))
    return {"episode": sample.episode, "step": sample.step, "goal": sample.goal,
            "episode_complete": sample.episode_complete,
            "target": sample.target.model_dump(), "predicted": predicted.model_dump() if predicted else None,
            "type_match": scorer.type_match(predicted, sample.target),
            "exact_match": scorer.exact_match(predicted, sample.target, sample, prediction.image_size)}


def _metrics(config: EvalConfig, records: list[dict], skipped: list[Skipped]) -> dict[str, Any]:
    if config.format in GROUNDING_FORMATS:
        figures = grounding_metrics(records, config.format)
    else:
        figures = step_metrics(records, config.scorer)
    late = [Skipped(where=r.get("image", r["id"]), reason=r["skipped"]) for r in records if "skipped" in r]
    every_skip = skipped + late
    return {
        **figures,
        "skipped": len(every_skip),
        "skipped_samples": [str(s) for s in every_skip[:LISTED_SKIPS]],
        "config": {**config.model_dump(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds")},
    }


def _resume(config: EvalConfig, out: Path) -> dict[int, dict]:
    """Earlier predictions of the same eval in ``out``, by sample index."""
    config_path = out / CONFIG_FILE
    if config_path.is_file():
        earlier = json.loads(config_path.read_text(encoding="utf-8"))
        if earlier != config.identity():
            changed = sorted(k for k in config.identity() if earlier.get(k) != config.identity()[k])
            raise EvalError(f"{out} holds an eval with other settings ({', '.join(changed)}); "
                            "use another --out, or delete it to start again")
    else:
        write_atomically(config_path, json.dumps(config.identity(), indent=2))
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

