"""The OpenAI chat-completions wire format, as our client writes it and our server reads it.

A screenshot travels as a lossless PNG data URL, so the server gets exactly the pixels (and
the size) the agent chose. A prompt message with ``image=True`` becomes a text part followed
by an image part (the other way round with ``image_first``), which the Qwen chat templates
render in that order: the same chat text as :meth:`~qvl_agent.prompts.Prompt.chat_text`.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from typing import TYPE_CHECKING, Any

from PIL import Image

from qvl_agent.imaging import MAX_DECODED_PIXELS, ImageReadError, open_image

if TYPE_CHECKING:
    from qvl_agent.prompts import Prompt

# Fast and still lossless: level 1 costs a third less time than Pillow's default level 6
# on a screenshot, for PNGs about a quarter larger.
PNG_COMPRESS_LEVEL = 1
_DATA_URL = re.compile(r"^data:(image/[\w.+-]+)?(;[\w=.-]+)*;base64,", re.IGNORECASE)


class WireError(ValueError):
    """A request or response that does not follow the format; the message says what is off."""


def png_data_url(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def image_from_data_url(url: str, max_pixels: int = MAX_DECODED_PIXELS) -> Image.Image:
    """The image a ``data:image/...;base64,`` URL holds (decoded, RGB); one whose header
    declares more than ``max_pixels`` is refused before any pixel is decoded."""
    match = _DATA_URL.match(url)
    if match is None:
        shown = url[:40] + ("..." if len(url) > 40 else "")
        raise WireError(
            f"image_url must be a data URL (data:image/png;base64,...), got {shown!r}; "
            "this server does not fetch images from the network"
        )
    try:
        data = base64.b64decode(url[match.end() :], validate=True)
    except (binascii.Error, ValueError) as error:
        raise WireError(f"the image data URL is not valid base64: {error}") from None
    try:
        return open_image(data, max_pixels=max_pixels, what="the image in the data URL")
    except ImageReadError as error:
        raise WireError(str(error)) from None


def chat_messages(prompt: Prompt, image_url: str | list[str]) -> list[dict[str, Any]]:
    """``prompt`` as chat-completions messages, the screenshot where the prompt puts it
    (``image_url`` a list: one URL per image message, in order, as for a screenshot history)."""
    urls = iter([image_url] if isinstance(image_url, str) else image_url)
    messages: list[dict[str, Any]] = []
    for message in prompt.messages:
        if not message.image:
            messages.append({"role": message.role, "content": message.text})
            continue
        parts: list[dict[str, Any]] = (
            [{"type": "text", "text": message.text}] if message.text else []
        )
        image = {"type": "image_url", "image_url": {"url": next(urls)}}
        parts.insert(0 if message.image_first else len(parts), image)
        messages.append({"role": message.role, "content": parts})
    return messages


def error_body(
    message: str, kind: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """OpenAI's error object: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_message(body: Any) -> str | None:
    """The message of an error body: OpenAI's ``{"error": {...}}``, or the flat
    ``{"object": "error", "message": ...}`` older vLLM releases send."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    if isinstance(error, str):
        return error
    if isinstance(body.get("message"), str):
        return body["message"]
    if isinstance(body.get("detail"), str):  # FastAPI's default error shape
        return body["detail"]
    return None
