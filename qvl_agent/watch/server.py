"""The watch page's HTTP server: the stdlib's threading server, server-sent events.

Routes (every one but the static files needs the run's token):

    GET  /?token=T              the page (the URL printed on the terminal)
    GET  /static/NAME           the page's script and style, shipped inside the package
    GET  /events?token=T        server-sent events: the runs as they change
    GET  /shot/RUN/N.jpg?token=T   a step's screenshot (N = step number or "final")
    POST /api/COMMAND           pause, resume, takeover, giveback, stop, answer; the token
                                in the X-Watch-Token header, a small JSON body

Any web page the browser has open may send requests to a loopback port, so a command is only
obeyed with the token (which a page from elsewhere cannot read), from no Origin or our own,
with a Host that names this server when it is bound to loopback (against DNS rebinding).
Connections, event streams and bodies are limited; every socket has a timeout.
"""

from __future__ import annotations

import hmac
import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from qvl_agent.server.httpd import is_loopback
from qvl_agent.watch.control import WatchControl

MAX_BODY_BYTES = 1024
MAX_CONNECTIONS = 32
MAX_STREAMS = 8
SOCKET_TIMEOUT = 10.0  # seconds a client may take to send a request or to take our bytes
KEEPALIVE_SECONDS = 10.0  # a comment line on an idle event stream (finds dead clients)
STATIC = {"watch.js": "text/javascript; charset=utf-8", "watch.css": "text/css; charset=utf-8"}
COMMANDS = ("pause", "resume", "takeover", "giveback", "stop", "answer")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class WatchServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 16

    def __init__(self, host: str, port: int, control: WatchControl, token: str) -> None:
        self.control = control
        self.token = token
        self.closing = threading.Event()
        self._connections = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._streams = threading.BoundedSemaphore(MAX_STREAMS)
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)
        self.loopback = is_loopback(host)
        bound = self.server_address[1]
        self.allowed_hosts = {f"{name}:{bound}" for name in ("127.0.0.1", "localhost", "[::1]")}

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        if host in ("0.0.0.0", "::"):
            host = socket.gethostname()
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/?token={self.token}"

    # Too many connections at once: close the newest at once instead of queueing threads.
    def process_request(self, request, client_address) -> None:
        if not self._connections.acquire(blocking=False):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connections.release()


class _Handler(BaseHTTPRequestHandler):
    server: WatchServer
    timeout = SOCKET_TIMEOUT
    server_version = "qvl-agent-watch"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's naming)
        url = urlsplit(self.path)
        if not self._host_ok():
            return
        if url.path.startswith("/static/"):
            name = url.path.removeprefix("/static/")
            if name not in STATIC:
                return self._plain(404, "no such file")
            data = resources.files("qvl_agent.watch").joinpath("static", name).read_bytes()
            return self._send(200, data, STATIC[name])
        if url.path == "/favicon.ico":
            return self._plain(404, "no icon")
        if not self._token_ok(parse_qs(url.query).get("token", [""])[0]):
            return self._plain(403, "open the watch URL printed on the terminal: it carries "
                               "the run's token")
        if url.path == "/":
            return self._send(200, _page(self.server.token), "text/html; charset=utf-8")
        if url.path == "/events":
            return self._stream()
        shot = re.fullmatch(r"/shot/(\d{1,6})/(\d{1,6}|final)\.jpg", url.path)
        if shot:
            data = self.server.control.feed.jpeg(int(shot.group(1)), shot.group(2))
            if data is None:
                return self._plain(404, "no such screenshot")
            return self._send(200, data, "image/jpeg")
        return self._plain(404, "no such page")

    def do_POST(self) -> None:  # noqa: N802
        self.close_connection = True
        if not self._host_ok():
            return
        origin = self.headers.get("Origin")
        if origin is not None and origin != self._own_origin():
            return self._plain(403, f"commands are taken from this server's own page, not from "
                               f"{origin}")
        if not self._token_ok(self.headers.get("X-Watch-Token", "")):
            return self._plain(403, "missing or wrong X-Watch-Token")
        command = urlsplit(self.path).path.removeprefix("/api/")
        if command not in COMMANDS:
            return self._plain(404, f"no command {command!r}; commands: {', '.join(COMMANDS)}")
        body = self._json_body()
        if body is None:
            return
        control = self.server.control
        if command == "answer":
            question, approve = body.get("question"), body.get("approve")
            if not isinstance(question, int) or not isinstance(approve, bool):
                return self._plain(400, 'answer takes {"question": ID, "approve": true|false}')
            if not control.answer(question, approve):
                return self._plain(409, "that question is no longer open")
        else:
            {"pause": control.pause, "resume": control.resume, "takeover": control.take_over,
             "giveback": control.give_back, "stop": control.stop}[command]()
        return self._send(200, b'{"ok": true}', "application/json")

    # -- checks ------------------------------------------------------------------------------

    def _host_ok(self) -> bool:
        if not self.server.loopback:
            return True  # reached over the network: the token is what protects it
        if self.headers.get("Host", "") in self.server.allowed_hosts:
            return True
        self._plain(403, "this watch page answers only to the address it printed")
        return False

    def _own_origin(self) -> str:
        return f"http://{self.headers.get('Host', '')}"

    def _token_ok(self, token: str) -> bool:
        return hmac.compare_digest(token.encode(), self.server.token.encode())

    def _json_body(self) -> dict[str, Any] | None:
        length = self.headers.get("Content-Length", "0")
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            self._plain(413, f"a command's body is at most {MAX_BODY_BYTES} bytes")
            return None
        raw = self.rfile.read(int(length)) if int(length) else b"{}"
        try:
            body = json.loads(raw or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            self._plain(400, "the body must be a JSON object")
            return None
        return body

    # -- answers -------------------------------------------------------------------------------

    def _stream(self) -> None:
        server = self.server
        if not server._streams.acquire(blocking=False):
            return self._plain(503, "too many pages are watching this run")
        feed = server.control.feed
        stream = feed.open_stream()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            for name, value in SECURITY_HEADERS.items():
                self.send_header(name, value)
            self.end_headers()
            seen = 0
            while not server.closing.is_set():
                version, message = feed.changes(seen, KEEPALIVE_SECONDS)
                if message is None:
                    self.wfile.write(b": idle\n\n")
                else:
                    data = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
                    self.wfile.write(f"id: {version}\ndata: {data}\n\n".encode("utf-8"))
                self.wfile.flush()
                if message is not None:
                    seen = version
                    feed.delivered(stream, version)
                    if message["closed"]:
                        break
        except (OSError, ValueError):  # the page went away (or timed out taking our bytes)
            pass
        finally:
            feed.close_stream(stream)
            server._streams.release()
            self.close_connection = True

    def _plain(self, status: int, text: str) -> None:
        self._send(status, (text + "\n").encode("utf-8"), "text/plain; charset=utf-8")

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in SECURITY_HEADERS.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the terminal belongs to the run's progress lines (and the URL holds the token)


def _page(token: str) -> bytes:
    template = resources.files("qvl_agent.watch").joinpath("static", "watch.html").read_text(
        encoding="utf-8")
    return template.replace("{{TOKEN}}", token).encode("utf-8")
