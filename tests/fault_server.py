"""A loopback OpenAI-compatible endpoint whose answers a test scripts: status codes,
Retry-After, malformed bodies, hangs, or a function of the request (an oracle model)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes | dict = b""
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # never answer (until the server stops)


HANG = Reply(hang=True)


def completion(
    text: str | None,
    prompt_tokens: int = 100,
    completion_tokens: int = 10,
    cached_tokens: int | None = None,
    tool_calls: list | None = None,
) -> Reply:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if cached_tokens is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached_tokens}
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    return Reply(
        body={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": usage,
        }
    )


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply(
        status=status,
        body={"error": {"message": message, "type": "x", "param": None, "code": None}},
        headers=headers or {},
    )


class FaultServer:
    """``with FaultServer(models=["m"]) as server: server.plan = [error(429, ...), completion("ok")]``

    Chat requests take the next reply in ``plan``; once it is empty, ``respond(request)``
    answers (a fixed completion by default). ``GET /v1/models`` lists ``models``.
    """

    def __init__(
        self, models: list[str] | None = None, respond: Callable[[Request], Reply] | None = None
    ) -> None:
        self.models = models if models is not None else ["qwen-test"]
        self.respond = respond or (lambda request: completion("ok"))
        self.plan: list[Reply] = []
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def chat_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def _reply_for(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            if request.method == "GET":
                return Reply(
                    body={
                        "object": "list",
                        "data": [{"id": m, "object": "model"} for m in self.models],
                    }
                )
            if self.plan:
                return self.plan.pop(0)
        return self.respond(request)

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802
                self._answer(b"")

            def do_POST(self):  # noqa: N802
                self._answer(self.rfile.read(int(self.headers.get("Content-Length", 0))))

            def _answer(self, body: bytes) -> None:
                request = Request(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.monotonic(),
                )
                reply = server._reply_for(request)
                if reply.hang:
                    server._stopping.wait(30)
                    self.close_connection = True
                    return
                data = (
                    reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                )
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        return Handler

    def __enter__(self) -> FaultServer:
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
