"""The Model protocol: a chat prompt and one screenshot in, response text out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from PIL import Image

    from qvl_agent.prompts import Prompt


class ModelError(RuntimeError):
    """The model could not be loaded or could not answer; the message says what to do."""


def check_resized(image: Image.Image, factor: int) -> None:
    """Both sides of ``image`` multiples of the model's resize ``factor``: the image is the
    screenshot resized to its Frame, or the model (or a server's processor) would resize it
    again and the answer's coordinates would not fit the screen."""
    width, height = image.size
    if width % factor or height % factor:
        raise ModelError(
            f"the screenshot is {width}x{height}, but both sides must be multiples of {factor} "
            "(this model's resize factor), or it would be resized again and the answer's "
            f"coordinates would not fit the screen: resize it to its Frame's size first "
            f"(Frame.fit(..., factor={factor}), geometry.smart_resize)"
        )


class Response(BaseModel):
    """What a model said, with its cost."""

    text: str
    prompt_tokens: int | None = None
    generated_tokens: int | None = None
    # Prompt tokens whose keys/values came from a cache instead of being computed again.
    cached_prompt_tokens: int | None = None
    # Answer tokens taken from a verified draft of the tool call's fixed parts (forcing).
    forced_tokens: int | None = None
    # Milliseconds per stage, e.g. {"preprocess": 21.0, "generate": 830.5}.
    timings: dict[str, float] = Field(default_factory=dict)


@runtime_checkable
class Model(Protocol):
    name: str

    def respond(self, prompt: Prompt, image: Image.Image) -> Response:
        """Answer ``prompt``; ``image`` is the screenshot already resized to the model's size."""
        ...
