"""Batch runs: a task suite across several devices at once (``qvl-agent run-batch``).

One worker per device runs one episode at a time, taking the next task from a shared queue,
so a fast phone is never idle while a slow one works. All workers share one model (an
endpoint or ``qvl-agent serve`` keeps their requests in flight together). Each episode is an
ordinary run directory under the batch's root; ``summary.json`` beside them holds every
episode's outcome and the success rate, with the step budget and the seed of the order.

A device that fails (dropped phone, failed capture) is retired after the episode it failed
in; the other devices take its share. Nothing an episode does can stop the batch.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qvl_agent.agent import Agent, AgentConfig
from qvl_agent.devices.base import Device
from qvl_agent.guard import Steering
from qvl_agent.jsonl import NOT_UTF8, read_lines
from qvl_agent.models.base import Model
from qvl_agent.trajectory import Step, write_atomically, write_problem

SUMMARY_FILE = "summary.json"
# Statuses after which the device is not trusted with another episode.
_DEVICE_FAILED = ("device_error", "capture_error")


class BatchError(ValueError):
    """A tasks file or batch setup that cannot run; the message names the file and line."""


class BatchTask(BaseModel):
    model_config = ConfigDict(extra="ignore")  # suites may carry their own fields

    id: str = Field(min_length=1)
    goal: str = Field(min_length=1)
    max_steps: int | None = Field(default=None, ge=1)

    @property
    def dir_name(self) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "-", self.id).strip("-.") or "task"


class Episode(BaseModel):
    id: str
    goal: str
    device: str | None
    status: str  # the agent's status, or "error" / "not_run"
    reason: str
    succeeded: bool
    steps: int = 0
    max_steps: int
    seconds: float = 0.0
    answer: str | None = None
    run_dir: str | None = None


class BatchSummary(BaseModel):
    tasks_file: str | None
    model: str
    devices: list[str]
    max_steps: int
    shuffled: bool
    seed: int | None
    started_at: float
    seconds: float
    n: int
    succeeded: int
    success_rate: float
    statuses: dict[str, int]
    episodes: list[Episode]


def read_tasks(path: str | Path) -> list[BatchTask]:
    """The tasks in a JSON Lines file; any bad line is an error naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise BatchError(f"tasks file not found: {path}")
    tasks: list[BatchTask] = []
    seen: dict[str, int] = {}
    for number, line in read_lines(path):
        if line is None:
            raise BatchError(f"{path}:{number}: {NOT_UTF8}")
        try:
            task = BatchTask.model_validate_json(line)
        except ValidationError as error:
            problem = error.errors()[0]
            where = ".".join(str(part) for part in problem["loc"])
            raise BatchError(
                f"{path}:{number}: {where + ': ' if where else ''}{problem['msg']} "
                '(each line: {"id": ..., "goal": ..., optional "max_steps": N})'
            ) from None
        if task.dir_name in seen:
            raise BatchError(
                f"{path}:{number}: id {task.id!r} repeats line {seen[task.dir_name]} "
                "(ids name the run directories and must differ)"
            )
        seen[task.dir_name] = number
        tasks.append(task)
    if not tasks:
        raise BatchError(f"{path} holds no tasks")
    return tasks


class Progress:
    """Lines on stderr-like ``write``: each step, tagged with device and task, and each
    finished episode with the running tally and an estimate of the time left."""

    def __init__(self, total: int, write: Callable[[str], None]) -> None:
        self.total, self.write = total, write
        self.done = self.succeeded = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def step(self, device: str, task: BatchTask, step: Step) -> None:
        from qvl_agent.actions import describe

        what = describe(step.action) if step.action is not None else f"(no action: {step.error})"
        model_ms = step.timings.get("model", 0)
        self.say(f"[{device}] {task.id} step {step.index}: {what}  [model {model_ms:.0f} ms]")

    def episode(self, episode: Episode) -> None:
        with self._lock:
            self.done += 1
            self.succeeded += episode.succeeded
            elapsed = time.monotonic() - self.started
            left = self.total - self.done
            eta = elapsed / self.done * left
            steps = f"{episode.steps} step" + ("" if episode.steps == 1 else "s")
            self.write(
                f"[{self.done}/{self.total}] {episode.id} on {episode.device}: {episode.status} "
                f"after {steps} in {episode.seconds:.1f} s ({self.succeeded} succeeded "
                f"so far{f', about {eta:.0f} s left' if left else ''})"
            )

    def say(self, line: str) -> None:
        with self._lock:
            self.write(line)


def run_batch(
    tasks: list[BatchTask],
    devices: list[str],
    model: Model,
    config: AgentConfig,
    root: str | Path,
    open_device: Callable[[str], Device],
    *,
    seed: int | None = None,
    tasks_file: str | Path | None = None,
    write: Callable[[str], None] = print,
    steering: Steering | None = None,
) -> BatchSummary:
    """Run every task once, on ``devices`` in parallel (one episode per device at a time);
    ``seed`` shuffles the order. Writes ``root/<task id>/`` per episode and
    ``root/summary.json``. ``steering`` (``--watch``) follows every episode; a stop from it
    ends the episodes under way and starts no new one."""
    root = Path(root)
    if (root / SUMMARY_FILE).exists():
        raise BatchError(f"{root} already holds a batch ({SUMMARY_FILE}); choose another --record")
    if not devices:
        raise BatchError("a batch needs at least one device")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BatchError(str(write_problem(root, error, started=False))) from None
    order = list(range(len(tasks)))
    if seed is not None:
        random.Random(seed).shuffle(order)
    pending = [tasks[i] for i in order]
    results: dict[str, Episode] = {}
    lock, stop = threading.Lock(), threading.Event()
    progress = Progress(len(tasks), write)
    started_at, started = time.time(), time.monotonic()

    def next_task() -> BatchTask | None:
        with lock:
            return pending.pop(0) if pending and not stop.is_set() else None

    def work(spec: str) -> None:
        try:
            device = open_device(spec)
        except Exception as error:  # this device is out; the others carry on
            progress.say(f"[{spec}] not used: {error}")
            return
        try:
            while (task := next_task()) is not None:
                episode = _run_episode(task, spec, device, model, config, root, progress,
                                       steering)
                with lock:
                    results[task.id] = episode
                    if episode.status == "interrupted":  # stopped by a person: no new tasks
                        stop.set()
                progress.episode(episode)
                if episode.status in _DEVICE_FAILED:
                    progress.say(
                        f"[{spec}] retired after {episode.status}; the other devices take its tasks"
                    )
                    return
        finally:
            device.close()

    threads = [
        threading.Thread(target=work, args=(spec,), name=f"batch-{spec}", daemon=True)
        for spec in devices
    ]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except KeyboardInterrupt:  # let the episodes under way end (and record) cleanly
        stop.set()
        progress.say("interrupted: finishing the episodes under way; Ctrl-C again to abandon them")
        for thread in threads:
            thread.join()

    episodes = [
        results.get(task.id)
        or Episode(
            id=task.id,
            goal=task.goal,
            device=None,
            status="not_run",
            succeeded=False,
            reason="interrupted before it started"
            if stop.is_set()
            else "no working device was left to run it",
            max_steps=task.max_steps or config.max_steps,
        )
        for task in (tasks[i] for i in order)
    ]
    summary = _summarise(
        episodes, tasks_file, model, devices, config, seed, started_at, time.monotonic() - started
    )
    try:
        write_atomically(root / SUMMARY_FILE, summary.model_dump_json(indent=2))
    except OSError as error:
        raise BatchError(str(write_problem(root, error, started=True))) from None
    return summary


def _run_episode(
    task: BatchTask,
    spec: str,
    device: Device,
    model: Model,
    config: AgentConfig,
    root: Path,
    progress: Progress,
    steering: Steering | None = None,
) -> Episode:
    budget = task.max_steps or config.max_steps
    agent = Agent(
        model,
        device,
        config.model_copy(update={"max_steps": budget}),
        on_step=lambda step: progress.step(spec, task, step),
        steering=steering,
    )
    run_dir = root / task.dir_name
    started = time.monotonic()
    common: dict[str, Any] = {
        "id": task.id,
        "goal": task.goal,
        "device": spec,
        "max_steps": budget,
        "run_dir": str(run_dir),
    }
    try:
        result = agent.run(task.goal, record=run_dir)
    except Exception as error:  # a bug or an unforeseen failure ends this episode, not the batch
        return Episode(
            **common,
            status="error",
            reason=f"{type(error).__name__}: {error}",
            succeeded=False,
            seconds=round(time.monotonic() - started, 3),
        )
    return Episode(
        **common,
        status=result.status,
        reason=result.reason,
        succeeded=result.succeeded,
        steps=result.steps,
        answer=result.answer,
        seconds=round(time.monotonic() - started, 3),
    )


def _summarise(
    episodes: list[Episode],
    tasks_file: str | Path | None,
    model: Model,
    devices: list[str],
    config: AgentConfig,
    seed: int | None,
    started_at: float,
    seconds: float,
) -> BatchSummary:
    statuses: dict[str, int] = {}
    for episode in episodes:
        statuses[episode.status] = statuses.get(episode.status, 0) + 1
    succeeded = sum(episode.succeeded for episode in episodes)
    return BatchSummary(
        tasks_file=str(tasks_file) if tasks_file is not None else None,
        model=model.name,
        devices=devices,
        max_steps=config.max_steps,
        shuffled=seed is not None,
        seed=seed,
        started_at=started_at,
        seconds=round(seconds, 3),
        n=len(episodes),
        succeeded=succeeded,
        success_rate=round(succeeded / len(episodes), 4) if episodes else 0.0,
        statuses=statuses,
        episodes=episodes,
    )


def summary_table(summary: BatchSummary) -> str:
    """The summary as a few lines for the terminal."""
    order = f"shuffled with seed {summary.seed}" if summary.shuffled else "in file order"
    lines = [
        f"{summary.succeeded}/{summary.n} succeeded ({summary.success_rate:.1%}), step budget "
        f"{summary.max_steps}, tasks {order}, {summary.seconds:.1f} s "
        f"on {len(summary.devices)} devices",
        f"  {'id':<24} {'device':<30} {'status':<14} {'steps':>5} {'seconds':>8}",
    ]
    for episode in summary.episodes:
        lines.append(
            f"  {episode.id[:24]:<24} {(episode.device or '-')[:30]:<30} {episode.status:<14} "
            f"{episode.steps:>5} {episode.seconds:>8.1f}"
        )
    return "\n".join(lines)


def default_batch_dir(root: str | Path = "runs") -> Path:
    return Path(root) / f"batch-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
