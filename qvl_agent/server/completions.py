"""Chat-completions requests -> LocalModel -> chat-completions responses (no HTTP here).

A request is checked, its one image decoded and, like vLLM's processor, resized only when
the request's pixel bounds (``mm_processor_kwargs``, default the checkpoint's) say so; the
messages are rendered with the checkpoint's own chat template (what vLLM does), and the
model answers on a single worker thread: requests wait their turn in arrival order, and a
full queue answers 503 with Retry-After instead of piling up.

Nothing a request holds may cost unbounded memory or time. In order, before the model:
a place in the queue (503 when full), then the JSON, then the prompt's text tokens against
the prompt limit (the model's context, or ``max_prompt_tokens``), then the image's declared
size against ``max_image_pixels`` (from its header, before a pixel is decoded; at most
``decoders`` images decode at once), then text plus image tokens against the limit again.
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
from qvl_agent.server import limits

# Longest model name echoed back in an error.
_ECHO = 80

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
        max_prompt_tokens: int = limits.MAX_PROMPT_TOKENS,
        max_image_pixels: int = limits.MAX_IMAGE_PIXELS,
        decoders: int = limits.DECODERS,
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
        self.max_image_pixels = max_image_pixels
        # The prompt must leave room for the answer within the model's context.
        self.context = context_length(getattr(model.model, "config", None))
        self.max_prompt_tokens = max_prompt_tokens
        if self.context is not None:
            self.max_prompt_tokens = min(max_prompt_tokens, self.context - max_new_tokens)
        if self.max_prompt_tokens < 1:
            raise ModelError(
                f"{model.name} has a context of {self.context} tokens: no room for a prompt "
                f"and {max_new_tokens} new tokens; lower --max-new-tokens"
            )
        # No token covers more bytes than the vocabulary's longest one: a text of B bytes is
        # at least B / longest tokens, which refuses a huge text without tokenizing it.
        self._longest_token = max(
            (len(token.encode("utf-8")) for token in model.tokenizer.get_vocab()), default=1
        )
        self._decoding = threading.BoundedSemaphore(decoders)
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

    @property
    def full(self) -> bool:
        """True when a new request would be refused with 503 (checked before its body is read)."""
        return self._waiting >= self.max_queue

    def busy_error(self) -> RequestError:
        return RequestError(
            503,
            f"the server is busy ({self._waiting} requests in flight); retry shortly",
            kind="server_overloaded",
            headers={"Retry-After": "1"},
        )

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
        with self._waiting_lock:  # a place in the queue before anything is decoded
            if self._waiting >= self.max_queue:
                raise self.busy_error()
            self._waiting += 1
        try:
            return self._complete(body)
        finally:
            with self._waiting_lock:
                self._waiting -= 1

    def _complete(self, body: bytes) -> tuple[dict[str, Any], dict[str, str]]:
        request = _parse_request(body)
        if request.model != self.served_name:
            shown = request.model[:_ECHO] + ("..." if len(request.model) > _ECHO else "")
            raise RequestError(
                404,
                f"The model `{shown}` does not exist; this server serves `{self.served_name}`",
                code="model_not_found",
                param="model",
            )
        if request.stream:
            raise RequestError(
                400, "stream is not supported by qvl-agent serve; send stream=false", param="stream"
            )
        if request.n != 1:
            raise RequestError(400, "n must be 1", param="n")
        url = _one_image_url(request)
        chat_text, text_tokens = self._text_tokens(request)
        image = self._image(request, url)
        image_tokens = (image.width // self.model.factor) * (image.height // self.model.factor)
        self._check_prompt(text_tokens, image_tokens)
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

    def _chat_text(self, request: ChatRequest) -> str:
        try:
            return self.model.tokenizer.apply_chat_template(
                _template_messages(request.messages), tokenize=False, add_generation_prompt=True
            )
        except Exception as error:  # the template's own checks (jinja raise_exception)
            raise RequestError(
                400, f"the chat template refused the messages: {error}", param="messages"
            ) from None

    def _text_tokens(self, request: ChatRequest) -> tuple[str, int]:
        """The rendered prompt and its tokens without the image's (its placeholder counts
        one), refused past the limit; a text too long for any tokenization is refused unread."""
        texts = [
            part if isinstance(part, str) else part.text
            for message in request.messages
            for part in ([message.content] if isinstance(message.content, str) else message.content)
            if not isinstance(part, _ImagePart)
        ]
        size = sum(len(text.encode("utf-8", "surrogatepass")) for text in texts)
        # Each message renders to at least its start and end tokens.
        at_least = size // self._longest_token + 2 * len(request.messages)
        if at_least > self.max_prompt_tokens:
            raise self._too_long(f"at least {at_least}", "text")
        chat_text = self._chat_text(request)
        try:
            tokens = len(self.model.tokenizer(chat_text)["input_ids"]) - 1
        except Exception as error:  # e.g. a lone surrogate the tokenizer cannot encode
            raise RequestError(
                400, f"the messages cannot be tokenized: {error}", param="messages"
            ) from None
        if tokens > self.max_prompt_tokens:
            raise self._too_long(str(tokens), "text")
        return chat_text, tokens

    def _check_prompt(self, text_tokens: int, image_tokens: int) -> None:
        total = text_tokens + image_tokens
        if total > self.max_prompt_tokens:
            raise self._too_long(f"{total} ({text_tokens} text + {image_tokens} image)", "")

    def _too_long(self, count: str, what: str) -> RequestError:
        room = self.context - self.max_new_tokens if self.context is not None else None
        if self.max_prompt_tokens == room:
            why = (
                f"the model's context of {self.context} tokens less {self.max_new_tokens} "
                "for the answer"
            )
        else:
            why = "this server's --max-prompt-tokens"
        return RequestError(
            400,
            f"the prompt is too long: {count} {what + ' ' if what else ''}tokens, more than "
            f"the {self.max_prompt_tokens} allowed by {why}; shorten the messages or send a "
            "smaller image",
            code="context_length_exceeded",
            param="messages",
        )

    def _image(self, request: ChatRequest, url: str) -> Image.Image:
        """The request's one image at the size its pixel bounds give it (unchanged when it
        is already a smart_resize size within them, as our client always sends)."""
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
        with self._decoding:  # the decoded image and its resizing are the big allocations
            try:
                image = image_from_data_url(url, max_pixels=self.max_image_pixels)
            except WireError as error:
                raise RequestError(400, str(error), param="messages") from None
            try:
                frame = Frame.fit(
                    Monitor(width=image.width, height=image.height), low, high, self.model.factor
                )
            except ValueError as error:
                raise RequestError(400, f"unusable image: {error}", param="messages") from None
            return model_view(image, frame)

    def _answer(self, chat_text: str, image: Image.Image, max_new_tokens: int):
        try:
            return self._worker.submit(self._timed, chat_text, image, max_new_tokens).result()
        except ModelError as error:
            raise RequestError(400, str(error), param="messages") from None

    def _timed(self, chat_text: str, image: Image.Image, max_new_tokens: int):
        started = time.perf_counter()
        response = self.model.respond_chat(chat_text, image, max_new_tokens)
        return response, (time.perf_counter() - started) * 1000


def context_length(config: Any) -> int | None:
    """The model's context in tokens: ``max_position_embeddings`` of its text config (or of
    the config itself, for flat ones); None when the config does not say."""
    for source in (getattr(config, "text_config", None), config):
        value = getattr(source, "max_position_embeddings", None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _one_image_url(request: ChatRequest) -> str:
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
    return urls[0]


def _parse_request(body: bytes) -> ChatRequest:
    try:
        data = json.loads(body)
    except RecursionError:
        raise RequestError(400, "the request body is not valid JSON: nested too deeply") from None
    except ValueError as error:  # JSONDecodeError, bad UTF-8, an integer of 4300+ digits
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
