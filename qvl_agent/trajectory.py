"""Run directories: what an episode records, how it is written, how it is read back.

A run directory holds::

    meta.json               goal, model, device, sizes, smart_resize parameters, versions;
                            rewritten (atomically) with the outcome when the run ends
    steps.jsonl             one JSON object per step, appended and flushed as each step ends
    screenshots/0001.png    the full-resolution screenshot each step saw

Crash safety: a step's screenshot is on disk before its line is appended, the line is
written in one ``write`` and fsynced, and ``meta.json`` is only ever replaced whole. A run
killed at any moment therefore leaves a directory that :func:`read_run` loads up to the
last complete step (a torn last line is ignored).
"""

from __future__ import annotations

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


class RunWriter:
    """Writes one run directory; screenshots are encoded on a background thread."""

    def __init__(self, path: str | Path, meta: RunMeta) -> None:
        self.path = Path(path)
        if self.path.exists() and any(self.path.iterdir()):
            raise FileExistsError(f"run directory {self.path} already exists and is not empty")
        (self.path / SCREENSHOT_DIR).mkdir(parents=True, exist_ok=True)
        self.meta = meta
        write_atomically(self.path / META_FILE, meta.model_dump_json(indent=2))
        self._steps = open(self.path / STEPS_FILE, "a", encoding="utf-8")
        self._encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qvl-screenshot")
        self._pending: dict[int, Future[None]] = {}

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
        if pending is not None:
            pending.result()
        self._steps.write(step.model_dump_json() + "\n")
        self._steps.flush()
        os.fsync(self._steps.fileno())

    def finish(self, outcome: Outcome) -> None:
        self.meta = self.meta.model_copy(update={"outcome": outcome})
        write_atomically(self.path / META_FILE, self.meta.model_dump_json(indent=2))
        self.close()

    def close(self) -> None:
        for pending in self._pending.values():
            pending.result()
        self._pending.clear()
        self._encoder.shutdown(wait=True)
        if not self._steps.closed:
            self._steps.close()


def _save_png(image: Image.Image, path: Path) -> None:
    temporary = path.with_suffix(".png.tmp")
    # compress_level 1: a 1080p frame in ~20 ms instead of ~150 ms, files ~30% larger.
    image.save(temporary, format="PNG", compress_level=1)
    os.replace(temporary, path)


def write_atomically(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide records from other users
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


class RunReadError(ValueError):
    """A directory that is not a readable run."""


def read_run(path: str | Path) -> Run:
    """Load a run directory, including one whose run was killed part-way."""
    path = Path(path)
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise RunReadError(f"{path} is not a run directory: {META_FILE} is missing")
    try:
        meta = RunMeta.model_validate_json(meta_path.read_text(encoding="utf-8"))
    except ValidationError as error:
        raise RunReadError(f"{meta_path}: not a qvl-agent run ({error.error_count()} errors)") from None
    if meta.format_version > FORMAT_VERSION:
        raise RunReadError(
            f"{path} was written in format {meta.format_version}; this qvl-agent reads up to "
            f"{FORMAT_VERSION}: upgrade qvl-agent"
        )
    steps: list[Step] = []
    skipped = 0
    steps_path = path / STEPS_FILE
    if steps_path.is_file():
        for line in steps_path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                step = Step.model_validate_json(line)
            except ValidationError:
                skipped += 1  # a line torn by a crash
                continue
            if (path / step.screenshot).is_file():
                steps.append(step)
            else:
                skipped += 1
    return Run(path=path, meta=meta, steps=steps, skipped_lines=skipped)
