"""A model that replays recorded response texts in order (tests, demos, debugging).

The file is JSON Lines: one object per line with the raw model text under ``"response"``.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from qvl_agent.jsonl import NOT_UTF8, read_lines
from qvl_agent.models.base import ModelError, Response

if TYPE_CHECKING:
    from PIL import Image

    from qvl_agent.prompts import Prompt


def read_script(path: Path) -> list[str]:
    """The responses in ``path``; a bad line is an error naming the file and line."""
    if not path.is_file():
        raise ModelError(f"scripted model file not found: {path}")
    responses = []
    for number, line in read_lines(path):
        if line is None:
            raise ModelError(f"{path}:{number}: {NOT_UTF8}")
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ModelError(f"{path}:{number}: not valid JSON ({error.msg})") from None
        except (ValueError, RecursionError) as error:  # a 5000-digit number, deep nesting
            raise ModelError(
                f"{path}:{number}: not readable JSON ({type(error).__name__})") from None
        if not isinstance(record, dict) or not isinstance(record.get("response"), str):
            raise ModelError(f'{path}:{number}: expected an object with a string "response"')
        responses.append(record["response"])
    if not responses:
        raise ModelError(f'scripted model file {path} holds no responses (one JSON object per '
                         'line: {"response": "<the model\'s raw text>"})')
    return responses


class ScriptedModel:
    """Returns the scripted responses one per call; running out is an error, not a loop."""

    def __init__(self, responses: list[str], name: str = "scripted") -> None:
        self.name = name
        self._responses = list(responses)
        self.calls = 0
        self.prompts: list[Prompt] = []
        self._lock = threading.Lock()  # evals call from several threads

    @classmethod
    def from_file(cls, path: str | Path) -> ScriptedModel:
        path = Path(path)
        return cls(read_script(path), name=f"scripted:{path}")

    def respond(self, prompt: Prompt, image: Image.Image) -> Response:
        started = time.perf_counter()
        with self._lock:
            if self.calls >= len(self._responses):
                raise ModelError(
                    f"{self.name} has no response left: it holds {len(self._responses)} and "
                    f"call {self.calls + 1} asked for another"
                )
            text = self._responses[self.calls]
            self.calls += 1
            self.prompts.append(prompt)
        return Response(
            text=text, timings={"generate": (time.perf_counter() - started) * 1000}
        )
