"""``qvl-agent``: run an agent on a device, or check where a model answer would click."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from qvl_agent.actions import Point, describe
from qvl_agent.geometry import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS, Frame, Monitor
from qvl_agent.watch import watch_options

DEFAULT_MODEL = "Qwen/Qwen2.5-VL-3B-Instruct"
API_KEY_ENV = "OPENAI_API_KEY"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


class CliError(Exception):
    """A problem the user can fix; printed as one line, no stack trace."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qvl-agent", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="let the model operate a device until the goal is done")
    run.add_argument("goal", help='what to do, e.g. "Open the settings dialog and enable dark mode"')
    device_options(run, dry_run_help="run the whole loop but never act on the device")
    model_options(run)
    run.add_argument("--max-steps", type=int, default=30)
    run.add_argument("--max-seconds", type=float, default=None, help="wall-clock budget")
    pixel_options(run)
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
    parse.add_argument("--space", choices=("computer", "mobile"), default="computer")
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
                       help="requests that may wait for the model before new ones get 503")
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
    parser.add_argument("--max-new-tokens", type=int, default=256)
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


def model_from_args(args: argparse.Namespace):
    """The model the options of :func:`model_options` name; a load failure is a CliError."""
    from qvl_agent.models import ModelError, load_model

    try:
        if args.endpoint is not None:
            model = load_model(
                args.model, endpoint=args.endpoint, api_key=api_key_from_env(args.api_key_env),
                max_new_tokens=args.max_new_tokens, timeout=args.request_timeout,
            )
            print(f"using {model.name} ...", file=sys.stderr)
            model.check()
            return model
        if args.api_key_env is not None:
            raise CliError("--api-key-env goes with --endpoint (a local model needs no key)")
        print(f"loading model {args.model} ...", file=sys.stderr)
        return load_model(args.model, max_new_tokens=args.max_new_tokens,
                          force_scaffold=args.force_scaffold, decode=args.decode)
    except ModelError as error:
        raise CliError(str(error)) from None


def api_key_from_env(variable: str | None) -> str | None:
    """The key in ``$variable``; without one named, $OPENAI_API_KEY when it is set."""
    if variable is None:
        return os.environ.get(API_KEY_ENV) or None
    key = os.environ.get(variable)
    if not key:
        raise CliError(f"--api-key-env {variable}: the environment variable {variable} is not "
                       "set")
    return key


def pixel_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
        help=f"largest screenshot area the model sees (default {DEFAULT_MAX_PIXELS}, the "
        "checkpoint's; 1003520 = 1280*28*28 is ~2x faster with coarser clicks)",
    )
    parser.add_argument("--min-pixels", type=int, default=DEFAULT_MIN_PIXELS)


# -- run --------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    watch = watch_from_cli(args)
    try:
        return _run_watched(args, watch)
    finally:
        if watch is not None:
            watch.close()


def _run_watched(args: argparse.Namespace, watch) -> int:
    from qvl_agent.agent import Agent, AgentConfig

    confirm = confirm_from_args(args, watch)
    config = AgentConfig(
        max_steps=args.max_steps,
        max_seconds=args.max_seconds,
        min_pixels=args.min_pixels,
        max_pixels=args.max_pixels,
        dry_run=args.dry_run,
        settle_seconds=args.settle,
    )
    device = device_from_args(args)
    try:
        model = model_from_args(args)
    except CliError:
        device.close()
        raise

    agent = Agent(model, device, config, confirm=confirm, on_step=print_step,
                  steering=watch.control if watch is not None else None)
    print(f"goal: {args.goal}", file=sys.stderr)
    try:
        result = agent.run(args.goal, record=args.record)
    except FileExistsError as error:
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
    print(
        f"step {step.index:>3}  {what}{tag}  "
        f"[model {step.timings.get('model', 0):.0f} ms, step {step.timings.get('total', 0):.0f} ms"
        f"{retries}]{error}",
        file=sys.stderr,
        flush=True,
    )


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
    try:
        tasks = read_tasks(args.tasks)
    except BatchError as error:
        raise CliError(str(error)) from None
    seed = None
    if args.shuffle:
        seed = args.seed if args.seed is not None else random.randrange(2**31)
    config = AgentConfig(
        max_steps=args.max_steps, max_seconds=args.max_seconds, min_pixels=args.min_pixels,
        max_pixels=args.max_pixels, dry_run=args.dry_run, settle_seconds=args.settle,
    )
    model = model_from_args(args)
    root = args.record or default_batch_dir()
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


def _serve(args: argparse.Namespace) -> int:
    from qvl_agent.models import ModelError
    from qvl_agent.server import httpd
    from qvl_agent.server.completions import CompletionService

    api_key = api_key_from_env(args.api_key_env) if args.api_key_env else None
    try:
        httpd.check_bind(args.host, args.allow_remote, api_key)
    except httpd.BindRefused as error:
        raise CliError(str(error)) from None
    print(f"loading model {args.model} ...", file=sys.stderr)
    try:
        from qvl_agent.models.local import LocalModel

        model = LocalModel(args.model, max_new_tokens=args.max_new_tokens)
        service = CompletionService(
            model, args.served_model_name or args.model, max_new_tokens=args.max_new_tokens,
            max_pixels=args.max_pixels, max_queue=args.max_queue,
        )
    except ModelError as error:
        raise CliError(str(error)) from None
    try:
        httpd.run(service, args.host, args.port, api_key)
    except OSError as error:  # the port is taken, the address is not ours, ...
        reason = error.strerror or error
        raise CliError(f"cannot serve on {args.host}:{args.port}: {reason}") from None
    return 0


# -- parse ------------------------------------------------------------------------------


def _parse(args: argparse.Namespace) -> int:
    from qvl_agent.parsing import ActionParseError, parse

    width, height = _screen_size(args.screen)
    frame = Frame.fit(Monitor(width=width, height=height), args.min_pixels, args.max_pixels)
    text = sys.stdin.read()
    try:
        parsed = parse(text, frame, args.space)
    except ActionParseError as error:
        raise CliError(f"unusable answer: {error}") from None
    out: dict[str, object] = {"action": parsed.action.action}
    for name, value in parsed.action:
        if name == "action" or value is None:
            continue
        if isinstance(value, Point):
            out[name] = list(value.model)
            out[f"screen_{name}"] = list(value.screen) if value.screen else None
        else:
            out[name] = value
    out["screen"] = [width, height]
    out["resized"] = [frame.resized_width, frame.resized_height]
    if parsed.notes:
        out["notes"] = parsed.notes
    print(json.dumps(out, ensure_ascii=False))
    return 0


def _screen_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise CliError(f"--screen must look like 1920x1080, got {text!r}") from None
    if width <= 0 or height <= 0:
        raise CliError(f"--screen must be positive, got {text!r}")
    return width, height


if __name__ == "__main__":
    sys.exit(main())
