"""The commands that work on saved screens and records: ``eval``, ``ground``, ``report``,
``replay``. Registered on the main ``qvl-agent`` parser by :mod:`qvl_agent.cli`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from qvl_agent.cli import (
    CliError, confirm_from_args, device_from_args, device_options, family_from_args,
    model_from_args, model_options, pixel_options, watch_from_cli,
)
from qvl_agent.geometry import aspect_problem
from qvl_agent.watch import watch_options


def register(commands) -> None:
    evaluate = commands.add_parser("eval", help="score a model on a grounding set or recorded episodes")
    evaluate.add_argument("--format", required=True,
                          choices=("screenspot", "screenspot-pro", "aitz", "androidcontrol", "run"),
                          help="the annotations' format (see README 'Evaluation')")
    evaluate.add_argument("--annotations", required=True, type=Path,
                          help="annotation file or directory: JSON/JSONL, the Hub's parquet files, "
                          "AndroidControl's TFRecord shards (a folder or a quoted glob); for "
                          "--format run: run directories")
    evaluate.add_argument("--images", type=Path, default=None,
                          help="image folder (default: beside the annotation files)")
    evaluate.add_argument("--out", required=True, type=Path,
                          help="output directory; rerunning the same eval there resumes it")
    evaluate.add_argument("--scorer", default=None,
                          choices=("aitw", "aitz", "strict", "norm1000", "box"),
                          help="step formats: how a step is judged (default aitw for aitz and "
                          "androidcontrol, strict for run; see README 'Evaluation')")
    evaluate.add_argument("--level", default="high", choices=("high", "low"),
                          help="androidcontrol: low adds each step's instruction to the goal")
    evaluate.add_argument("--scroll", default="content", choices=("content", "finger"),
                          help="androidcontrol: what a scroll's direction names (default content, "
                          "i.e. 'down' = the finger moves up)")
    evaluate.add_argument("--split", default=None,
                          help="androidcontrol: only the episodes of this split in splits.json "
                          "(train, validation, test)")
    evaluate.add_argument("--subsplit", default=None,
                          help="androidcontrol: only the test episodes of this sub-split in "
                          "test_subsplits.json (IDD, app_unseen, task_unseen, category_unseen)")
    evaluate.add_argument("--limit", type=int, default=None, help="only the first N samples")
    evaluate.add_argument("--workers", type=int, default=1, help="samples in flight at once")
    model_options(evaluate)
    pixel_options(evaluate)
    evaluate.set_defaults(handler=_eval)

    ground = commands.add_parser("ground", help="ask where one described element is on an image")
    ground.add_argument("image", type=Path)
    ground.add_argument("description", help='e.g. "the Submit button"')
    ground.add_argument("--space", choices=("computer", "mobile"), default=None,
                        help="ask with the family's agent prompt for this action space instead "
                        "of its grounding prompt (qwen2.5-vl's is the computer one)")
    ground.add_argument("--save", type=Path, default=None, help="write the image with the point drawn")
    model_options(ground)
    pixel_options(ground)
    ground.set_defaults(handler=_ground)

    report = commands.add_parser("report", help="write a self-contained HTML page of a run or an eval")
    report.add_argument("directory", type=Path, help="a run directory or an eval --out directory")
    report.add_argument("--out", type=Path, default=None, help="HTML file (default DIRECTORY/report.html)")
    report.set_defaults(handler=_report)

    replay = commands.add_parser("replay", help="re-execute a recorded run's actions on a device")
    replay.add_argument("run_dir", type=Path)
    device_options(replay, dry_run_help="compare screens, never act")
    replay.add_argument("--threshold", type=float, default=0.05,
                        help="a step whose screen differs more than this (0-1) counts as diverged")
    replay.add_argument("--out", type=Path, default=None, help="write the per-step report as JSON")
    watch_options(replay)
    replay.set_defaults(handler=_replay)


# -- eval -----------------------------------------------------------------------------------------


def _eval(args: argparse.Namespace) -> int:
    from qvl_agent.evaluation.runner import (
        EvalConfig, EvalError, NothingToScore, prepare_eval, run_eval,
    )
    from qvl_agent.evaluation.samples import DatasetError
    from qvl_agent.models import ModelError

    if args.workers < 1:
        raise CliError("--workers must be at least 1")
    if args.limit is not None and args.limit < 1:
        raise CliError("--limit must be at least 1")
    family = family_from_args(args)
    config = EvalConfig(format=args.format, annotations=str(args.annotations),
                        images=str(args.images) if args.images else None, model=args.model,
                        family=family.name, min_pixels=args.min_pixels or family.min_pixels,
                        max_pixels=args.max_pixels or family.max_pixels, scorer=args.scorer,
                        level=args.level, scroll=args.scroll, split=args.split,
                        subsplit=args.subsplit, limit=args.limit)
    try:  # the dataset first: a broken one is found before a model takes minutes to load
        dataset = prepare_eval(config, args.out)
    except NothingToScore as error:
        _print_skips(error.skipped)
        raise CliError(str(error)) from None
    except (EvalError, DatasetError) as error:
        raise CliError(str(error)) from None
    samples, skipped = dataset
    print(f"dataset: {len(samples)} samples, {len(skipped)} records skipped", file=sys.stderr)
    model = model_from_args(args, family)
    # model.name says which endpoint served a model name, e.g. endpoint:NAME@URL.
    config = config.model_copy(update={"model": model.name})
    try:
        metrics = run_eval(config, model, args.out, workers=args.workers, dataset=dataset)
    except NothingToScore as error:
        _print_skips(error.skipped)
        raise CliError(str(error)) from None
    except (EvalError, DatasetError) as error:
        raise CliError(str(error)) from None
    except ModelError as error:
        raise CliError(f"the model failed: {error}; finished samples are kept in {args.out}, "
                       "rerun the same command to resume") from None
    except KeyboardInterrupt:
        print(f"\ninterrupted; finished samples are kept in {args.out}: rerun the same command "
              "to resume", file=sys.stderr)
        return 130
    for skip in metrics["skipped_samples"]:
        print(f"skipped {skip}", file=sys.stderr)
    print(summary_line(metrics))
    print(scorer_line(metrics["scorer"]))
    print(f"metrics: {args.out / 'metrics.json'}")
    return 0


def _print_skips(skipped, listed: int = 20) -> None:
    for skip in skipped[:listed]:
        print(f"skipped {skip}", file=sys.stderr)
    if len(skipped) > listed:
        print(f"... and {len(skipped) - listed} more", file=sys.stderr)


def summary_line(metrics: dict) -> str:
    def percent(value):
        return "-" if value is None else f"{100 * value:.1f}%"

    if "accuracy" in metrics:
        return (f"accuracy {percent(metrics['accuracy'])} (pooled) "
                f"[{metrics['scorer']['name']}], "
                f"{percent(metrics['macro_accuracy'])} ({metrics['macro_accuracy_is']}); "
                f"n={metrics['n']}, wrong format {metrics['wrong_format']}, skipped {metrics['skipped']}")
    episodes = metrics["episodes"]
    return (f"type match {percent(metrics['type_match'])}, exact match {percent(metrics['exact_match'])} "
            f"[{metrics['scorer']['name']}]; episode success {percent(episodes['success_rate'])} "
            f"over {episodes['n']}; n={metrics['n']}, skipped {metrics['skipped']}")


def scorer_line(scorer: dict) -> str:
    """Which rules produced the figures: the reference transcribed, or ours."""
    if "reference" not in scorer:
        return f"scorer {scorer['name']}: our own rules"
    where = f"{scorer['reference']} {scorer['path']} @ {scorer['commit'][:12]}"
    variant = "; variant noted in metrics.json" if "variant" in scorer else ""
    return f"scorer {scorer['name']}: {where}{variant}"


# -- ground ---------------------------------------------------------------------------------------


def _ground(args: argparse.Namespace) -> int:
    from qvl_agent.evaluation.predict import ImageError, load_image, predict
    from qvl_agent.families import FamilyError
    from qvl_agent.models import ModelError

    try:
        image = load_image(args.image)
    except ImageError as error:
        raise CliError(str(error)) from None
    if (problem := aspect_problem(*image.size)) is not None:
        raise CliError(f"{args.image}: {problem}")
    family = family_from_args(args)
    model = model_from_args(args, family)
    try:
        prediction = predict(model, image, args.description, args.space or "computer",
                             args.min_pixels, args.max_pixels, family=family,
                             grounding=args.space is None)
    except ModelError as error:
        raise CliError(f"the model failed: {error}") from None
    except (FamilyError, ImageError) as error:
        raise CliError(str(error)) from None
    out = {"image": str(args.image), "size": list(prediction.image_size),
           "resized": list(prediction.resized_size), "family": family.name,
           "response": prediction.response}
    if prediction.point is None:
        reason = prediction.error or "; ".join(prediction.notes) or (
            f"the answer ({prediction.action.action}) has no point" if prediction.action
            else "the answer has no point")
        print(json.dumps({**out, "error": reason}, ensure_ascii=False))
        return 1
    if prediction.action is not None:  # grounding-only families answer a point, no action
        out["action"] = prediction.action.action
    out["point"] = [round(v, 1) for v in prediction.point]
    if prediction.box is not None:
        out["box"] = [round(v, 1) for v in prediction.box]
    if args.save is not None:
        from qvl_agent.drawing import draw_marks

        try:
            draw_marks(image, point=prediction.point, box=prediction.box).save(args.save)
        except (OSError, ValueError) as error:  # a read-only place, an unknown extension
            raise CliError(f"cannot write --save {args.save}: {error}") from None
        out["saved"] = str(args.save)
    print(json.dumps(out, ensure_ascii=False))
    return 0


# -- report ---------------------------------------------------------------------------------------


def _report(args: argparse.Namespace) -> int:
    from qvl_agent.report import ReportError, write_report

    try:
        path = write_report(args.directory, args.out)
    except ReportError as error:
        raise CliError(str(error)) from None
    print(path)
    return 0


# -- replay ---------------------------------------------------------------------------------------


def _replay(args: argparse.Namespace) -> int:
    from qvl_agent.replay import Replayer
    from qvl_agent.trajectory import RunReadError, read_run

    try:
        run = read_run(args.run_dir)
    except RunReadError as error:
        raise CliError(str(error)) from None
    watch = watch_from_cli(args, kind="replay")
    try:
        confirm = confirm_from_args(args, watch)
        device = device_from_args(args)
        steering = watch.control if watch is not None else None
        replayer = Replayer(device, dry_run=args.dry_run, confirm=confirm,
                            settle_seconds=args.settle, threshold=args.threshold,
                            steering=steering)

        def on_step(step) -> None:
            print(step.line(), file=sys.stderr, flush=True)
            if steering is not None:
                steering.replayed(step)

        try:
            result = replayer.replay(run, on_step=on_step)
        finally:
            device.close()
    finally:
        if watch is not None:
            watch.close()
    if args.out is not None:
        args.out.write_text(result.model_dump_json(indent=2), encoding="utf-8")
    print(result.summary())
    return 0 if result.status == "matched" else 1
