"""Issue 11's failure classes, each fed many hostile inputs: prints cases tried / failures.

A failure is what a user would meet: an exception other than the documented error, a
traceback, a lost record, an error of more than one line, a wait the budget did not cut.
Everything runs in this process through the public functions and ``qvl_agent.cli.main``, so
the same script measures an older checkout (``PYTHONPATH=OLD_CHECKOUT python
bench/hostile_inputs.py``). Nothing here needs a display, a phone or a model.

    python bench/hostile_inputs.py [--fuzz 2000] [--out bench/results/hostile_inputs.json]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image  # noqa: E402

from bench.figures import write_figures  # noqa: E402
from qvl_agent.cli import main  # noqa: E402
from qvl_agent.geometry import Frame, Monitor  # noqa: E402
from qvl_agent.parsing import ActionParseError, parse  # noqa: E402

DESKTOP = Frame.fit(Monitor(width=1920, height=1080), max_pixels=1280 * 28 * 28)
PHONE = Frame.fit(Monitor(width=1080, height=2400))
SEPARATORS = {"U+2028": "\u2028", "U+2029": "\u2029", "U+0085": "\x85"}


def cli(*args) -> tuple[int | None, str, str]:
    """``qvl-agent ARGS`` here: (exit status or None for an uncaught exception, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 2
        except BaseException as error:  # noqa: BLE001 - a crash is what is counted
            print(f"Traceback: {type(error).__name__}: {error}", file=err)
            code = None
    return code, out.getvalue(), err.getvalue()


def one_line_error(result) -> bool:
    code, _, err = result
    lines = err.strip().splitlines()
    return code == 2 and bool(lines) and lines[-1].startswith("error: ") and "Traceback" not in err


def call(arguments: str, tool: str = "computer_use") -> str:
    return f'<tool_call>\n{{"name": "{tool}", "arguments": {arguments}}}\n</tool_call>'


def tool(space: str = "computer", **arguments) -> str:
    name = "computer_use" if space == "computer" else "mobile_use"
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments}, ensure_ascii=False)}\n</tool_call>"


def raw_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


# -- the parser ------------------------------------------------------------------------------

NAMED = [
    call('{"action": "left_click", "coordinate": [%s, 5]}' % ("9" * 310)),
    call('{"action": "left_click", "coordinate": [%s, 5]}' % ("9" * 5000)),
    call('{"action": "left_click", "coordinate": %s}' % ("[" * 1000 + "]" * 1000)),
    call('{"action": "left_click", "coordinate": %s}' % ('{"x":' * 1000 + "1" + "}" * 1000)),
    call(json.dumps("[" * 1000 + "]" * 1000)),
    call('{"action": "scroll", "pixels": NaN}'),
    call('{"action": "scroll", "pixels": Infinity}'),
    call('{"action": "scroll", "pixels": 1e7}'),
    call('{"action": "wait", "time": 1e999}'),
    call('{"action": "wait", "time": 1e9}'),
    call('{"action": "wait", "time": "nan"}'),
    call('{"action": "long_press", "coordinate": [10, 10], "time": 1e20}', "mobile_use"),
    call('{"action": "left_click", "coordinate": [NaN, 5]}'),
    call('{"action": "left_click", "coordinate": "%s, 5"}' % ("9" * 5000)),
]
SEEDS = [
    call('{"action": "left_click", "coordinate": [658, 364]}'),
    call('{"action": "scroll", "pixels": -300, "coordinate": [10, 10]}'),
    call('{"action": "wait", "time": 2}'),
    call('{"action": "long_press", "coordinate": [500, 900], "time": 1.5}', "mobile_use"),
    call('{"action": "swipe", "coordinate": [500, 1800], "coordinate2": [500, 600]}', "mobile_use"),
]
PIECES = ["9" * 320, "9" * 4400, "1e999", "-1e999", "NaN", "Infinity", "[" * 600, "{" * 600, "]",
          "}", '"', "\\", "\u2028", "\x00", "1e2", "-0", "1e20", "true", "null", '"1e400"',
          "[[1, 2]]", "</tool_call>", "<tool_call>", "'", ",", ":", "e", "."]

# What each action may hold (issue 11: bound every number).
LIMITS = {"wait": 60, "long_press": 10}


def parse_fails(text: str) -> bool:
    space, frame = ("mobile", PHONE) if "mobile_use" in text[:60] else ("computer", DESKTOP)
    try:
        action = parse(text, frame, space).action
    except ActionParseError:
        return False
    except BaseException:  # noqa: BLE001
        return True
    numbers = [v for name, v in action if name in ("time", "pixels")]
    numbers += [c for p in action.points() for c in (*p.model, *(p.screen or ()))]
    if any(v != v or v in (float("inf"), float("-inf")) for v in numbers):
        return True
    limit = LIMITS.get(action.action)
    if limit is not None and not 0 <= action.time <= limit:
        return True
    return action.action == "scroll" and abs(action.pixels) > 10_000


def parser_class(fuzz: int) -> dict:
    rng = random.Random(11)
    cases = list(NAMED)
    for _ in range(fuzz):
        text = rng.choice(SEEDS)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(text) + 1)
            text = text[:at] + rng.choice(PIECES) + text[at + rng.choice([0, 0, 1, 4]):]
        cases.append(text)
    cases.append(call('{"action": "left_click", "coordinate": "[1e2, 3e2]"}'))
    failures = sum(parse_fails(text) for text in cases[:-1])
    try:  # "[1e2, 3e2]" must be the point (100, 300), not the box [1, 2, 3, 2]
        failures += parse(cases[-1], DESKTOP, "computer").action.coordinate.model != (100.0, 300.0)
    except BaseException:  # noqa: BLE001
        failures += 1
    return {"cases": len(cases), "failures": failures}


# -- JSON Lines readers ------------------------------------------------------------------------


def jsonl_class(root: Path) -> dict:
    """Each reader x each separator: the record must come back whole."""
    from qvl_agent.batch import read_tasks
    from qvl_agent.models.scripted import read_script

    shot = root / "shot.png"
    Image.new("RGB", (800, 600), "white").save(shot)
    cases = failures = 0
    for name, separator in SEPARATORS.items():
        text = f"a{separator}b"
        readers = {
            "read_run": lambda d, t=text: _run_reads_back(d, shot, t),
            "scripted": lambda d, t=text: read_script(raw_jsonl(d / "s.jsonl", [{"response": t}])) == [t],
            "batch tasks": lambda d, t=text: read_tasks(raw_jsonl(d / "t.jsonl", [{"id": "a", "goal": t}]))[0].goal == t,
            "eval resume + annotations": lambda d, t=text: _eval_resumes(d, shot, t),
        }
        for reader, check in readers.items():
            where = root / f"{reader.replace(' ', '_')}-{name}"
            where.mkdir()
            cases += 1
            try:
                failures += not check(where)
            except BaseException:  # noqa: BLE001
                failures += 1
    return {"cases": cases, "failures": failures}


def _run_reads_back(where: Path, shot: Path, text: str) -> bool:
    from qvl_agent.trajectory import read_run

    # The script holds the separator too: the scripted reader is exercised on the way.
    script = raw_jsonl(where / "script.jsonl", [{"response": tool(action="type", text=text)},
                                                {"response": tool(action="answer", text=text)}])
    code, _, _ = cli("run", "x", "--device", f"image:{shot}", "--model", f"scripted:{script}", "--dry-run",
                     "--settle", "0", "--record", where / "run")
    run = read_run(where / "run")
    return code == 0 and [s.action.text for s in run.steps] == [text, text]


def _eval_resumes(where: Path, shot: Path, text: str) -> bool:
    annotations = raw_jsonl(where / "ss.jsonl", [{"img_filename": str(shot), "instruction": f"b{i} {text}",
                                                  "bbox": [1, 1, 50, 50], "data_type": "text",
                                                  "data_source": "windows"} for i in range(2)])
    script = raw_jsonl(where / "s.jsonl", [{"response": f"{text}\n" + tool(action="left_click", coordinate=[9, 9])}] * 2)
    args = ["eval", "--format", "screenspot", "--annotations", annotations, "--model", f"scripted:{script}",
            "--out", where / "out"]
    first = cli(*args)
    raw_jsonl(script, [{"response": "unused"}])  # a resume that asks the model again runs out
    second = cli(*args)
    metrics = json.loads((where / "out" / "metrics.json").read_text(encoding="utf-8"))
    return first[0] == 0 and second[0] == 0 and metrics["n"] == 2


def torn_class(root: Path) -> dict:
    """A step line cut at every byte of a multi-byte text: read back, torn line counted."""
    from qvl_agent.trajectory import read_run

    shot = root / "shot.png"
    Image.new("RGB", (800, 600), "white").save(shot)
    script = raw_jsonl(root / "torn.jsonl", [{"response": tool(action="type", text="ok")},
                                             {"response": tool(action="type", text="é世界🙂")},
                                             {"response": tool(action="terminate", status="success")}])
    cli("run", "x", "--device", f"image:{shot}", "--model", f"scripted:{script}", "--dry-run", "--settle", "0",
        "--record", root / "torn-run")
    steps = root / "torn-run" / "steps.jsonl"
    first, second, _ = steps.read_bytes().split(b"\n", 2)
    start = second.index("é".encode())
    cases = failures = 0
    for cut in range(start + 1, start + len("é世界🙂".encode())):
        steps.write_bytes(first + b"\n" + second[:cut])
        cases += 1
        try:
            run = read_run(root / "torn-run")
            failures += not (len(run.steps) == 1 and run.skipped_lines == 1)
        except BaseException:  # noqa: BLE001
            failures += 1
    return {"cases": cases, "failures": failures}


# -- pixel options, numbers, screens ---------------------------------------------------------------


def pixel_class(root: Path) -> dict:
    shot = root / "shot.png"
    Image.new("RGB", (800, 600), "white").save(shot)
    wide = root / "wide.png"
    Image.new("RGB", (6000, 20), "white").save(wide)
    script = raw_jsonl(root / "ok.jsonl", [{"response": tool(action="terminate", status="success")}])
    options = [["--max-pixels", "0"], ["--max-pixels", "-5"], ["--max-pixels", "10"], ["--min-pixels", "0"],
               ["--min-pixels", "-1"], ["--min-pixels", "5000", "--max-pixels", "4000"],
               ["--max-pixels", "1000000000000"]]
    cases = failures = 0
    for option in options:
        for command in (["parse", "--screen", "1920x1080"],
                        ["run", "x", "--device", f"image:{shot}", "--model", f"scripted:{script}",
                         "--record", root / f"r{cases}"]):
            cases += 1
            with _stdin(tool(action="left_click", coordinate=[1, 1])):
                result = cli(*command, *option)
            failures += not one_line_error(result)
    for command in (["parse", "--screen", "10000x40"], ["parse", "--screen", "40x10000"],
                    ["run", "x", "--device", f"image:{wide}", "--model", f"scripted:{script}",
                     "--record", root / "wide-run"]):
        cases += 1
        with _stdin(tool(action="left_click", coordinate=[1, 1])):
            failures += not one_line_error(cli(*command))
    for option in (["--max-seconds", "nan"], ["--max-seconds", "-1"], ["--max-steps", "0"], ["--settle", "inf"],
                   ["--max-new-tokens", "0"], ["--request-timeout", "0"], ["--monitor", "0"]):
        cases += 1
        failures += not one_line_error(cli("run", "x", "--device", f"image:{shot}", "--model", f"scripted:{script}",
                                           *option, "--record", root / f"n{cases}"))
    return {"cases": cases, "failures": failures}


@contextlib.contextmanager
def _stdin(text: str):
    saved, sys.stdin = sys.stdin, io.StringIO(text)
    try:
        yield
    finally:
        sys.stdin = saved


def budget_class(root: Path) -> dict:
    """Waits against a 1 s budget, on a still screen that waits as the desktop and the phone
    do (the wait itself is device-independent)."""
    from qvl_agent.agent import Agent, AgentConfig
    from qvl_agent.devices.base import perform_device_independent
    from qvl_agent.devices.still import StillImageDevice
    from qvl_agent.models.scripted import ScriptedModel

    class Waiting(StillImageDevice):
        def execute(self, action) -> None:
            perform_device_independent(action)

    cases = failures = 0
    for answer in (tool(action="wait", time=30), tool(action="wait", time=61), tool(action="wait", time=1e9)):
        started = time.monotonic()
        signal.signal(signal.SIGALRM, _too_long)
        signal.alarm(20)  # an older checkout sleeps what was asked
        try:
            Agent(ScriptedModel([answer] * 3), Waiting(Image.new("RGB", (800, 600))),
                  AgentConfig(max_seconds=1, settle_seconds=0)).run("x", record=root / f"b{cases}")
            failed = time.monotonic() - started > 10
        except BaseException:  # noqa: BLE001
            failed = True
        finally:
            signal.alarm(0)
        cases += 1
        failures += failed
    return {"cases": cases, "failures": failures}


def _too_long(signum, frame) -> None:
    raise TimeoutError("still waiting after 20 s")


# -- run directories and images ------------------------------------------------------------------


def rundir_class(root: Path) -> dict:
    shot = root / "shot.png"
    Image.new("RGB", (800, 600), "white").save(shot)
    script = raw_jsonl(root / "w.jsonl", [{"response": tool(action="wait", time=0)}] * 300)
    cases = failures = 0
    if os.geteuid() != 0:
        return {"cases": 0, "failures": 0, "note": "needs root to mount a read-only and a full tmpfs"}
    for options in ("ro,size=64k", "size=48k"):
        mount = root / f"mnt-{cases}"
        mount.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)]).returncode != 0:
            return {"cases": 0, "failures": 0, "note": "mount refused"}
        try:
            for record in (mount / "run", mount / "deep" / "run"):
                cases += 1
                result = cli("run", "x", "--device", f"image:{shot}", "--model", f"scripted:{script}",
                             "--max-steps", "300", "--settle", "0", "--record", record)
                failures += not one_line_error(result)
        finally:
            subprocess.run(["umount", str(mount)], check=True)
    return {"cases": cases, "failures": failures}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def images_class(root: Path) -> dict:
    shot = root / "shot.png"
    Image.new("RGB", (800, 600), "white").save(shot)
    bad = {}
    for name, side in (("bomb144mp", 12000), ("bomb1600mp", 40000)):
        bad[name] = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)) \
            + _chunk(b"IDAT", zlib.compress(b"\0" * 100)) + _chunk(b"IEND", b"")
    noise = io.BytesIO()
    Image.frombytes("RGB", (200, 150), os.urandom(90000)).save(noise, format="PNG")
    bad["junk"], bad["cut"] = b"not an image", noise.getvalue()[: len(noise.getvalue()) // 2]
    script = raw_jsonl(root / "img.jsonl", [{"response": tool(action="left_click", coordinate=[5, 5])},
                                            {"response": tool(action="terminate", status="success")}])
    cases = failures = 0
    for name, data in bad.items():
        path = root / f"{name}.png"
        path.write_bytes(data)
        for command in (["run", "x", "--device", f"image:{path}", "--model", "scripted:none.jsonl",
                         "--record", root / f"{name}-r"], ["ground", path, "the button", "--model", "scripted:none.jsonl"]):
            cases += 1
            failures += not one_line_error(cli(*command))
        record = root / f"{name}-run"
        cli("run", "x", "--device", f"image:{shot}", "--model", f"scripted:{script}", "--dry-run", "--settle", "0",
            "--record", record)
        (record / "screenshots" / "0001.png").write_bytes(data)
        for command in (["replay", record, "--device", f"image:{shot}", "--dry-run"],
                        ["report", record, "--out", root / f"{name}.html"]):
            cases += 1
            code, _, err = cli(*command)
            failures += code not in (0, 1, 2) or "Traceback" in err
    return {"cases": cases, "failures": failures}


# -- messages --------------------------------------------------------------------------------------


def messages_class(root: Path) -> dict:
    import argparse as _argparse

    from qvl_agent.cli import _parser

    checks = []
    saved = os.environ.pop("DISPLAY", None)
    try:
        err = cli("run", "x", "--device", "desktop", "--model", "scripted:none.jsonl")[2]
        hint = err.strip().split("): ")[-1] if "): " in err else err.split("(")[-1].rstrip(")\n")
        checks.append(subprocess.run(["bash", "-n", "-c", hint]).returncode == 0 and "Xvfb" in hint)
        os.environ["DISPLAY"] = ":391"
        err = cli("run", "x", "--device", "desktop", "--model", "scripted:none.jsonl")[2]
        checks.append("DISPLAY" in err.split(":391", 1)[-1] and "Xvfb" in err)
    finally:
        os.environ.pop("DISPLAY", None)
        if saved is not None:
            os.environ["DISPLAY"] = saved
    shot = root / "shot.png"
    Image.new("RGB", (800, 600)).save(shot)
    script = root / "answers.jsonl"
    script.write_text('{"response": "x"}\n')
    checks.append(f"scripted:{script}" in cli("run", "x", "--device", f"image:{shot}", "--model", script,
                                               "--record", root / "m1")[2])
    empty = root / "empty.jsonl"
    empty.write_text("")
    code, _, err = cli("run", "x", "--device", f"image:{shot}", "--model", f"scripted:{empty}", "--record", root / "m2")
    checks.append(code == 2 and "goal:" not in err)
    checks.append(cli("--version")[0] == 0)
    parser = _parser()
    commands = next(a for a in parser._actions if isinstance(a, _argparse._SubParsersAction)).choices
    for command in commands.values():
        for action in command._actions:
            if action.option_strings and not action.required and not isinstance(action, _argparse._HelpAction):
                formatter = command._get_formatter()
                formatter.add_argument(action)
                checks.append("default" in formatter.format_help())
    hub_check = _hub_fails_fast(root, shot)
    checks.append(hub_check)
    return {"cases": len(checks), "failures": checks.count(False)}


def _hub_fails_fast(root: Path, shot: Path) -> bool:
    """An uncached hub id, the Hub unreachable (a closed port): the error within 15 s, naming
    HF_HUB_OFFLINE=1 (a fresh process: huggingface_hub reads its settings at import)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_HOME=str(root / "hf"))
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", "qvl_agent", "run", "x", "--device", f"image:{shot}",
                               "--model", "qvl-tests/not-cached", "--record", str(root / "hub-run")],
                              capture_output=True, text=True, timeout=300, env=env)
    except subprocess.TimeoutExpired:
        return False
    return time.monotonic() - started < 15 and "HF_HUB_OFFLINE=1" in done.stderr


CLASSES = {
    "parser: hostile answers (named + fuzz)": lambda root, args: parser_class(args.fuzz),
    "JSON Lines readers x U+2028/U+2029/U+0085": lambda root, args: jsonl_class(root),
    "step line torn mid-character": lambda root, args: torn_class(root),
    "pixel options, numbers, screens past 200:1": lambda root, args: pixel_class(root),
    "waits vs a 1 s --max-seconds": lambda root, args: budget_class(root),
    "read-only / full run directory": lambda root, args: rundir_class(root),
    "bombs and corrupt images (run, ground, replay, report)": lambda root, args: images_class(root),
    "newcomer messages": lambda root, args: messages_class(root),
}


def run(args: argparse.Namespace) -> dict:
    figures = {}
    for name, measure in CLASSES.items():
        with tempfile.TemporaryDirectory(prefix="qvl-hostile-") as scratch:
            try:
                figures[name] = measure(Path(scratch), args)
            except BaseException as error:  # noqa: BLE001 - a class that cannot even be set up
                figures[name] = {"cases": None, "failures": None, "error": f"{type(error).__name__}: {error}"}
        row = figures[name]
        print(f"{name:<58} {row['cases']!s:>6} cases  {row['failures']!s:>5} failures"
              + (f"  ({row.get('note') or row.get('error')})" if row.get("note") or row.get("error") else ""),
              flush=True)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fuzz", type=int, default=2000, help="mutated answers fed to the parser")
    parser.add_argument("--out", type=Path, default=Path("bench/results/hostile_inputs.json"))
    arguments = parser.parse_args()
    write_figures(arguments.out, run(arguments))
