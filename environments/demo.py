"""``python -m environments.demo``: the agent on a virtual desktop, no GPU or weights needed.

Starts Xvfb and the sandbox app, then runs the goal "Open the settings dialog and enable
dark mode" through the real loop (screenshots, prompt, parser, coordinate mapping, X input,
recording) and checks the app's state afterwards.

    --model oracle         (default) answers a perfect model would give, read off the app
    --model PATH|HUB_ID    a real Qwen2.5-VL checkpoint drives it (its family chosen from its
                           name and config, or given with --family, e.g. ui-tars-1.5)
    --tiny                 a tiny random-weight Qwen2.5-VL through the local transformers
                           backend: the model path end to end (its answers are garbage, so
                           the run stops after its parse retries, having done nothing)
    --watch                follow (and steer) the run on a live page; --settle 2 slows it
                           down enough to watch

It ends by printing the ``qvl-agent report`` command for its run directory.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from environments.desktop_sim.session import SandboxProcess
from environments.tasks.desktop import DESKTOP_TASKS, OracleModel
from environments.xvfb import VirtualDisplay
from qvl_agent.agent import Agent, AgentConfig
from qvl_agent.cli import print_step, report_hint
from qvl_agent.watch import WatchError, watch_from_args, watch_options


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m environments.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(DESKTOP_TASKS), default="enable_dark_mode")
    parser.add_argument("--model", default="oracle")
    parser.add_argument("--tiny", action="store_true", help="use a tiny random-weight checkpoint")
    parser.add_argument("--screen", default="1920x1080")
    parser.add_argument("--family", default=None,
                        help="model family of --model (default: chosen from the checkpoint)")
    parser.add_argument("--max-pixels", type=int, default=1280 * 28 * 28)
    parser.add_argument("--record", default=None, help="run directory (default runs/<time>-<goal>)")
    parser.add_argument("--settle", type=float, default=0.3,
                        help="seconds to wait after each action before the next screenshot")
    watch_options(parser)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.screen.split("x"))
    task = DESKTOP_TASKS[args.task]
    family = _family(args)

    try:
        watch = watch_from_args(args)
    except WatchError as error:
        parser.error(str(error))
    try:
        return _demo(args, width, height, task, family, watch)
    finally:
        if watch is not None:
            watch.close()


def _demo(args: argparse.Namespace, width: int, height: int, task, family: str, watch) -> int:
    with tempfile.TemporaryDirectory() as scratch, VirtualDisplay(width, height) as display:
        os.environ["DISPLAY"] = display.name
        from qvl_agent.devices.desktop import DesktopDevice

        with SandboxProcess(display.name, Path(scratch) / "state.json") as app:
            model = _model(args, task, app, Path(scratch))
            device = DesktopDevice(display=display.name)
            print(f"virtual desktop {display.name} {width}x{height}; model {model.name}", file=sys.stderr)
            print(f"goal: {task.goal}", file=sys.stderr)
            try:
                config = AgentConfig(max_steps=8, family=family, max_pixels=args.max_pixels,
                                     settle_seconds=args.settle)
                agent = Agent(model, device, config, on_step=print_step,
                              steering=watch.control if watch is not None else None)
                result = agent.run(task.goal, record=args.record)
            finally:
                device.close()
            state = app.settle()
    done = task.check(state)
    print(f"{result.status}: {result.reason} after {result.steps} steps", file=sys.stderr)
    print(f"app state: dark_mode={state['dark_mode']} settings_open={state['settings_open']} "
          f"clicks={state['clicks']} -> task {'DONE' if done else 'NOT DONE'}", file=sys.stderr)
    print(report_hint(result.run_dir), file=sys.stderr)
    expected = not args.tiny  # the tiny random model is expected to fail, cleanly
    return 0 if done == expected else 1


def _family(args: argparse.Namespace) -> str:
    """The oracle and the tiny model answer Qwen2.5-VL tool calls; a real checkpoint's family
    is chosen as `qvl-agent run` chooses it."""
    if args.model == "oracle" or args.tiny:
        return "qwen2.5-vl"
    from qvl_agent.families import FamilyError
    from qvl_agent.families.detect import choose_family

    try:
        choice = choose_family(args.model, args.family)
        choice.family.check_space("computer")  # before any display starts
    except FamilyError as error:
        raise SystemExit(f"error: {error}") from None
    print(choice.notice, file=sys.stderr)
    return choice.family.name


def _model(args: argparse.Namespace, task, app: SandboxProcess, scratch: Path):
    if args.tiny:
        from qvl_agent.models.checkpoint import build_random_checkpoint
        from qvl_agent.models.local import LocalModel

        return LocalModel(build_random_checkpoint(scratch / "tiny-qwen2.5-vl", "tiny"), max_new_tokens=24)
    if args.model == "oracle":
        return OracleModel(task, app.settle)
    from qvl_agent.models import load_model

    return load_model(args.model)


if __name__ == "__main__":
    sys.exit(main())
