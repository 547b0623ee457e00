"""Chat-completions requests -> LocalModel -> chat-completions responses (no HTTP here).

A request is checked, its one image decoded and, like vLLM's processor, resized only when
the request's pixel bounds (``mm_processor_kwargs``, default the checkpoint's) say so; the
messages are rendered with the checkpoint's own chat template (what vLLM does), and the
model answers on a single worker thread: requests wait their turn in arrival order, and a
full queue answers 503 with Retry-After instead of piling up.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qvl_agent.geometry import Frame, Monitor, model_view
from qvl_agent.models.base import ModelError
from qvl_agent.openai_wire import WireError, image_from_data_url

if TYPE_CHECKING:
    from PIL import Image

    from qvl_agent.models.local import LocalModel

log = logging.getLogger(__name__)


class RequestError(Exception):
    """A request the server answers with an OpenAI-style error instead of a completion."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind
        self.code, self.param, self.headers = code, param, headers or {}


# -- the request, as far as this server reads it (other fields are accepted and ignored) --


class _TextPart(BaseModel):
    type: Literal["text"]
    text: str


class _ImageURL(BaseModel):
    url: str


class _ImagePart(BaseModel):
    type: Literal["image_url"]
    image_url: _ImageURL


class _Message(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str | list[Annotated[_TextPart | _ImagePart, Field(discriminator="type")]]


class _PixelBounds(BaseModel):
    min_pixels: int | None = Field(default=None, gt=0)
    max_pixels: int | None = Field(default=None, gt=0)


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str
    messages: list[_Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stream: bool = False
    n: int = 1
    stop: str | list[str] | None = None
    mm_processor_kwargs: _PixelBounds | None = None


class CompletionService:
    """Answers chat-completions requests with one LocalModel, one request at a time."""

    def __init__(
        self,
        model: LocalModel,
        served_name: str,
        *,
        max_new_tokens: int = 256,
        max_pixels: int | None = None,
        max_queue: int = 64,
    ) -> None:
        if not getattr(model.tokenizer, "chat_template", None):
            raise ModelError(
                f"{model.name} has no chat template; serve a Qwen2.5-VL checkpoint that ships one"
            )
        self.model = model
        self.served_name = served_name
        self.max_new_tokens = max_new_tokens
        size = model.image_processor.size
        self.min_pixels = int(size["shortest_edge"])
        self.max_pixels = int(max_pixels or size["longest_edge"])
        self.max_queue = max_queue
        self.created = int(time.time())
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self._waiting = 0
        self._waiting_lock = threading.Lock()

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)

    @property
    def in_flight(self) -> int:
        """Requests being answered or waiting for the model."""
        return self._waiting

    def models(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {
                    "id": self.served_name,
                    "object": "model",
                    "created": self.created,
                    "owned_by": "qvl-agent",
                }
            ],
        }

    def complete(self, body: bytes) -> tuple[dict[str, Any], dict[str, str]]:
        """The completion for a request body, and extra response headers; RequestError otherwise."""
        request = _parse_request(body)
        if request.model != self.served_name:
            raise RequestError(
                404,
                f"The model `{request.model}` does not exist; this server serves "
                f"`{self.served_name}`",
                code="model_not_found",
                param="model",
            )
        if request.stream:
            raise RequestError(
                400, "stream is not supported by qvl-agent serve; send stream=false", param="stream"
            )
        if request.n != 1:
            raise RequestError(400, "n must be 1", param="n")
        image = self._image(request)
        chat_text = self.model.tokenizer.apply_chat_template(
            _template_messages(request.messages), tokenize=False, add_generation_prompt=True
        )
        wanted = request.max_completion_tokens or request.max_tokens or self.max_new_tokens
        limit = min(wanted, self.max_new_tokens)
        response, busy_ms = self._answer(chat_text, image, limit)
        text, finish = _apply_stop(response.text, request.stop)
        if finish is None:
            finish = "length" if (response.generated_tokens or 0) >= limit else "stop"
        usage: dict[str, Any] = {
            "prompt_tokens": response.prompt_tokens,
            "completion_tokens": response.generated_tokens,
            "total_tokens": (response.prompt_tokens or 0) + (response.generated_tokens or 0),
        }
        if response.cached_prompt_tokens is not None:
            usage["prompt_tokens_details"] = {"cached_tokens": response.cached_prompt_tokens}
        completion = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.served_name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish,
                    "logprobs": None,
                }
            ],
            "usage": usage,
        }
        return completion, {"openai-processing-ms": f"{busy_ms:.1f}"}

    def _image(self, request: ChatRequest) -> Image.Image:
        """The request's one image at the size its pixel bounds give it (unchanged when it
        is already a smart_resize size within them, as our client always sends)."""
        urls = [
            part.image_url.url
            for message in request.messages
            if not isinstance(message.content, str)
            for part in message.content
            if isinstance(part, _ImagePart)
        ]
        if len(urls) != 1:
            raise RequestError(
                400,
                f"send exactly one image (an image_url part) per request; this one has {len(urls)}",
                param="messages",
            )
        try:
            image = image_from_data_url(urls[0])
        except WireError as error:
            raise RequestError(400, str(error), param="messages") from None
        bounds = request.mm_processor_kwargs or _PixelBounds()
        low, high = bounds.min_pixels or self.min_pixels, bounds.max_pixels or self.max_pixels
        if low > high:
            raise RequestError(
                400,
                f"mm_processor_kwargs: min_pixels {low} > max_pixels {high}",
                param="mm_processor_kwargs",
            )
        if high > self.max_pixels:
            raise RequestError(
                400,
                f"image too large: {high} pixels asked for, this server takes at most "
                f"{self.max_pixels} per image",
                param="mm_processor_kwargs",
            )
        try:
            frame = Frame.fit(
                Monitor(width=image.width, height=image.height), low, high, self.model.factor
            )
        except ValueError as error:
            raise RequestError(400, f"unusable image: {error}", param="messages") from None
        return model_view(image, frame)

    def _answer(self, chat_text: str, image: Image.Image, max_new_tokens: int):
        with self._waiting_lock:
            if self._waiting >= self.max_queue:
                raise RequestError(
                    503,
                    f"the server is busy ({self._waiting} requests in flight); retry shortly",
                    kind="server_overloaded",
                    headers={"Retry-After": "1"},
                )
            self._waiting += 1
        try:
            return self._worker.submit(self._timed, chat_text, image, max_new_tokens).result()
        except ModelError as error:
            raise RequestError(400, str(error), param="messages") from None
        finally:
            with self._waiting_lock:
                self._waiting -= 1

    def _timed(self, chat_text: str, image: Image.Image, max_new_tokens: int):
        started = time.perf_counter()
        response = self.model.respond_chat(chat_text, image, max_new_tokens)
        return response, (time.perf_counter() - started) * 1000


def _parse_request(body: bytes) -> ChatRequest:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RequestError(400, f"the request body is not valid JSON: {error}") from None
    try:
        return ChatRequest.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'body'}: {problem['msg']}"
            for problem in error.errors()[:3]
        )
        raise RequestError(400, f"invalid request: {problems}") from None


def _template_messages(messages: list[_Message]) -> list[dict[str, Any]]:
    """The messages as the chat template reads them (the image reduced to its place)."""
    rendered = []
    for message in messages:
        content: Any = message.content
        if not isinstance(content, str):
            content = [
                {"type": "text", "text": part.text}
                if isinstance(part, _TextPart)
                else {"type": "image"}
                for part in content
            ]
        rendered.append({"role": message.role, "content": content})
    return rendered


def _apply_stop(text: str, stop: str | list[str] | None) -> tuple[str, str | None]:
    """``text`` cut before the first stop string, with finish reason "stop" if one was found."""
    stops = [stop] if isinstance(stop, str) else [s for s in stop or [] if s]
    cut = min((text.find(s) for s in stops if s in text), default=-1)
    return (text[:cut], "stop") if cut >= 0 else (text, None)
