"""Run directories: what an episode records, how it is written, how it is read back.

A run directory holds::

    meta.json               goal, model, device, sizes, smart_resize parameters, versions;
                            rewritten (atomically) with the outcome when the run ends
    steps.jsonl             one JSON object per step, appended and flushed as each step ends
    screenshots/0001.png    the full-resolution screenshot each step saw

Crash safety: a step's screenshot is on disk before its line is appended, the line is
written in one ``write`` and fsynced, and ``meta.json`` is only ever replaced whole. A run
killed at any moment therefore leaves a directory that :func:`read_run` loads up to the
last complete step (a torn last line, even one torn mid-character, is skipped and counted).
"""

from __future__ import annotations

import errno
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from PIL import Image
from pydantic import BaseModel, Field, ValidationError

from qvl_agent import __version__
from qvl_agent.actions import Action
from qvl_agent.geometry import Frame
from qvl_agent.jsonl import read_lines

FORMAT_VERSION = 1
META_FILE = "meta.json"
STEPS_FILE = "steps.jsonl"
SCREENSHOT_DIR = "screenshots"

StepOutcome = Literal["executed", "dry_run", "final", "declined", "parse_error", "device_error", "model_error",
                      "interrupted"]
FINAL_SCREENSHOT = f"{SCREENSHOT_DIR}/final.png"


class Attempt(BaseModel):
    """One model answer within a step; a step has several when answers could not be parsed."""

    response: str
    error: str | None = None
    prompt_tokens: int | None = None
    generated_tokens: int | None = None
    cached_prompt_tokens: int | None = None
    forced_tokens: int | None = None
    model_ms: float = 0.0


class Step(BaseModel):
    index: int
    started_at: float
    screenshot: str  # path relative to the run directory
    frame: Frame
    prompt_digest: str
    attempts: list[Attempt]
    action: Action | None = None
    # The model's reasoning before its action, when its answer format carries one (a UI-TARS
    # "Thought:", GUI-Owl's <thinking>, prose before a Qwen tool call).
    thought: str | None = None
    # The model's own summary of its action, when its format has one (GUI-Owl's
    # <conclusion>); such families read it back as the step's history.
    summary: str | None = None
    notes: list[str] = Field(default_factory=list)
    outcome: StepOutcome
    error: str | None = None
    timings: dict[str, float] = Field(default_factory=dict)  # milliseconds per stage

    @property
    def response(self) -> str:
        """The raw text of the answer that was used (the last attempt)."""
        return self.attempts[-1].response if self.attempts else ""


class Outcome(BaseModel):
    status: str
    reason: str
    steps: int
    answer: str | None = None
    finished_at: float = Field(default_factory=time.time)
    # The screen after the last action (screenshots/final.png), when the last step performed
    # one; absent from older runs and from runs whose last step did not act.
    final_screenshot: str | None = None


class RunMeta(BaseModel):
    format_version: int = FORMAT_VERSION
    goal: str
    model: str
    device: str
    space: str
    started_at: float = Field(default_factory=time.time)
    config: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    outcome: Outcome | None = None


class Run(BaseModel):
    """A run directory read back."""

    path: Path
    meta: RunMeta
    steps: list[Step]
    # Lines that could not be read (a torn last line after a crash), for the record.
    skipped_lines: int = 0

    @property
    def complete(self) -> bool:
        return self.meta.outcome is not None


def software_versions() -> dict[str, str]:
    versions = {"qvl_agent": __version__, "python": platform.python_version()}
    for package in ("torch", "transformers", "pyautogui", "mss", "adbutils"):
        module = sys.modules.get(package)  # report only what this run actually loaded
        if module is not None:
            versions[package] = str(getattr(module, "__version__", "unknown"))
    return versions


class RunWriteError(RuntimeError):
    """The run directory cannot be written (read-only, full, gone); the message says what to do."""


def write_problem(path: Path, error: OSError, started: bool) -> RunWriteError:
    """A one-line RunWriteError for ``error`` met writing the run directory ``path``."""
    reason = error.strerror or str(error)
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        advice = "free some space, or record on another disk with --record DIR"
    elif error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        advice = "choose a directory you can write with --record DIR"
    else:
        advice = "choose another place with --record DIR"
    kept = "; the steps recorded so far are kept" if started else ""
    return RunWriteError(f"cannot write the run directory {path} ({reason}): {advice}{kept}")


class RunWriter:
    """Writes one run directory; screenshots are encoded on a background thread.

    Every failure to write is a :class:`RunWriteError` (FileExistsError for a directory
    that already holds something)."""

    def __init__(self, path: str | Path, meta: RunMeta) -> None:
        self.path = Path(path)
        self.meta = meta
        self._pending: dict[int, Future[None]] = {}
        try:
            if self.path.exists() and any(self.path.iterdir()):
                raise FileExistsError(f"run directory {self.path} already exists and is not empty")
            (self.path / SCREENSHOT_DIR).mkdir(parents=True, exist_ok=True)
            write_atomically(self.path / META_FILE, meta.model_dump_json(indent=2))
            self._steps = open(self.path / STEPS_FILE, "ab", buffering=0)
        except FileExistsError:
            raise
        except OSError as error:
            raise write_problem(self.path, error, started=False) from None
        self._encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qvl-screenshot")

    def save_screenshot(self, index: int, image: Image.Image) -> str:
        """Start writing the step's screenshot; returns its relative path at once."""
        relative = f"{SCREENSHOT_DIR}/{index:04d}.png"
        self._pending[index] = self._encoder.submit(_save_png, image, self.path / relative)
        return relative

    def save_final_screenshot(self, image: Image.Image) -> str:
        """Write the screen as it is after the last action; returns its relative path."""
        _save_png(image, self.path / FINAL_SCREENSHOT)
        return FINAL_SCREENSHOT

    def append_step(self, step: Step) -> None:
        """Append the step once its screenshot is safely on disk."""
        pending = self._pending.pop(step.index, None)
        try:
            if pending is not None:
                pending.result()
            line = (step.model_dump_json() + "\n").encode("utf-8")
            # One unbuffered write of the whole line: a full disk leaves at worst a torn last
            # line (skipped when read back) and the run stops there.
            if self._steps.write(line) != len(line):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            os.fsync(self._steps.fileno())
        except OSError as error:
            raise write_problem(self.path, error, started=True) from None

    def finish(self, outcome: Outcome) -> None:
        self.meta = self.meta.model_copy(update={"outcome": outcome})
        try:
            write_atomically(self.path / META_FILE, self.meta.model_dump_json(indent=2))
        except OSError as error:
            self.close()
            raise write_problem(self.path, error, started=True) from None
        self.close()

    def close(self) -> None:
        """Wait for the screenshots still being written, and close the steps file."""
        failure: OSError | None = None
        for pending in self._pending.values():
            try:
                pending.result()
            except OSError as error:
                failure = failure or error
        self._pending.clear()
        self._encoder.shutdown(wait=True)
        if not self._steps.closed:
            self._steps.close()
        if failure is not None:
            raise write_problem(self.path, failure, started=True)


def reserve_run_dir(path: Path) -> bool:
    """Create the (empty) run directory ``path`` now, so that a place that cannot be written is
    known before a model loads (RunWriter takes it as it is); True when it was created here.
    A directory that already holds something is a FileExistsError, like RunWriter's."""
    if path.is_dir() and any(path.iterdir()):
        raise FileExistsError(f"run directory {path} already exists and is not empty")
    try:
        created = not path.exists()
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise write_problem(path, error, started=False) from None
    return created


def release_run_dir(path: Path) -> None:
    """Remove the directory :func:`reserve_run_dir` created, when nothing was written in it."""
    try:
        path.rmdir()
    except OSError:
        pass


def _save_png(image: Image.Image, path: Path) -> None:
    temporary = path.with_suffix(".png.tmp")
    try:
        # compress_level 1: a 1080p frame in ~20 ms instead of ~150 ms, files ~30% larger.
        image.save(temporary, format="PNG", compress_level=1)
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)  # a full disk: give back what the part-file took
        raise


def write_atomically(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide records from other users
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)  # never leave a part-file on a full disk
        raise


class RunReadError(ValueError):
    """A directory that is not a readable run."""


def read_run(path: str | Path) -> Run:
    """Load a run directory, including one whose run was killed part-way."""
    path = Path(path)
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise RunReadError(f"{path} is not a run directory: {META_FILE} is missing")
    try:
        meta = RunMeta.model_validate_json(meta_path.read_bytes())
    except ValidationError as error:
        raise RunReadError(f"{meta_path}: not a qvl-agent run ({error.error_count()} errors)") from None
    except OSError as error:
        raise RunReadError(f"cannot read {meta_path}: {error.strerror or error}") from None
    if meta.format_version > FORMAT_VERSION:
        raise RunReadError(
            f"{path} was written in format {meta.format_version}; this qvl-agent reads up to "
            f"{FORMAT_VERSION}: upgrade qvl-agent"
        )
    steps: list[Step] = []
    skipped = 0
    steps_path = path / STEPS_FILE
    if steps_path.is_file():
        try:
            lines = read_lines(steps_path)
        except OSError as error:
            raise RunReadError(f"cannot read {steps_path}: {error.strerror or error}") from None
        for line in lines:
            if line.text is None:
                skipped += 1  # torn mid-character by a crash or a full disk
                continue
            try:
                step = Step.model_validate_json(line.text)
            except ValidationError:
                skipped += 1  # a line torn by a crash
                continue
            if (path / step.screenshot).is_file():
                steps.append(step)
            else:
                skipped += 1
    return Run(path=path, meta=meta, steps=steps, skipped_lines=skipped)
