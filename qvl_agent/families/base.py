"""What a model family is: the data it was trained on, plus one parser.

A :class:`Family` holds a checkpoint family's trained prompt (a builder over the templates in
``prompts/``), where the screenshot goes, its pixel bounds and resize factor, its coordinate
frame, its history format, and the parser from its output grammar to our typed actions. The
agent loop, ``eval`` and ``ground`` ask the family for a prompt and a parser; none of them
branches on which family it is, and :mod:`qvl_agent.geometry` converts every coordinate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qvl_agent.actions import Action, Space, tool_call_json
from qvl_agent.geometry import Coordinates, Frame, Monitor
from qvl_agent.parsing import Parsed
from qvl_agent.prompts import Prompt, step_list


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
    # The action space whose agent prompt asks (its frame is that space's); None: a
    # grounding prompt of its own, in the family's own frame.
    space: Space | None = None


@dataclass(frozen=True)
class Family:
    name: str
    title: str  # the checkpoints it covers, e.g. "UI-TARS-1.5-7B"
    source: str  # where its prompt, grammar and frame were taken from
    coordinates: Coordinates  # its frame (that of every space not in space_coordinates)
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
    # Spaces whose tool states another frame (Qwen3-VL's mobile_use: a 999x999 screen).
    space_coordinates: Mapping[str, Coordinates] = field(default_factory=dict)

    @property
    def acts(self) -> bool:
        """Whether it has an agent prompt (a grounding-only family has none)."""
        return self.prompt is not None and self.parse is not None

    def frame(self, monitor: Monitor, min_pixels: int | None = None,
              max_pixels: int | None = None, space: Space | None = None) -> Frame:
        """The frame of a screenshot of ``monitor`` as this family sees it when it acts in
        ``space`` (None: its own frame, as for grounding); ``None`` bounds are the family's."""
        coordinates = self.space_coordinates.get(space, self.coordinates) if space else \
            self.coordinates
        return Frame.fit(monitor, min_pixels or self.min_pixels, max_pixels or self.max_pixels,
                         self.factor, coordinates)

    def grounding(self) -> Grounding:
        """How to ask this family where something is: its own grounding prompt, or else its
        agent prompt with the description as the goal and its answer's first point."""
        if self.ground is not None:
            return self.ground
        if self.prompt is None or self.parse is None:
            raise FamilyError(f"{self.name} has neither a grounding nor an agent prompt")
        space = self.spaces[0]
        return agent_grounding(self.prompt, self.parse, space,
                               f"its {space} agent prompt (no published grounding prompt)")

    def check_space(self, space: Space) -> None:
        """Raise unless this family has a trained agent prompt for ``space``."""
        self.check_acts()
        if space not in self.spaces:
            trained = " and ".join(self.spaces)
            raise FamilyError(f"{self.name} has no trained prompt for the {space} action space "
                              f"(it was trained for {trained})")

    def check_acts(self) -> None:
        """Raise for a grounding-only family, naming the families that can act."""
        if self.acts:
            return
        from qvl_agent.families import FAMILIES  # the registry imports this module

        acting = ", ".join(name for name, family in FAMILIES.items() if family.acts)
        raise FamilyError(f"{self.name} is a grounding model: use it with `qvl-agent ground` or "
                          f"a grounding eval (screenspot, screenspot-pro); families that can act: "
                          f"{acting}")


def located_action(parsed: Parsed) -> Located:
    """An agent answer as a grounding answer: its action's first point (a box answered for
    it is kept); an action without a point is no point, scored as a miss."""
    points = parsed.action.points()
    return Located(point=points[0].model if points else None, box=parsed.box,
                   action=parsed.action, notes=parsed.notes, thought=parsed.thought)


def agent_grounding(build: PromptBuilder, read: Parser, space: Space, source: str) -> Grounding:
    """A grounding question asked through an agent prompt of ``space``: the description as
    the goal, no history, one screenshot."""

    def prompt(description: str, frame: Frame) -> Prompt:
        return build(description, space, frame, [], 1)

    def parse(text: str, frame: Frame) -> Located:
        return located_action(read(text, frame, space))

    return Grounding(prompt=prompt, parse=parse, source=source, space=space)


def summary_steps(turns: Sequence[Turn], space: Space) -> str:
    """Earlier steps as ``Step 1: ...; Step 2: ...; `` from the model's own account of each
    (GUI-Owl's <conclusion>, Qwen3-VL's "Action:" line), newlines and double quotes removed
    as the cookbooks do; a step without one (a ground-truth step of an eval, an answer that
    left it out) is its tool call."""
    return step_list([turn.summary.replace("\n", "").replace('"', "") if turn.summary
                      else tool_call_json(turn.action, space) for turn in turns])
