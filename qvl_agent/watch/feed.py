"""What the watch page shows, kept up to date by the run's thread and read by the server's.

The feed holds one view per run (a batch has one per episode) and the steering state. Every
change bumps a version number; the server's event stream waits for a version newer than the
one it last sent and then sends the runs that changed, with only the steps added since (a
page that connects or reconnects starts from version 0 and gets everything). Screenshots are
kept as references to the captured images (the run's thread never waits for an encoder) and
encoded as JPEG when the page asks.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from PIL import Image

from qvl_agent.imaging import ImageReadError, open_image, preview_jpeg

# Text shown per step (a thought, a raw answer) is cut to this many characters.
MAX_TEXT = 8000
# Captured images kept in memory for the page (the newest; older ones are read from disk).
KEPT_IMAGES = 8
# Screenshots wider than this are shrunk by a whole factor for the page (the browser scales).
PAGE_WIDTH = 2560
# Encoded JPEGs kept for repeated requests.
KEPT_JPEGS = 32


def clip(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_TEXT:
        return text
    return text[:MAX_TEXT] + f"\n... ({len(text) - MAX_TEXT} more characters)"


class LiveFeed:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.version = 0
        self.closed = False
        self.control: dict[str, Any] = {}
        self._runs: dict[int, dict[str, Any]] = {}
        self._run_versions: dict[int, int] = {}
        self._step_versions: dict[tuple[int, int], int] = {}
        self._run_dirs: dict[int, Path] = {}
        self._images: OrderedDict[tuple[int, str], Image.Image] = OrderedDict()
        self._jpegs: OrderedDict[tuple[int, str], bytes] = OrderedDict()
        self._delivered: dict[int, int] = {}  # stream id -> version it last sent
        self._streams = 0

    # -- written by the run's side -------------------------------------------------------

    def new_run(self, view: dict[str, Any], run_dir: Path | None) -> int:
        with self._changed:
            run_id = len(self._runs) + 1
            self._runs[run_id] = {"id": run_id, "steps": [], "current": None, **view}
            if run_dir is not None:
                self._run_dirs[run_id] = Path(run_dir)
            self._bump(run_id)
            return run_id

    def update(self, run_id: int, **fields: Any) -> None:
        with self._changed:
            self._runs[run_id].update(fields)
            self._bump(run_id)

    def add_step(self, run_id: int, step: dict[str, Any]) -> None:
        with self._changed:
            steps = self._runs[run_id]["steps"]
            steps[:] = [s for s in steps if s["index"] != step["index"]] + [step]
            self._bump(run_id)
            self._step_versions[(run_id, step["index"])] = self.version

    def set_control(self, **state: Any) -> None:
        with self._changed:
            self.control.update(state)
            self._bump(None)

    def put_image(self, run_id: int, key: str, image: Image.Image) -> None:
        """Keep a reference to a captured screenshot; encoding waits for the page to ask."""
        with self._changed:
            self._images[(run_id, key)] = image
            self._images.move_to_end((run_id, key))
            while len(self._images) > KEPT_IMAGES:
                self._images.popitem(last=False)
            self._jpegs.pop((run_id, key), None)

    def close(self) -> None:
        with self._changed:
            self.closed = True
            self._bump(None)

    def _bump(self, run_id: int | None) -> None:
        self.version += 1
        if run_id is not None:
            self._run_versions[run_id] = self.version
        self._changed.notify_all()

    # -- read by the server ----------------------------------------------------------------

    def view(self, run_id: int) -> dict[str, Any]:
        """A copy of one run's view."""
        with self._changed:
            return _copy(self._runs[run_id])

    def changes(self, since: int, timeout: float) -> tuple[int, dict[str, Any] | None]:
        """Wait up to ``timeout`` s for a version after ``since``; the new version and the
        message to send (the runs changed since then, the steering state), or None."""
        with self._changed:
            self._changed.wait_for(lambda: self.version > since, timeout=timeout)
            if self.version <= since:
                return since, None
            runs = {}
            for run_id, changed in self._run_versions.items():
                if changed > since:
                    view = self._runs[run_id]
                    steps = [s for s in view["steps"]
                             if self._step_versions[(run_id, s["index"])] > since]
                    runs[str(run_id)] = {**view, "steps": steps, "step_count": len(view["steps"])}
            message = {"version": self.version, "control": dict(self.control), "runs": runs,
                       "order": list(self._runs), "closed": self.closed, "time": time.time()}
            return self.version, _copy(message)

    def open_stream(self) -> int:
        with self._changed:
            self._streams += 1
            self._delivered[self._streams] = 0
            return self._streams

    def delivered(self, stream: int, version: int) -> None:
        with self._changed:
            self._delivered[stream] = version
            self._changed.notify_all()

    def close_stream(self, stream: int) -> None:
        with self._changed:
            self._delivered.pop(stream, None)
            self._changed.notify_all()

    def wait_delivered(self, timeout: float) -> bool:
        """Wait until every open stream has sent the current version (the run's end)."""
        with self._changed:
            return self._changed.wait_for(
                lambda: all(v >= self.version for v in self._delivered.values()), timeout=timeout)

    def jpeg(self, run_id: int, key: str) -> bytes | None:
        """The screenshot ``key`` (a step number or ``final``) of run ``run_id`` as a JPEG:
        from memory while the step is under way, from the run directory once recorded."""
        with self._changed:
            cached = self._jpegs.get((run_id, key))
            image = self._images.get((run_id, key))
            run_dir = self._run_dirs.get(run_id)
            path = _recorded_path(self._runs.get(run_id), key)
        if cached is not None:
            return cached
        if image is None:
            if run_dir is None or path is None:
                return None
            try:
                image = open_image(run_dir / path, what="screenshot")
            except ImageReadError:
                return None
        data = preview_jpeg(image, max_width=PAGE_WIDTH, exact=False)  # on a server thread: fast
        with self._changed:
            self._jpegs[(run_id, key)] = data
            while len(self._jpegs) > KEPT_JPEGS:
                self._jpegs.popitem(last=False)
        return data


def _recorded_path(view: dict[str, Any] | None, key: str) -> str | None:
    """The screenshot file a recorded step (or the run's final screenshot) names."""
    if view is None:
        return None
    if key == "final":
        return (view.get("final") or {}).get("path")
    for step in view["steps"]:
        if str(step["index"]) == key:
            return step.get("path")
    return None


def _copy(value: Any) -> Any:
    """A deep copy of plain JSON data, so the stream serialises it outside the lock."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
