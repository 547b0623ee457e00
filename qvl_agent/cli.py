"""``qvl-agent``: run an agent on a device, or check where a model answer would click."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence

from qvl_agent.actions import Point, describe
from qvl_agent import __version__
from qvl_agent.geometry import (
    DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS, PIXELS_RANGE, Monitor, aspect_problem,
)
from qvl_agent.watch import watch_options

DEFAULT_MODEL = "Qwen/Qwen2.5-VL-3B-Instruct"
API_KEY_ENV = "OPENAI_API_KEY"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        check_numbers(args)  # before any device opens or model loads
        return args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except CliError as error:
        from qvl_agent.redaction import mask_url_credentials  # a URL's password never shows

        print(f"error: {mask_url_credentials(str(error))}", file=sys.stderr)
        return 2


class CliError(Exception):
    """A problem the user can fix; printed as one line, no stack trace."""


class HelpWithDefaults(argparse.HelpFormatter):
    """Every option's help ends with its default, unless the help already names it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (not action.option_strings or action.required or "default" in text
                or action.default is argparse.SUPPRESS
                or isinstance(action, (argparse._HelpAction, argparse._VersionAction))):
            return text
        if action.nargs == 0:  # a flag (store_true, store_false, ...): not given by default
            shown = "off"
        else:
            shown = "none" if action.default is None else action.default
        return f"{text} (default: {shown})".lstrip()


class _Parser(argparse.ArgumentParser):
    """The parser of qvl-agent and of each of its commands (add_subparsers reuses the class)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpWithDefaults)
        super().__init__(*args, **kwargs)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="qvl-agent", description=__doc__)
    parser.add_argument("--version", action="version", version=f"qvl-agent {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="let the model operate a device until the goal is done")
    run.add_argument("goal", help='what to do, e.g. "Open the settings dialog and enable dark mode"')
    device_options(run, dry_run_help="run the whole loop but never act on the device")
    model_options(run)
    run.add_argument("--max-steps", type=int, default=30, help="step budget")
    run.add_argument("--max-seconds", type=float, default=None,
                     help="wall-clock budget; it also cuts a longer wait short (default: none)")
    pixel_options(run)
    history_option(run)
    run.add_argument("--record", default=None,
                     help="run directory to write (default runs/<time>-<goal>)")
    watch_options(run)
    run.set_defaults(handler=_run)

    devices = commands.add_parser("devices", help="list the Android devices adb sees")
    devices.set_defaults(handler=_devices)

    parse = commands.add_parser(
        "parse", help="read a model answer on stdin and print the action it would perform"
    )
    parse.add_argument("--screen", required=True, help="screen size WxH, e.g. 1920x1080")
    parse.add_argument("--space", choices=("computer", "mobile"), default="computer",
                       help="the tool schema: computer (desktop) or mobile (phone)")
    parse.add_argument("--family", default=None,
                       help="the model family whose answer it is (default qwen2.5-vl); see "
                       "README 'Model families'")
    pixel_options(parse)
    parse.set_defaults(handler=_parse)

    serve = commands.add_parser(
        "serve", help="serve a local checkpoint over an OpenAI-compatible chat-completions API"
    )
    serve.add_argument("--model", default=DEFAULT_MODEL,
                       help="hub id or local path of a Qwen2.5-VL checkpoint")
    serve.add_argument("--served-model-name", default=None,
                       help="the model name clients ask for (default: --model as given)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to bind (default 127.0.0.1; any other needs --allow-remote "
                       "and a key)")
    serve.add_argument("--port", type=int, default=8000,
                       help="port (default 8000; 0 picks a free one)")
    serve.add_argument("--allow-remote", action="store_true",
                       help="allow binding beyond loopback (an API key is then required)")
    serve.add_argument("--api-key-env", metavar="VAR", default=None,
                       help="environment variable holding the key clients must send as a "
                       "Bearer token")
    serve.add_argument("--max-new-tokens", type=int, default=256,
                       help="most tokens one answer may have (requests asking for more get "
                       "this many)")
    serve.add_argument("--max-pixels", type=int, default=None,
                       help="largest image area accepted (default: the checkpoint's max_pixels)")
    serve.add_argument("--max-queue", type=int, default=64,
                       help="requests that may wait for the model before new ones get 503 "
                       "(default 64)")
    serve_limit_options(serve)
    serve.set_defaults(handler=_serve)

    batch = commands.add_parser(
        "run-batch",
        help="run a task suite across several devices at once, one episode per device at a time",
    )
    batch.add_argument("tasks", help='JSON Lines file, one task per line: {"id": ..., '
                       '"goal": ..., optional "max_steps": N}')
    batch.add_argument("--device", action="append", required=True, metavar="SPEC[,SPEC...]",
                       help="devices to run on, e.g. android:SERIAL1,android:SERIAL2 "
                       "(or repeat --device)")
    batch.add_argument("--workers", type=int, default=None,
                       help="episodes at once (default: one per device; at most one per device)")
    model_options(batch)
    batch.add_argument("--max-steps", type=int, default=30,
                       help="step budget of a task without its own")
    batch.add_argument("--max-seconds", type=float, default=None,
                       help="wall-clock budget per episode")
    pixel_options(batch)
    history_option(batch)
    batch.add_argument("--settle", type=float, default=0.5,
                       help="seconds to wait after each action before the next screenshot")
    batch.add_argument("--dry-run", action="store_true",
                       help="run every loop but never act on a device")
    batch.add_argument("--shuffle", action="store_true",
                       help="run the tasks in a random order (see --seed)")
    batch.add_argument("--seed", type=int, default=None,
                       help="seed of --shuffle (default: a random one, recorded)")
    batch.add_argument("--record", default=None,
                       help="directory for the episodes and summary.json "
                       "(default runs/batch-<time>)")
    watch_options(batch)
    batch.set_defaults(handler=_run_batch)

    from qvl_agent import offline_cli  # here, not at the top: it imports this module

    offline_cli.register(commands)
    return parser


def device_options(parser: argparse.ArgumentParser, dry_run_help: str) -> None:
    """The options that choose a device and guard what is done on it; read back by
    :func:`device_from_args` and :func:`confirm_from_args`."""
    parser.add_argument("--device", default="desktop",
                        help="desktop (default), android, android:SERIAL or image:FILE")
    parser.add_argument("--monitor", type=int, default=1, help="desktop monitor number (1 = first)")
    parser.add_argument("--settle", type=float, default=0.5,
                        help="seconds to wait after each action before the next screenshot")
    parser.add_argument("--dry-run", action="store_true", help=dry_run_help)
    parser.add_argument("--confirm", action="store_true", help="ask before each action (needs a TTY)")


def confirm_from_args(args: argparse.Namespace, watch=None):
    """The question asked before each action with --confirm (None without it): on the
    terminal, and on the watch page too with --watch (the first answer counts)."""
    from qvl_agent.guard import TerminalQuestion, first_answer

    if not args.confirm:
        return None
    channels = [TerminalQuestion] if sys.stdin.isatty() else []
    if watch is not None:
        channels.append(watch.control.question)
        watch.control.terminal_asks_too = bool(channels[:-1])
    if not channels:
        raise CliError("--confirm asks before each action and needs an interactive terminal "
                       "(or --watch, to answer on the watch page)")
    return first_answer(channels)


def watch_from_cli(args: argparse.Namespace, kind: str = "run"):
    """The --watch session (None without --watch); its URL is printed."""
    from qvl_agent.watch import WatchError, watch_from_args

    try:
        return watch_from_args(args, kind=kind)
    except WatchError as error:
        raise CliError(str(error)) from None


def report_hint(run_dir) -> str:
    """The line that tells where a run is and how to look at it."""
    return (f"recorded in {run_dir}\nreport: qvl-agent report {run_dir}  "
            f"(writes {os.path.join(run_dir, 'report.html')})")


def device_from_args(args: argparse.Namespace):
    """The device --device/--monitor name; on a terminal, asks which phone when adb sees several."""
    from qvl_agent.devices import DeviceError, open_device

    try:
        return open_device(args.device, monitor=args.monitor,
                           choose=_ask_which if sys.stdin.isatty() else None)
    except DeviceError as error:
        raise CliError(str(error)) from None


def model_options(parser: argparse.ArgumentParser) -> None:
    """The options that choose and configure the model; read back by :func:`model_from_args`."""
    parser.add_argument(
        "--model", default=DEFAULT_MODEL,
        help=f"hub id or local path of a Qwen2.5-VL checkpoint, or scripted:FILE.jsonl; with "
        f"--endpoint, the model name the server serves (default {DEFAULT_MODEL})",
    )
    parser.add_argument("--max-new-tokens", type=int, default=256,
                        help="most tokens one answer may have")
    parser.add_argument(
        "--endpoint", metavar="URL", default=None,
        help="an OpenAI-compatible server to ask instead of loading the model here "
        "(vLLM, SGLang, qvl-agent serve), e.g. http://127.0.0.1:8000/v1",
    )
    parser.add_argument(
        "--api-key-env", metavar="VAR", default=None,
        help=f"environment variable holding the endpoint's API key (default {API_KEY_ENV}, "
        "if set); the key itself is never taken on the command line, printed or recorded",
    )
    parser.add_argument("--request-timeout", type=float, default=120.0, metavar="S",
                        help="seconds an endpoint may take to answer one request (default 120)")
    parser.add_argument("--no-force", dest="force_scaffold", action="store_false",
                        help="decode the tool call's fixed tokens one by one instead of verifying "
                        "them in one pass (the answer is the same either way)")
    parser.add_argument("--decode", choices=("dynamic", "static", "compiled"), default="dynamic",
                        help="KV cache and decode pass: dynamic (default), static, or compiled "
                        "(static + torch.compile; CUDA graphs on a GPU)")
    parser.add_argument("--family", default=None,
                        help="the model family: its prompt, coordinate frame and answer format "
                        "(qwen2.5-vl, ui-tars-1.5, gui-owl, ...; default: chosen from the "
                        "checkpoint's config and name, see README 'Model families')")


def family_from_args(args: argparse.Namespace):
    """The family --family names, or the one chosen from --model. Its one-line notice is
    printed by :func:`model_from_args` as the model loads, so that an error found before
    that (no display, a bad option) stays the only line."""
    from qvl_agent.families import FamilyError
    from qvl_agent.families.detect import choose_family

    try:
        choice = choose_family(args.model, args.family, getattr(args, "endpoint", None))
    except FamilyError as error:
        raise CliError(str(error)) from None
    args.family_notice = choice.notice
    return choice.family


def acting_family_from_args(args: argparse.Namespace):
    """:func:`family_from_args` for commands that act: a grounding-only family is refused
    before any device or model is opened."""
    from qvl_agent.families import FamilyError

    family = family_from_args(args)
    try:
        family.check_acts()
    except FamilyError as error:
        raise CliError(str(error)) from None
    return family


def model_from_args(args: argparse.Namespace, family=None):
    """The model the options of :func:`model_options` name; a load failure is a CliError.
    ``family`` (when known) gives an endpoint its resize factor, and a local checkpoint must
    resize as the family does."""
    from qvl_agent.geometry import FACTOR
    from qvl_agent.models import ModelError, load_model

    factor = family.factor if family is not None else FACTOR
    if notice := getattr(args, "family_notice", None):
        print(notice, file=sys.stderr)
    try:
        if args.endpoint is not None:
            model = load_model(
                args.model, endpoint=args.endpoint, api_key=api_key_from_env(args.api_key_env),
                max_new_tokens=args.max_new_tokens, timeout=args.request_timeout, factor=factor,
            )
            print(f"using {model.name} ...", file=sys.stderr)
            model.check()
            return model
        if args.api_key_env is not None:
            raise CliError("--api-key-env goes with --endpoint (a local model needs no key)")
        print(f"loading model {args.model} ...", file=sys.stderr)
        model = load_model(args.model, max_new_tokens=args.max_new_tokens,
                           force_scaffold=args.force_scaffold, decode=args.decode)
    except ModelError as error:
        raise CliError(str(error)) from None
    checkpoint_factor = getattr(model, "factor", None)  # a scripted model has none
    if family is not None and checkpoint_factor not in (None, factor):
        from qvl_agent.families import FAMILIES

        fitting = ", ".join(n for n, f in FAMILIES.items() if f.factor == checkpoint_factor)
        raise CliError(f"{args.model} resizes images with factor {checkpoint_factor}, but the "
                       f"{family.name} family with {factor}: pass the --family it was trained "
                       f"as (factor {checkpoint_factor}: {fitting})")
    return model


def api_key_from_env(variable: str | None) -> str | None:
    """The key in ``$variable``; without one named, $OPENAI_API_KEY when it is set."""
    if variable is None:
        return os.environ.get(API_KEY_ENV) or None
    key = os.environ.get(variable)
    if not key:
        raise CliError(f"--api-key-env {variable}: the environment variable {variable} is not "
                       "set")
    return key


def history_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--history-images", type=_at_least_one, default=None, metavar="N",
                        help="screenshots one prompt may hold, the current one included "
                        "(default: as the model family was trained, e.g. 5 for ui-tars-1.5); "
                        "1 for a server that takes one image per request")


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return value


def pixel_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-pixels", type=int, default=None,
        help=f"largest screenshot area the model sees (default: the model family's; "
        f"qwen2.5-vl {DEFAULT_MAX_PIXELS}, the checkpoint's; 1003520 = 1280*28*28 is ~2x "
        "faster with coarser clicks)",
    )
    parser.add_argument("--min-pixels", type=int, default=None,
                        help=f"smallest screenshot area (default: the model family's; "
                        f"qwen2.5-vl {DEFAULT_MIN_PIXELS})")


# Ranges of the number options (by dest), checked by check_numbers before anything starts.
NUMBER_RANGES: dict[str, tuple[float, float]] = {
    "min_pixels": PIXELS_RANGE, "max_pixels": PIXELS_RANGE,
    "max_steps": (1, 100_000), "max_seconds": (0.1, 30 * 86400), "settle": (0, 60),
    "max_new_tokens": (1, 32768), "request_timeout": (0.1, 86400), "monitor": (1, 64),
    "workers": (1, 256), "limit": (1, 10**9), "threshold": (0, 1), "history_images": (1, 64),
    # qvl-agent serve: what one request or connection may cost
    "max_queue": (1, 1 << 20), "max_prompt_tokens": (1, 1 << 24),
    "max_image_pixels": (1, 1 << 34), "max_body_bytes": (1, 1 << 40),
    "read_timeout": (0.1, 86400), "max_connections": (1, 1 << 16), "port": (0, 65535),
    # (--watch-port is checked by watch_from_args, which the demo shares)
}


def check_numbers(args: argparse.Namespace) -> None:
    """Every number option within its range (NUMBER_RANGES), min <= max pixels, and a
    --screen the model can be shown; else a CliError naming the allowed range."""
    for dest, (low, high) in NUMBER_RANGES.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        if not (math.isfinite(value) and low <= value <= high):
            option = "--" + dest.replace("_", "-")
            raise CliError(f"{option} {value} is out of range: use {_plain(low)} to {_plain(high)}")
    low_pixels, high_pixels = getattr(args, "min_pixels", None), getattr(args, "max_pixels", None)
    if low_pixels is not None and high_pixels is not None and low_pixels > high_pixels:
        raise CliError(f"--min-pixels {low_pixels} is more than --max-pixels {high_pixels}")


def _plain(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


# -- run --------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    watch = watch_from_cli(args)
    try:
        return _run_watched(args, watch)
    finally:
        if watch is not None:
            watch.close()


def _run_watched(args: argparse.Namespace, watch) -> int:
    from pathlib import Path

    from qvl_agent.agent import Agent, AgentConfig, default_run_dir
    from qvl_agent.families import FamilyError
    from qvl_agent.trajectory import RunWriteError, release_run_dir, reserve_run_dir

    confirm = confirm_from_args(args, watch)
    family = acting_family_from_args(args)
    config = AgentConfig(
        max_steps=args.max_steps,
        max_seconds=args.max_seconds,
        family=family.name,
        min_pixels=args.min_pixels,
        max_pixels=args.max_pixels,
        history_images=args.history_images,
        dry_run=args.dry_run,
        settle_seconds=args.settle,
    )
    record = Path(args.record) if args.record is not None else default_run_dir(args.goal)
    try:
        created = reserve_run_dir(record)  # a place that cannot be written: before the model loads
    except (FileExistsError, RunWriteError) as error:
        raise CliError(str(error)) from None
    try:
        device = device_from_args(args)
        try:
            family.check_space(device.space)
            model = model_from_args(args, family)
        except FamilyError as error:
            device.close()
            raise CliError(str(error)) from None
        except CliError:
            device.close()
            raise
    except CliError:
        if created:
            release_run_dir(record)
        raise

    agent = Agent(model, device, config, confirm=confirm, on_step=print_step,
                  steering=watch.control if watch is not None else None)
    print(f"goal: {args.goal}", file=sys.stderr)
    try:
        result = agent.run(args.goal, record=record)
    except (FileExistsError, RunWriteError) as error:
        raise CliError(str(error)) from None
    finally:
        device.close()
    answer = f"\nanswer: {result.answer}" if result.answer is not None else ""
    print(f"{result.status}: {result.reason} after {result.steps} steps{answer}\n"
          f"{report_hint(result.run_dir)}", file=sys.stderr)
    return 0 if result.succeeded else 1


def print_step(step) -> None:
    """One progress line per step on stderr (the CLI's and the demo's)."""
    what = describe(step.action) if step.action is not None else "(no action)"
    tag = {"dry_run": " [dry run]", "declined": " [declined]"}.get(step.outcome, "")
    error = f"  error: {step.error}" if step.error and step.outcome != "executed" else ""
    retries = f", {len(step.attempts)} answers" if len(step.attempts) > 1 else ""
    thought = f"  thought: {one_line(step.thought)}" if step.thought else ""
    print(
        f"step {step.index:>3}  {what}{tag}  "
        f"[model {step.timings.get('model', 0):.0f} ms, step {step.timings.get('total', 0):.0f} ms"
        f"{retries}]{error}{thought}",
        file=sys.stderr,
        flush=True,
    )


def one_line(text: str, limit: int = 160) -> str:
    """``text`` on one line, cut to ``limit`` characters (a step line stays a line)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _ask_which(serials: list[str]) -> str:
    for number, serial in enumerate(serials, start=1):
        print(f"  {number}. {serial}", file=sys.stderr)
    answer = input(f"which device? [1-{len(serials)}] ").strip()
    if not answer.isdigit() or not 1 <= int(answer) <= len(serials):
        raise CliError(f"no device chosen ({answer!r})")
    return serials[int(answer) - 1]


# -- devices ----------------------------------------------------------------------------


def _devices(args: argparse.Namespace) -> int:
    from qvl_agent.devices import DeviceError
    from qvl_agent.devices.android import adb_client, list_devices, screen_size

    client = adb_client()
    try:
        devices = list_devices(client)
    except DeviceError as error:
        raise CliError(str(error)) from None
    if not devices:
        print("no Android devices (adb devices lists none)")
        return 0
    print(f"{'serial':<24} {'state':<13} {'model':<20} screen")
    for info in devices:
        size = screen_size(client, info["serial"]) if info["state"] == "device" else "-"
        print(f"{info['serial']:<24} {info['state']:<13} {info.get('model', '-'):<20} {size}")
    return 0


# -- run-batch --------------------------------------------------------------------------


def _run_batch(args: argparse.Namespace) -> int:
    import random
    from pathlib import Path

    from qvl_agent.trajectory import write_problem

    from qvl_agent.agent import AgentConfig
    from qvl_agent.batch import BatchError, default_batch_dir, read_tasks, run_batch, summary_table
    from qvl_agent.devices import open_device

    devices = [spec.strip() for value in args.device for spec in value.split(",")]
    devices = [spec for spec in devices if spec]
    if len(set(devices)) != len(devices):
        raise CliError(f"a device is listed twice in --device {','.join(devices)}; each runs "
                       "one episode at a time")
    workers = args.workers or len(devices)
    if not 1 <= workers <= len(devices):
        raise CliError(f"--workers {workers}: each worker needs its own device and "
                       f"{len(devices)} are listed")
    if workers > 1 and args.endpoint is None and args.model.startswith("scripted:"):
        raise CliError("a scripted model replays one sequence of answers and cannot serve "
                       "episodes running at once: use --workers 1")
    family = acting_family_from_args(args)
    try:
        tasks = read_tasks(args.tasks)
    except BatchError as error:
        raise CliError(str(error)) from None
    seed = None
    if args.shuffle:
        seed = args.seed if args.seed is not None else random.randrange(2**31)
    config = AgentConfig(
        max_steps=args.max_steps, max_seconds=args.max_seconds, family=family.name,
        min_pixels=args.min_pixels, max_pixels=args.max_pixels,
        history_images=args.history_images, dry_run=args.dry_run, settle_seconds=args.settle,
    )
    root = args.record or default_batch_dir()
    try:
        Path(root).mkdir(parents=True, exist_ok=True)  # before the model loads
    except OSError as error:
        raise CliError(str(write_problem(Path(root), error, started=False))) from None
    model = model_from_args(args, family)
    watch = watch_from_cli(args)
    print(f"{len(tasks)} tasks on {workers} devices, recorded in {root}", file=sys.stderr)
    try:
        summary = run_batch(tasks, devices[:workers], model, config, root, open_device,
                            seed=seed, tasks_file=args.tasks, write=_progress_line,
                            steering=watch.control if watch is not None else None)
    except BatchError as error:
        raise CliError(str(error)) from None
    finally:
        if watch is not None:
            watch.close()
    print(summary_table(summary))
    print(f"summary: {root}/summary.json")
    unrun = [e for e in summary.episodes if e.status in ("error", "not_run")]
    return 1 if unrun else 0


def _progress_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# -- serve ------------------------------------------------------------------------------


def serve_limit_options(parser: argparse.ArgumentParser) -> None:
    """What one request or connection may cost ``qvl-agent serve``; checked by
    :func:`_serve_limits` before the model loads."""
    from qvl_agent.server import limits

    parser.add_argument("--max-prompt-tokens", type=int, default=limits.MAX_PROMPT_TOKENS,
                        help="longest prompt (text + image tokens) accepted, counted before the "
                        "model runs; never more than the model's context less --max-new-tokens "
                        f"(default {limits.MAX_PROMPT_TOKENS})")
    parser.add_argument("--max-image-pixels", type=int, default=limits.MAX_IMAGE_PIXELS,
                        help="largest image decoded, checked from its header first; the model "
                        f"sees at most --max-pixels of it (default {limits.MAX_IMAGE_PIXELS}, "
                        "an 8K screen)")
    parser.add_argument("--max-body-bytes", type=int, default=limits.MAX_BODY_BYTES,
                        help="largest request body, refused from its Content-Length "
                        f"(default {limits.MAX_BODY_BYTES})")
    parser.add_argument("--read-timeout", type=float, default=limits.READ_TIMEOUT, metavar="S",
                        help="seconds a connection may send nothing before it is closed "
                        f"(default {limits.READ_TIMEOUT:g})")
    parser.add_argument("--max-connections", type=int, default=limits.MAX_CONNECTIONS,
                        help="connections (one thread each) at once; more get 503 "
                        f"(default {limits.MAX_CONNECTIONS})")


def _serve_limits(args: argparse.Namespace) -> dict[str, float]:
    """The limits the HTTP layer applies (each already range-checked by check_numbers)."""
    return {"max_body_bytes": args.max_body_bytes, "read_timeout": args.read_timeout,
            "max_connections": args.max_connections}


def _serve(args: argparse.Namespace) -> int:
    from qvl_agent.models import ModelError
    from qvl_agent.server import httpd
    from qvl_agent.server.completions import CompletionService

    api_key = api_key_from_env(args.api_key_env) if args.api_key_env else None
    limits = _serve_limits(args)
    try:
        httpd.check_bind(args.host, args.allow_remote, api_key)
    except httpd.BindRefused as error:
        raise CliError(str(error)) from None
    print(f"loading model {args.model} ...", file=sys.stderr)
    try:
        from qvl_agent.models.hub import before_local_load
        from qvl_agent.models.local import LocalModel

        before_local_load(args.model)
        model = LocalModel(args.model, max_new_tokens=args.max_new_tokens)
        service = CompletionService(
            model, args.served_model_name or args.model, max_new_tokens=args.max_new_tokens,
            max_pixels=args.max_pixels, max_queue=args.max_queue,
            max_prompt_tokens=args.max_prompt_tokens, max_image_pixels=args.max_image_pixels,
        )
    except ModelError as error:
        raise CliError(str(error)) from None
    print(f"limits: prompts up to {service.max_prompt_tokens} tokens, images up to "
          f"{service.max_image_pixels} pixels, bodies up to {args.max_body_bytes} bytes, "
          f"{args.max_connections} connections, {args.max_queue} queued requests",
          file=sys.stderr)
    try:
        httpd.run(service, args.host, args.port, api_key, **limits)
    except OSError as error:  # the port is taken, the address is not ours, ...
        reason = error.strerror or error
        raise CliError(f"cannot serve on {args.host}:{args.port}: {reason}") from None
    return 0


# -- parse ------------------------------------------------------------------------------


def _parse(args: argparse.Namespace) -> int:
    from qvl_agent.families import FamilyError, get_family
    from qvl_agent.geometry import CoordinateError
    from qvl_agent.parsing import ActionParseError

    width, height = _screen_size(args.screen)
    try:
        family = get_family(args.family)
        if family.acts:  # a grounding-only family's answer is a point, whatever the space
            family.check_space(args.space)
    except FamilyError as error:
        raise CliError(str(error)) from None
    frame = family.frame(Monitor(width=width, height=height), args.min_pixels, args.max_pixels,
                         args.space if family.acts else None)
    text = sys.stdin.read()
    try:
        if family.acts:
            parsed = family.parse(text, frame, args.space)
            out: dict[str, object] = {"action": parsed.action.action}
            fields = {name: value for name, value in parsed.action}  # (a Key has .keys)
            thought, summary, notes = parsed.thought, parsed.summary, parsed.notes
        else:
            located = family.grounding().parse(text, frame)
            out = {}
            point = located.point and Point(model=located.point,
                                            screen=frame.to_screen(*located.point))
            fields = {"coordinate": point, "box": located.box}
            thought, summary, notes = None, None, located.notes
    except (ActionParseError, CoordinateError) as error:
        raise CliError(f"unusable answer: {error}") from None
    for name, value in fields.items():
        if name == "action" or value is None:
            continue
        if isinstance(value, Point):
            out[name] = list(value.model)
            out[f"screen_{name}"] = list(value.screen) if value.screen else None
        else:
            out[name] = value
    out["screen"] = [width, height]
    out["resized"] = [frame.resized_width, frame.resized_height]
    if args.family is not None:
        out["family"] = family.name
    if frame.coordinates != "pixels":
        out["coordinates"] = frame.coordinates
    if thought:
        out["thought"] = thought
    if summary:
        out["summary"] = summary
    if notes:
        out["notes"] = notes
    print(json.dumps(out, ensure_ascii=False))
    return 0


def _screen_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise CliError(f"--screen must look like 1920x1080, got {text!r}") from None
    if width <= 0 or height <= 0:
        raise CliError(f"--screen must be positive, got {text!r}")
    if max(width, height) > 1_000_000:
        raise CliError(f"--screen {text}: use sides of 1 to 1000000 pixels")
    if (problem := aspect_problem(width, height)) is not None:
        raise CliError(f"--screen {text}: {problem}")
    return width, height


if __name__ == "__main__":
    sys.exit(main())
