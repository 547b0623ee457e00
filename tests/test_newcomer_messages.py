"""What a newcomer meets first: no X display, a wrong one, no network to the model hub, a
scripted file without its prefix or with nothing in it, --version, and every option's default
in --help."""

import argparse
import contextlib
import io
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from qvl_agent import __version__
from qvl_agent.cli import _parser, main

ROOT = Path(__file__).resolve().parent.parent


def qvl(*args: str) -> SimpleNamespace:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit:  # --version, --help
            code = exit.code
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def free_display() -> int:
    return next(n for n in range(140, 400) if not Path(f"/tmp/.X11-unix/X{n}").exists()
                and not Path(f"/tmp/.X{n}-lock").exists())


# -- the X display -----------------------------------------------------------------------------


def test_without_display_the_hint_is_one_line_a_shell_runs(monkeypatch, tmp_path):
    monkeypatch.delenv("DISPLAY", raising=False)
    result = qvl("run", "x", "--device", "desktop", "--model", "scripted:none.jsonl")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    hint = result.stderr.strip().split("): ")[-1]
    assert "Xvfb" in hint and "DISPLAY=" in hint
    # Exactly as printed, on another display number: it starts a display qvl-agent can use.
    number = free_display()
    command = hint.replace(":99", f":{number}")
    probe = (f"{command}\nfor i in $(seq 100); do [ -e /tmp/.X11-unix/X{number} ] && break; sleep 0.1; done\n"
             f'"{sys.executable}" -c "from Xlib.display import Display; Display().close(); '
             f"import os; print(os.environ['DISPLAY'])\"\nstatus=$?\nkill $!\nwait\nexit $status")
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "XAUTHORITY": str(tmp_path / "xauth")})
    assert done.returncode == 0 and done.stdout.strip() == f":{number}", done.stderr


def test_a_wrong_display_gets_advice(monkeypatch):
    monkeypatch.setenv("DISPLAY", f":{free_display()}")
    result = qvl("run", "x", "--device", "desktop", "--model", "scripted:none.jsonl")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "set DISPLAY to the display of a running X server" in result.stderr
    assert "Xvfb :99 -screen 0 1920x1080x24 & export DISPLAY=:99" in result.stderr


# -- the model hub ---------------------------------------------------------------------------


class Unreachable:
    """A "hub" that accepts connections and closes them at once (as a blocking firewall or a
    dead proxy does), counting them."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def unreachable_hub(tmp_path):
    hub = Unreachable()
    env = {key: value for key, value in os.environ.items()
           if key not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{hub.port}", HF_HOME=str(tmp_path / "hf"))
    yield hub, env
    hub.close()


def run_cli(env, *args, cwd=None):
    return subprocess.run([sys.executable, "-m", "qvl_agent", *map(str, args)], capture_output=True,
                          text=True, timeout=300, env=env, cwd=cwd or ROOT)


def test_an_unreachable_hub_fails_at_once_with_what_to_do(unreachable_hub, tmp_path):
    hub, env = unreachable_hub
    Image.new("RGB", (800, 600)).save(tmp_path / "shot.png")
    result = run_cli(env, "run", "x", "--device", f"image:{tmp_path / 'shot.png'}",
                     "--model", "qvl-tests/not-cached", "--record", tmp_path / "run")
    assert result.returncode == 2, result.stderr
    error = result.stderr.splitlines()[-1]
    assert "HF_HUB_OFFLINE=1" in error and "--model PATH" in error and "hf download qvl-tests/not-cached" in error
    assert hub.connections == 1  # one probe, no retries


def test_an_unreachable_hub_loads_a_cached_model_from_the_cache(unreachable_hub, tiny_checkpoint, tmp_path):
    hub, env = unreachable_hub
    revision = "0" * 40
    cache = tmp_path / "hf" / "hub" / "models--qvl-tests--tiny"
    shutil.copytree(tiny_checkpoint, cache / "snapshots" / revision)
    (cache / "refs").mkdir()
    (cache / "refs" / "main").write_text(revision)
    Image.new("RGB", (800, 600)).save(tmp_path / "shot.png")
    result = run_cli(env, "run", "x", "--device", f"image:{tmp_path / 'shot.png'}", "--model", "qvl-tests/tiny",
                     "--max-steps", "1", "--max-new-tokens", "4", "--dry-run", "--record", tmp_path / "run")
    assert "recorded in" in result.stderr, result.stderr  # garbage answers: parse_error, exit 1
    assert "loading qvl-tests/tiny from the local cache only" in result.stderr
    assert hub.connections == 1


# -- scripted models --------------------------------------------------------------------------


def test_a_jsonl_model_without_its_prefix_gets_the_prefix_suggested(tmp_path):
    Image.new("RGB", (800, 600)).save(tmp_path / "shot.png")
    script = tmp_path / "script.jsonl"
    script.write_text('{"response": "x"}\n')
    result = qvl("run", "x", "--device", f"image:{tmp_path / 'shot.png'}", "--model", script,
                 "--record", tmp_path / "run")
    assert result.returncode == 2 and f"--model scripted:{script}" in result.stderr.splitlines()[-1]


def test_an_empty_scripted_file_is_an_error_at_load(tmp_path):
    Image.new("RGB", (800, 600)).save(tmp_path / "shot.png")
    script = tmp_path / "script.jsonl"
    script.write_text("\n\n")
    result = qvl("run", "x", "--device", f"image:{tmp_path / 'shot.png'}", "--model", f"scripted:{script}",
                 "--record", tmp_path / "run")
    assert result.returncode == 2 and "holds no responses" in result.stderr.splitlines()[-1]
    assert "goal:" not in result.stderr and not (tmp_path / "run").exists()


# -- --version and --help ---------------------------------------------------------------------


def test_version():
    result = qvl("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"qvl-agent {__version__}"


def test_every_options_help_shows_its_default():
    parser = _parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    missing = []
    for name, command in commands.items():
        for action in command._actions:
            if not action.option_strings or action.required or isinstance(action, argparse._HelpAction):
                continue
            formatter = command._get_formatter()  # the option's own entry, as --help prints it
            formatter.add_argument(action)
            if "default" not in formatter.format_help():
                missing.append(f"{name} {action.option_strings[0]}")
    assert missing == []
    run_help = qvl("run", "--help").stdout
    assert "(default: 30)" in " ".join(run_help.split())  # --max-steps, which said nothing
