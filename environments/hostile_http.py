"""Hostile HTTP for `qvl-agent serve`: raw requests a test or a probe sends over a socket.

``hostile_requests()`` is the table of malformed, oversized and nonsensical requests every
one of which the server must answer with the given 4xx status, and go on answering.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import struct
import zlib


def chat(model: str, image_url: str, text: str = "What is on the screen?", **extra) -> dict:
    """A chat-completions request with one text part and one image."""
    return {
        "model": model,
        "max_tokens": 4,
        **extra,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": text},
                    {"type": "image_url", "image_url": {"url": image_url}},
                ],
            },
        ],
    }


def zero_png(width: int, height: int, *, complete: bool = True) -> bytes:
    """A grayscale PNG of zeros, compressed row by row (13000x13000 is ~170 KB, never held
    decoded here); ``complete=False`` stops after the header, which declares the size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    if not complete:
        return b"\x89PNG\r\n\x1a\n" + header
    packer, row = zlib.compressobj(9), bytes(width + 1)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def post(body: bytes, *headers: str, length: str | None = None) -> bytes:
    """A raw POST to the completions route; ``length`` replaces the Content-Length value
    ("" leaves the header out)."""
    length = str(len(body)) if length is None else length
    lines = ["POST /v1/chat/completions HTTP/1.1", "Host: x", *headers]
    if length != "":
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


def exchange(
    address: tuple[str, int], data: bytes, *, half_close: bool = False, timeout: float = 10
) -> tuple[int | None, bytes]:
    """Send raw bytes on a new connection; the answer's status and body (None, b"": the
    server closed without answering)."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        answer = http.client.HTTPResponse(sock)
        try:
            answer.begin()
        except (http.client.RemoteDisconnected, ConnectionResetError):
            return None, b""
        return answer.status, answer.read()


def hostile_requests(
    model: str, good_image_url: str, max_body: int
) -> list[tuple[str, bytes, int]]:
    """(what, raw request, the status it must get). ``max_body`` is the server's
    --max-body-bytes; "half-closed" in ``what`` means: shut the sending side after it."""
    good = chat(model, good_image_url)

    def body(**change) -> bytes:
        return json.dumps({**good, **change}).encode()

    def with_image(png: bytes) -> bytes:
        return json.dumps(chat(model, data_url(png))).encode()

    good_json = body()
    good_part = json.dumps({"type": "image_url", "image_url": {"url": good_image_url}})
    bad_part = json.dumps({"type": "image_url", "image_url": {"url": "data:,"}})
    return [
        ("Content-Length: ² (int() takes it)", post(b"{}", length="²"), 400),
        ("Content-Length: ² as one Latin-1 byte",
         post(b"{}", length="@").replace(b"Content-Length: @", b"Content-Length: \xb2"), 400),
        ("Content-Length: ١٢ (Arabic-Indic digits)", post(b"{}", length="١٢"), 400),
        ("Content-Length: -5", post(b"", length="-5"), 400),
        ("Content-Length: +2", post(b"{}", length="+2"), 400),
        ("Content-Length: 1e3", post(b"{}", length="1e3"), 400),
        ("Content-Length: 0x10", post(b"{}", length="0x10"), 400),
        ("Content-Length: empty", post(b"{}", length=" "), 400),
        ("two different Content-Lengths", post(b"{}", "Content-Length: 5"), 400),
        ("Content-Length: 10**30", post(b"", length="1" + "0" * 30), 413),
        ("Content-Length: 5000 digits", post(b"", length="9" * 5000), 413),
        ("Content-Length past --max-body-bytes, no body sent", post(b"", length=str(max_body + 1)),
         413),
        ("chunked, no Content-Length", post(b"", "Transfer-Encoding: chunked", length=""), 411),
        ("100k '[' (RecursionError in json)", post(b"[" * 100_000), 400),
        ("100k '{\"a\":' nested objects", post(b'{"a":' * 100_000), 400),
        ("an integer of 5000 digits", post(b'{"max_tokens": ' + b"9" * 5000 + b"}"), 400),
        ("bad UTF-8", post(b'\xff\xfe{"model": 1}'), 400),
        ("JSON null", post(b"null"), 400),
        ("JSON array", post(b"[]"), 400),
        ("max_tokens NaN", post(good_json.replace(b'"max_tokens": 4', b'"max_tokens": NaN')), 400),
        ("max_tokens 1e400 (inf)",
         post(good_json.replace(b'"max_tokens": 4', b'"max_tokens": 1e400')), 400),
        ("max_tokens -1", post(body(max_tokens=-1)), 400),
        ("n 10**30", post(body(n=10**30)), 400),
        ("a lone surrogate in the text", post(good_json.replace(b"What is", b"\\ud800 is")), 400),
        ("a 1 MB model name (echoed back?)", post(body(model="m" * 1_000_000)), 404),
        ("model is a list", post(body(model=["a"])), 400),
        ("image url is a number",
         post(good_json.replace(json.dumps(good_image_url).encode(), b"123")), 400),
        ("empty image data", post(with_image(b"")), 400),
        ("a PNG that declares 13000x13000",
         post(with_image(zero_png(13000, 13000, complete=False))), 400),
        ("a PNG of 1x20000 (aspect ratio)", post(with_image(zero_png(1, 20000))), 400),
        ("a PNG cut short", post(with_image(zero_png(400, 300)[:80])), 400),
        ("max_pixels 10**30", post(body(mm_processor_kwargs={"max_pixels": 10**30})), 400),
        ("min_pixels 0", post(body(mm_processor_kwargs={"min_pixels": 0})), 400),
        ("20k messages", post(body(messages=[{"role": "user", "content": "x"}] * 20_000)), 400),
        ("a 600 KB text", post(json.dumps(chat(model, good_image_url, "word " * 120_000)).encode()),
         400),
        ("100 image parts",
         post(good_json.replace(good_part.encode(), ", ".join([bad_part] * 100).encode())), 400),
        ("a body that ends early (half-closed)", post(b'{"model"', length="50"), 400),
        ("a body that stops coming", post(b'{"model"', length="50"), 408),
        ("request line of garbage", b"GARBAGE\r\n\r\n", 400),
        ("request line of 70k characters", b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414),
        ("200 headers", b"GET /health HTTP/1.1\r\n" + b"X-A: b\r\n" * 200 + b"\r\n", 431),
        ("a header line of 70k characters",
         b"GET /health HTTP/1.1\r\nX-A: " + b"b" * 70_000 + b"\r\n\r\n", 431),
        ("DELETE", b"DELETE /v1/chat/completions HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        ("a path with a NUL", b"GET /v1/models%00/x HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        ("POST to /health", post(b"{}").replace(b"/v1/chat/completions", b"/health"), 404),
    ]
