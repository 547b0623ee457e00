"""The HTTP side of ``qvl-agent serve``: stdlib ThreadingHTTPServer, OpenAI-style routes,
errors and auth.

Routes: ``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /health``. Every failure
is an OpenAI error object with a fitting status; nothing a client sends can stop the
server. Binding beyond loopback takes an explicit ``allow_remote`` and an API key, which
clients send as ``Authorization: Bearer KEY``.

Limits, so that no client holds what others need: at most ``max_connections`` connections
(one thread each) at once, the rest answered 503 at once; a connection that sends nothing
for ``read_timeout`` seconds (idle keep-alive, half-open, a request without its blank line,
a body that stops coming) is closed and frees its thread; a body over ``max_body_bytes`` is
refused from its Content-Length before it is read, and so is any body while the model's
queue is full.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from qvl_agent.openai_wire import error_body
from qvl_agent.server.completions import CompletionService, RequestError
from qvl_agent.server.limits import MAX_BODY_BYTES, MAX_CONNECTIONS, READ_TIMEOUT

log = logging.getLogger(__name__)

_CONTENT_LENGTH = re.compile(r"[0-9]+")  # ASCII digits only: int() also takes "²", "+1", "1_0"


class BindRefused(ValueError):
    """A bind that would expose the model without the safeguards it needs."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, allow_remote: bool, api_key: str | None) -> None:
    if is_loopback(host):
        return
    if not allow_remote:
        raise BindRefused(
            f"--host {host} would let other machines use the model; pass --allow-remote "
            "to mean it (and give an API key with --api-key-env VAR)"
        )
    if not api_key:
        raise BindRefused(
            f"--host {host} with --allow-remote needs an API key: put one in an environment "
            "variable and pass --api-key-env VAR; clients send it as a Bearer token"
        )


class ChatServer(ThreadingHTTPServer):
    daemon_threads = True
    # The listen backlog (socketserver's default is 5): a burst of agents connecting at once
    # waits in the kernel's queue instead of having its handshakes dropped and retried.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        service: CompletionService,
        api_key: str | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        read_timeout: float = READ_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.service = service
        self.api_key = api_key
        self.max_body_bytes = max_body_bytes
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """A thread for the connection while there is a slot; else a 503 at once."""
        if not self._slots.acquire(blocking=False):
            _refuse_connection(request, self.max_connections)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/v1"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse their connections
    # Each answer leaves in one write (buffered, flushed by _send), without delay: sent as
    # headers then body with Nagle's algorithm on, the body waited for the client's delayed
    # ACK of the headers, 40 ms on Linux, on every answer.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server: ChatServer

    def setup(self) -> None:
        self.timeout = self.server.read_timeout  # StreamRequestHandler sets it on the socket
        super().setup()

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's naming)
        self._handle(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._handle(self._post)

    def _get(self) -> tuple[dict[str, Any], dict[str, str]]:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/health":
            return {"status": "ok"}, {}
        self._authorize()
        if path == "/v1/models":
            return self.server.service.models(), {}
        raise RequestError(
            404,
            f"no route GET {path}; this server answers GET /v1/models and "
            "POST /v1/chat/completions",
            kind="not_found_error",
        )

    def _post(self) -> tuple[dict[str, Any], dict[str, str]]:
        path = self.path.split("?", 1)[0].rstrip("/")
        self._authorize()
        if path != "/v1/chat/completions":
            self._discard_body()
            raise RequestError(
                404,
                f"no route POST {path}; this server answers POST /v1/chat/completions",
                kind="not_found_error",
            )
        service = self.server.service
        if service.full:  # refused before its body is read, let alone decoded
            self.close_connection = True
            raise service.busy_error()
        return service.complete(self._body())

    def _authorize(self) -> None:
        key = self.server.api_key
        if key is None:
            return
        sent = self.headers.get("Authorization", "")
        scheme, _, token = sent.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), key.encode()
        ):
            self.close_connection = True  # the body, if any, is not read
            raise RequestError(
                401,
                "missing or wrong API key: send it as 'Authorization: Bearer KEY'",
                kind="authentication_error",
                code="invalid_api_key",
            )

    def _body(self) -> bytes:
        """The body, its Content-Length checked before a byte of it is read."""
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            self.close_connection = True
            raise RequestError(411, "send the body with a Content-Length header")
        if len(set(lengths)) > 1 or not _CONTENT_LENGTH.fullmatch(lengths[0].strip()):
            self.close_connection = True
            shown = ", ".join(repr(value[:20]) for value in lengths)
            raise RequestError(400, f"Content-Length must be one number of bytes, got {shown}")
        digits = lengths[0].strip().lstrip("0") or "0"
        length = int(digits) if len(digits) <= 18 else 10**18  # no int() of 4300+ digits
        if length > self.server.max_body_bytes:
            self.close_connection = True
            shown = digits if len(digits) <= 20 else f"{digits[:20]}... ({len(digits)} digits)"
            raise RequestError(
                413,
                f"image too large: the request has {shown} bytes, this server "
                f"takes at most {self.server.max_body_bytes} (--max-body-bytes)",
            )
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            self.close_connection = True
            raise RequestError(
                408, f"the body stopped coming: nothing for {self.server.read_timeout:g} s"
            ) from None
        if len(body) < length:
            self.close_connection = True
            raise RequestError(400, f"the body ended after {len(body)} of {length} bytes")
        return body

    def _discard_body(self) -> None:
        try:
            self._body()
        except RequestError:
            pass

    def _handle(self, route) -> None:
        self._started = time.perf_counter()
        try:
            body, headers = route()
            status = 200
        except RequestError as error:
            status, headers = error.status, error.headers
            body = error_body(error.message, error.kind, error.code, error.param)
        except Exception as error:  # a bug or the model failing: answer, log, keep serving
            log.exception("request failed")
            status, headers = 500, {}
            body = error_body(f"internal error: {type(error).__name__}: {error}", "server_error")
        self._send(status, body, headers)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed HTTP (caught by the stdlib before any route) gets JSON too, with a
        status line: the stdlib would answer an unreadable request line HTTP/0.9-style."""
        self.close_connection = True
        self.request_version = self.protocol_version
        headers = {}
        if code == 501:  # the stdlib's answer to a method without a do_ handler
            code, headers = 405, {"Allow": "GET, POST"}
            message = f"method {self.command[:20]!r} is not allowed; use GET or POST"
        self._send(
            code, error_body(message or explain or "bad request", "invalid_request_error"),
            headers,
        )

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:  # the client went away or stopped reading; nothing to answer
            self.close_connection = True

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        # One line per request, on stderr; never a header (the API key travels in one).
        started = getattr(self, "_started", None)
        took = f" {(time.perf_counter() - started) * 1000:.0f} ms" if started is not None else ""
        path = getattr(self, "path", "").split("?", 1)[0]
        print(
            f"{self.address_string()} {self.command or '-'} {path} {code}{took}",
            file=sys.stderr,
            flush=True,
        )


def _refuse_connection(connection: socket.socket, limit: int) -> None:
    """A 503 for a connection past the limit, written from the accepting thread: short, on
    a fresh socket (its send buffer is empty), and never waited on."""
    body = json.dumps(
        error_body(
            f"the server has {limit} connections open, its limit; retry shortly",
            "server_overloaded",
        )
    ).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
    )
    try:
        connection.setblocking(False)
        connection.send(head.encode() + body)
    except OSError:
        pass


def run(
    service: CompletionService,
    host: str,
    port: int,
    api_key: str | None = None,
    **limits: Any,
) -> None:
    """Serve until interrupted; the first line on stdout says where (``--port 0`` picks one).
    ``limits``: ChatServer's max_body_bytes, read_timeout, max_connections."""
    server = ChatServer((host, port), service, api_key, **limits)
    print(f"serving {service.served_name} at {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        service.close()
