"""What a model family is: the data it was trained on, plus one parser.

A :class:`Family` holds a checkpoint family's trained prompt (a builder over the templates in
``prompts/``), where the screenshot goes, its pixel bounds and resize factor, its coordinate
frame, its history format, and the parser from its output grammar to our typed actions. The
agent loop, ``eval`` and ``ground`` ask the family for a prompt and a parser; none of them
branches on which family it is, and :mod:`qvl_agent.geometry` converts every coordinate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from qvl_agent.actions import Action, Space
from qvl_agent.geometry import Coordinates, Frame, Monitor
from qvl_agent.parsing import Parsed
from qvl_agent.prompts import Prompt


class FamilyError(ValueError):
    """An unknown family, or a family asked for something it was not trained to do."""


@dataclass(frozen=True)
class Turn:
    """One earlier step of an episode, as a family's history format needs it."""

    action: Action
    # The model's own answer that step (None for a ground-truth step of an eval episode).
    response: str | None = None
    # The family's own one-line account of the step (GUI-Owl's <conclusion>).
    summary: str | None = None
    # The screenshot the model saw that step, resized (kept only for families whose
    # history holds screenshots).
    image: Any = None


@dataclass(frozen=True)
class Located:
    """A grounding answer, in the frame's model coordinates."""

    point: tuple[float, float] | None
    box: tuple[float, float, float, float] | None = None
    # The action the answer was, for families that ground through their agent prompt.
    action: Action | None = None
    notes: list[str] = field(default_factory=list)
    thought: str | None = None


# (goal, space, frame, earlier turns oldest first, screenshots allowed in the prompt) -> Prompt
PromptBuilder = Callable[[str, Space, Frame, Sequence[Turn], int], Prompt]
# (answer, frame, space) -> Parsed; raises parsing.ActionParseError with a message for the model
Parser = Callable[[str, Frame, Space], Parsed]
# (error, space) -> the user turn that asks for a usable answer
Feedback = Callable[[str, Space], str]


@dataclass(frozen=True)
class Grounding:
    """How a family answers "where is <description>?" (``ground``, grounding evals)."""

    prompt: Callable[[str, Frame], Prompt]
    # (answer, frame) -> Located; raises parsing.ActionParseError when no point can be read
    parse: Callable[[str, Frame], Located]
    source: str


@dataclass(frozen=True)
class Family:
    name: str
    title: str  # the checkpoints it covers, e.g. "UI-TARS-1.5-7B"
    source: str  # where its prompt, grammar and frame were taken from
    coordinates: Coordinates
    factor: int
    min_pixels: int
    max_pixels: int
    history: str  # its history format, in words
    # Screenshots one prompt holds, the current one included (1: only the current one).
    history_images: int = 1
    prompt: PromptBuilder | None = None  # None: a grounding-only family
    parse: Parser | None = None
    feedback: Feedback | None = None
    ground: Grounding | None = None
    spaces: tuple[Space, ...] = ("computer", "mobile")
    # How automatic detection recognises it: regexes on the checkpoint's name (hub id,
    # directory, served model name), and the config.json architectures it is the default for.
    names: tuple[str, ...] = ()
    architectures: tuple[str, ...] = ()
    # The config.json model_type its checkpoints have: a name match on a checkpoint of
    # another type (GUI-Owl-1.5 is a Qwen3-VL) is not this family.
    model_types: tuple[str, ...] = ("qwen2_5_vl",)

    def frame(self, monitor: Monitor, min_pixels: int | None = None,
              max_pixels: int | None = None) -> Frame:
        """The frame of a screenshot of ``monitor`` as this family sees it; ``None`` bounds
        are the family's own."""
        return Frame.fit(monitor, min_pixels or self.min_pixels, max_pixels or self.max_pixels,
                         self.factor, self.coordinates)

    def grounding(self) -> Grounding:
        """How to ask this family where something is: its own grounding prompt, or else its
        agent prompt with the description as the goal and its answer's first point."""
        if self.ground is not None:
            return self.ground
        if self.prompt is None or self.parse is None:
            raise FamilyError(f"{self.name} has neither a grounding nor an agent prompt")
        space, build, read = self.spaces[0], self.prompt, self.parse

        def prompt(description: str, frame: Frame) -> Prompt:
            return build(description, space, frame, [], 1)

        def parse(text: str, frame: Frame) -> Located:
            parsed = read(text, frame, space)
            points = parsed.action.points()
            return Located(point=points[0].model if points else None, box=parsed.box,
                           action=parsed.action, notes=parsed.notes, thought=parsed.thought)

        return Grounding(prompt=prompt, parse=parse,
                         source=f"its {space} agent prompt (no published grounding prompt)")

    def check_space(self, space: Space) -> None:
        """Raise unless this family has a trained agent prompt for ``space``."""
        if self.prompt is None or self.parse is None:
            raise FamilyError(f"{self.name} is a grounding model: use it with `qvl-agent ground` "
                              "or a grounding eval (screenspot, screenspot-pro), not to act")
        if space not in self.spaces:
            trained = " and ".join(self.spaces)
            raise FamilyError(f"{self.name} has no trained prompt for the {space} action space "
                              f"(it was trained for {trained})")
