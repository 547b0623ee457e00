"""The endpoint backend: any OpenAI-compatible chat-completions server (vLLM, SGLang,
``qvl-agent serve``, a hosted API) answers the same prompt the local backend would.

The screenshot arrives here already resized by the agent to its Frame's ``smart_resize``
size and is sent as exactly that PNG, with ``mm_processor_kwargs`` pinning the server's
pixel bounds to that area, so the server cannot rescale it behind our back: the model's
coordinates then refer to the image the agent's Frame describes. The bounds go in both
spellings the Qwen image processor reads: ``min_pixels``/``max_pixels`` (Qwen2.5-VL's, which
vLLM's Qwen2.5-VL processor maps itself) and ``size`` = {shortest_edge, longest_edge}
(what Qwen3-VL's processor honours: vLLM hands the kwargs to it unchanged, and
transformers 5 deprecates the old names). Equal bounds only pin the size when both sides
are multiples of the model's resize factor (28 for Qwen2.5-VL, 32 for Qwen3-VL: ``factor``),
so any other image is refused here instead of being rescaled by the server.

One instance is shared by every thread of a batch run or an eval (httpx's client is
thread-safe and pools connections). The API key goes into the Authorization header and
nowhere else: not into ``name``, not into errors, not into logs; a user and password in
the URL likewise go only into the request (basic auth), and every message shows the URL
masked (:mod:`qvl_agent.redaction`).
"""

from __future__ import annotations

import json
import logging
import random
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from qvl_agent.geometry import FACTOR
from qvl_agent.models.base import ModelError, Response, check_resized
from qvl_agent.openai_wire import chat_messages, error_message, png_data_url
from qvl_agent.redaction import MASK, mask_url_credentials, url_secrets, without_url_credentials

if TYPE_CHECKING:
    from PIL import Image

    from qvl_agent.prompts import Prompt

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
# A server asking for a longer pause than this gets this; the attempts are bounded anyway.
MAX_WAIT_SECONDS = 60.0
_SNIPPET = 300
# What servers say when the image makes the prompt too long (vLLM, SGLang, OpenAI) ...
_TOO_LARGE = (
    "too large",
    "too long",
    "maximum context length",
    "max_model_len",
    "longer than the maximum",
    "exceeds the maximum",
    "context length",
)
# ... and when the model takes no images at all.
_NO_IMAGES = (
    "multimodal",
    "multi-modal",
    "image input",
    "not support image",
    "does not support images",
    "only supported by certain models",
)


class EndpointModel:
    """``EndpointModel("http://gpu-box:8000/v1", "Qwen/Qwen2.5-VL-3B-Instruct")``.

    Retries 408/409/429/5xx answers, connection errors and timeouts with exponential
    backoff and jitter (honouring Retry-After), ``max_retries`` times; other 4xx answers
    are a ModelError that says what to change.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        max_new_tokens: int = 256,
        timeout: float = 120.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        pixel_bounds: bool = True,
        max_connections: int = 64,
        factor: int = FACTOR,
    ) -> None:
        import httpx

        if not isinstance(factor, int) or isinstance(factor, bool) or not 1 <= factor <= 1024:
            raise ModelError(
                f"factor must be a whole number of pixels from 1 to 1024, got {factor!r}"
            )

        self._httpx = httpx
        self.base_url = normalise_base_url(base_url)
        self.shown_url = mask_url_credentials(self.base_url)  # for messages and logs
        self.model = model
        self.name = f"endpoint:{model}@{without_url_credentials(self.base_url)}"
        self.max_new_tokens = max_new_tokens
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        # False once the server has said it does not take mm_processor_kwargs.
        self.pixel_bounds = pixel_bounds
        # The model's resize factor (patch size x merge size): both sides of every image sent
        # must be multiples of it, or the server's processor would resize it again.
        self.factor = factor
        self._key = api_key or None
        self._secrets = [secret for secret in (api_key, *url_secrets(self.base_url)) if secret]
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )

    def __repr__(self) -> str:
        return f"EndpointModel({self.shown_url!r}, {self.model!r})"

    def close(self) -> None:
        self._client.close()

    # -- answering -------------------------------------------------------------------

    def respond(self, prompt: Prompt, image: Image.Image) -> Response:
        check_resized(image, self.factor)
        started = time.perf_counter()
        width, height = image.size
        messages = chat_messages(prompt, [png_data_url(each) for each in prompt.images(image)])
        content = self._body(messages, pixels=width * height)
        encoded_at = time.perf_counter()
        response, waited = self._send(messages, width * height, content)
        answered_at = time.perf_counter()
        result = self._read_completion(response)
        result.timings = {
            "encode": (encoded_at - started) * 1000,
            # The last attempt's round trip; earlier failed attempts and pauses are in "retry".
            "request": response.elapsed.total_seconds() * 1000,
            "parse": (time.perf_counter() - answered_at) * 1000,
        }
        if waited:
            result.timings["retry"] = waited * 1000
        server_ms = _float(response.headers.get("openai-processing-ms"))
        if server_ms is not None:
            result.timings["server"] = server_ms
        return result

    def _body(self, messages: list[dict[str, Any]], pixels: int) -> bytes:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": self.max_new_tokens,
            "temperature": 0.0,
        }
        if self.pixel_bounds:
            # Equal bounds: the only size the server may choose is the one we sent.
            body["mm_processor_kwargs"] = pinned_pixel_bounds(pixels)
        return json.dumps(body).encode("utf-8")

    def _send(
        self, messages: list[dict[str, Any]], pixels: int, content: bytes
    ) -> tuple[Any, float]:
        """POST the completion; returns the response and the seconds lost to retries."""
        response, waited = self._request("POST", "/chat/completions", content)
        if (
            response.status_code == 400
            and self.pixel_bounds
            and "mm_processor_kwargs" in self._message(response)
        ):
            log.warning(
                "%s does not accept mm_processor_kwargs; sending the image without pixel "
                "bounds (it is already at the size the model should see)",
                self.shown_url,
            )
            self.pixel_bounds = False
            return self._send(messages, pixels, self._body(messages, pixels))
        if response.status_code != 200:
            raise self._client_error(response, pixels)
        return response, waited

    def _request(self, method: str, path: str, content: bytes | None = None) -> tuple[Any, float]:
        """One request with retries: the final response, whatever its status, and the
        seconds spent on failed attempts and pauses before it."""
        httpx = self._httpx
        url, shown = self.base_url + path, self.shown_url + path
        headers = {"Content-Type": "application/json"} if content is not None else None
        started = time.perf_counter()
        for attempt in range(self.max_retries + 1):
            attempt_started = time.perf_counter()
            retry_after = None
            try:
                response = self._client.request(method, url, content=content, headers=headers)
            except httpx.TimeoutException:
                failure = f"{shown} gave no answer within {self.timeout:g} s"
            except httpx.TransportError as error:
                failure = (
                    f"could not reach {shown}: {self._redact(str(error)) or type(error).__name__}"
                )
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response, (attempt_started - started) if attempt else 0.0
                failure = f"{shown} answered HTTP {response.status_code}: {self._message(response)}"
                retry_after = _retry_after(response.headers.get("retry-after"))
            if attempt == self.max_retries:
                raise ModelError(f"{failure} (gave up after {attempt + 1} attempts)")
            pause = self.backoff * 2**attempt * (1 + random.random() / 4)
            if retry_after is not None:
                pause = max(pause, retry_after)
            log.info("%s; retrying in %.1f s", failure, pause)
            time.sleep(min(pause, MAX_WAIT_SECONDS))
        raise AssertionError("unreachable")

    # -- reading answers ---------------------------------------------------------------

    def _read_completion(self, response: Any) -> Response:
        try:
            body = response.json()
        except ValueError:
            raise ModelError(
                f"{self.shown_url} answered HTTP 200 with something that is not JSON: "
                f"{self._snippet(response.text)!r}"
            ) from None
        try:
            message = body["choices"][0]["message"]
            text = _message_text(message)
        except (KeyError, IndexError, TypeError, ValueError):
            raise ModelError(
                f"{self.shown_url} answered with JSON that is not a chat completion "
                f"(no choices[0].message text): {self._snippet(json.dumps(body))!r}"
            ) from None
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        details = (
            usage.get("prompt_tokens_details")
            if isinstance(usage.get("prompt_tokens_details"), dict)
            else {}
        )
        return Response(
            text=text,
            prompt_tokens=_int(usage.get("prompt_tokens")),
            generated_tokens=_int(usage.get("completion_tokens")),
            cached_prompt_tokens=_int(details.get("cached_tokens")),
        )

    def _client_error(self, response: Any, pixels: int) -> ModelError:
        """A ModelError for an answer that retrying will not fix, saying what to change."""
        status, message = response.status_code, self._message(response)
        said = f"{self.shown_url} answered HTTP {status}: {message}"
        lowered = message.lower()
        if status in (401, 403):
            return ModelError(
                f"{said}. The endpoint refused the API key: set OPENAI_API_KEY, or "
                "name the variable that holds the key with --api-key-env"
            )
        if status == 404 or "does not exist" in lowered or "model not found" in lowered:
            served = self.served_models()
            if served is not None and self.model not in served:
                return ModelError(f"{said}. {self._not_served(served)}")
            if served is None and status == 404:
                return ModelError(
                    f"{said}. Is {self.shown_url} an OpenAI-compatible API? Its base "
                    "URL usually ends in /v1"
                )
        if status == 413 or any(phrase in lowered for phrase in _TOO_LARGE):
            return ModelError(
                f"{said}. The screenshot ({pixels} pixels) makes the request too "
                "large for this endpoint: lower --max-pixels (1003520 = 1280*28*28 "
                "halves a 1080p screenshot's tokens), or serve a longer context"
            )
        if any(phrase in lowered for phrase in _NO_IMAGES):
            return ModelError(
                f"{said}. The model behind this endpoint does not take images: serve "
                "a Qwen2.5-VL checkpoint (README, 'Endpoint backend')"
            )
        return ModelError(said)

    def served_models(self) -> list[str] | None:
        """The model ids ``GET /models`` lists; None when the endpoint cannot say."""
        try:
            response = self._client.get(self.base_url + "/models", timeout=min(self.timeout, 10.0))
        except self._httpx.HTTPError:
            return None
        return _model_ids(response)

    def check(self) -> None:
        """Fail now, with a clear message, if the endpoint cannot be reached, refuses the
        key, or lists its models without this one (hosted APIs may list none)."""
        response, _ = self._request("GET", "/models")
        if response.status_code in (401, 403):
            raise self._client_error(response, 0)
        served = _model_ids(response)
        if served is not None and self.model not in served:
            raise ModelError(f"{self.shown_url}: {self._not_served(served)}")

    def _not_served(self, served: list[str]) -> str:
        return (
            f"The endpoint has no model {self.model!r}; it serves: "
            f"{', '.join(served) or 'nothing'}. Pass one of them with --model"
        )

    def _message(self, response: Any) -> str:
        try:
            found = error_message(response.json())
        except ValueError:
            found = None
        return self._redact(
            found if found is not None else self._snippet(response.text) or response.reason_phrase
        )

    def _snippet(self, text: str) -> str:
        text = self._redact(text.strip())
        return text if len(text) <= _SNIPPET else text[:_SNIPPET] + "..."

    def _redact(self, text: str) -> str:
        """Servers sometimes quote the key they refused, or a URL with a password; neither
        reaches our messages."""
        text = mask_url_credentials(text)
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text


def pinned_pixel_bounds(pixels: int) -> dict[str, Any]:
    """``mm_processor_kwargs`` that allow an image of exactly ``pixels`` pixels and no other
    area, in both spellings Qwen image processors read (see the module docstring)."""
    return {
        "min_pixels": pixels,
        "max_pixels": pixels,
        "size": {"shortest_edge": pixels, "longest_edge": pixels},
    }


def normalise_base_url(url: str) -> str:
    """``http://host:8000`` -> ``http://host:8000/v1``; a URL with a path is kept as given
    (hosted APIs put theirs elsewhere, e.g. DashScope's ``.../compatible-mode/v1``)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        shown = mask_url_credentials(url)
        if "@" in shown and "://" not in shown:  # user:pass@host without a scheme
            shown = f"{MASK}@{shown.rpartition('@')[2]}"
        raise ModelError(
            f"--endpoint must be an http(s) URL such as http://127.0.0.1:8000/v1, got {shown!r}"
        )
    path = parts.path.rstrip("/")
    for suffix in ("/chat/completions", "/completions"):
        path = path.removesuffix(suffix)
    return urlunsplit((parts.scheme, parts.netloc, path or "/v1", "", ""))


def _model_ids(response: Any) -> list[str] | None:
    try:
        data = response.json()["data"] if response.status_code == 200 else None
        return [str(entry["id"]) for entry in data] if isinstance(data, list) else None
    except (ValueError, KeyError, TypeError):
        return None


def _message_text(message: dict[str, Any]) -> str:
    """The answer's text. A server that parses tool calls itself (vLLM with a tool parser)
    returns them as ``tool_calls`` instead: they are put back into the trained format."""
    content = message.get("content")
    if isinstance(content, list):  # some servers return parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    calls = message.get("tool_calls") or []
    if not content and calls:
        rendered = []
        for call in calls:
            function = call["function"]
            arguments = function.get("arguments")
            arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
            call_json = json.dumps(
                {"name": function["name"], "arguments": arguments}, ensure_ascii=False
            )
            rendered.append(f"<tool_call>\n{call_json}\n</tool_call>")
        return "\n".join(rendered)
    if not isinstance(content, str):
        raise ValueError("no text")
    return content


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is rare from APIs and is ignored)."""
    seconds = _float(value)
    return max(0.0, seconds) if seconds is not None else None


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
