"""Small builders shared by the agent and CLI tests."""

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path


def tool_call(space: str = "computer", **arguments) -> str:
    name = {"computer": "computer_use", "mobile": "mobile_use"}[space]
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments}, ensure_ascii=False)}\n</tool_call>"


def write_script(path: Path, responses: list[str]) -> Path:
    path.write_text("".join(json.dumps({"response": r}) + "\n" for r in responses), encoding="utf-8")
    return path


def qvl_in_process(*args, stdin: str = "") -> subprocess.CompletedProcess:
    """``qvl-agent ARGS`` through its entry point, in this process (no interpreter and torch
    start per call): its exit status and what it printed, as from a process."""
    from qvl_agent.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    saved, sys.stdin = sys.stdin, io.StringIO(stdin)
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code
        finally:
            sys.stdin = saved
    return subprocess.CompletedProcess(args, code, stdout.getvalue(), stderr.getvalue())
