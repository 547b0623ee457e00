"""The device (adbd) side of one ADB transport connection: handshake and streams.

The real adb server connects, sends CNXN; we answer with our own CNXN (a device with auth
disabled skips AUTH). Then the server OPENs streams by service name ("shell,v2:ls"); each
stream runs its service on its own thread. Flow control follows ``protocol.txt``: after a
WRTE the sender waits for the peer's OKAY before the next WRTE on that stream, and WRTE
payloads never exceed the negotiated maxdata.
"""

from __future__ import annotations

import itertools
import logging
import queue
import socket
import struct
import threading
from collections.abc import Callable

from environments.android_sim import wire
from environments.android_sim.wire import Message

log = logging.getLogger("android_sim.transport")

ACK_TIMEOUT = 60.0  # seconds a stream waits for the server's OKAY before giving up


class StreamClosed(ConnectionError):
    """The server closed the stream (or the whole transport) under us."""


class Stream:
    """One service stream, seen from the service: ``write``/``read``/``close``."""

    def __init__(self, transport: Transport, local_id: int, remote_id: int, service: str):
        self.transport, self.local_id, self.remote_id = transport, local_id, remote_id
        self.service = service
        self.closed = threading.Event()
        self._acked = threading.Event()
        self._incoming: queue.Queue[bytes | None] = queue.Queue()

    def write(self, data: bytes) -> None:
        """Send ``data`` as WRTEs of at most maxdata, each acknowledged before the next."""
        view = memoryview(data)
        step = self.transport.max_payload
        for start in range(0, len(view), step):
            if self.closed.is_set():
                raise StreamClosed(f"stream {self.service!r} closed by the server")
            self._acked.clear()
            self.transport.send(Message(wire.WRTE, self.local_id, self.remote_id,
                                        bytes(view[start:start + step])))
            if not self._wait_for_ack():
                raise StreamClosed(f"no OKAY for a WRTE on {self.service!r}")

    def read(self, timeout: float | None = None) -> bytes | None:
        """Next bytes the server wrote to us; None once the stream is closed."""
        if self.closed.is_set() and self._incoming.empty():
            return None
        try:
            return self._incoming.get(timeout=timeout)
        except queue.Empty:
            return b""

    def close(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            self.transport.forget(self)
            self.transport.send(Message(wire.CLSE, self.local_id, self.remote_id), quiet=True)

    # Called by the transport's reader thread.
    def _on_okay(self) -> None:
        self._acked.set()

    def _on_data(self, data: bytes) -> None:
        self._incoming.put(data)

    def _on_close(self) -> None:
        self.closed.set()
        self._acked.set()  # wake a writer waiting for an OKAY that will never come
        self._incoming.put(None)

    def _wait_for_ack(self) -> bool:
        self._acked.wait(ACK_TIMEOUT)
        return self._acked.is_set() and not self.closed.is_set()


# Given a service name, a handler that serves the stream, or None to refuse the OPEN.
ServiceResolver = Callable[[str], "Callable[[Stream], None] | None"]


class Transport:
    """One TCP connection from the adb server; ``serve()`` runs until it ends."""

    _ids = itertools.count(1)

    def __init__(self, sock: socket.socket, banner: str, resolve: ServiceResolver,
                 on_message: Callable[[str, Message], None] | None = None) -> None:
        self.sock = sock
        self.banner = banner.encode()
        self.resolve = resolve
        self.on_message = on_message or (lambda direction, message: None)
        self.version = wire.VERSION_MIN
        self.max_payload = wire.MAX_PAYLOAD_V1
        self.online = threading.Event()
        self._send_lock = threading.Lock()
        self._streams: dict[int, Stream] = {}
        self._streams_lock = threading.Lock()
        self._dead = False

    # --- sending ---------------------------------------------------------------
    def send(self, message: Message, quiet: bool = False) -> None:
        self.on_message("out", message)
        packet = wire.encode(message, with_checksum=self.version < wire.VERSION_SKIP_CHECKSUM)
        try:
            with self._send_lock:
                self.sock.sendall(packet)
        except OSError as error:
            if not quiet:
                raise StreamClosed(f"transport lost: {error}") from error

    def forget(self, stream: Stream) -> None:
        with self._streams_lock:
            self._streams.pop(stream.local_id, None)

    # --- receiving -------------------------------------------------------------
    def serve(self) -> None:
        try:
            while True:
                limit = self.max_payload if self.online.is_set() else wire.MAX_PAYLOAD
                message = wire.read_message(self.sock, limit)
                self.on_message("in", message)
                self._dispatch(message)
        except (ConnectionError, OSError) as error:
            if not self._dead:
                log.info("transport ended: %s", error)
        finally:
            self.abort()

    def _dispatch(self, message: Message) -> None:
        if message.command == wire.CNXN:
            self._on_connect(message)
        elif not self.online.is_set():
            log.warning("ignoring %r before CNXN", message)
        elif message.command == wire.OPEN:
            self._on_open(message)
        elif message.command in (wire.OKAY, wire.WRTE, wire.CLSE):
            self._on_stream_message(message)
        else:
            log.warning("ignoring unexpected %r", message)

    def _on_connect(self, message: Message) -> None:
        # Speak the older of the two versions; never send more than either side accepts.
        self.version = min(message.arg0, wire.VERSION)
        self.max_payload = min(message.arg1, wire.MAX_PAYLOAD)
        log.info("server CNXN version=0x%08x maxdata=%d banner=%r",
                 message.arg0, message.arg1, message.data)
        self.send(Message(wire.CNXN, wire.VERSION, wire.MAX_PAYLOAD, self.banner))
        self.online.set()

    def _on_open(self, message: Message) -> None:
        remote_id = message.arg0
        service = message.data.rstrip(b"\0").decode("utf-8", "replace")
        handler = self.resolve(service)
        if handler is None:
            # CLSE with local-id 0: "the OPEN failed" (the server tells its client FAIL).
            self.send(Message(wire.CLSE, 0, remote_id), quiet=True)
            return
        stream = Stream(self, next(self._ids), remote_id, service)
        with self._streams_lock:
            self._streams[stream.local_id] = stream
        self.send(Message(wire.OKAY, stream.local_id, remote_id))
        threading.Thread(target=self._run_service, args=(handler, stream),
                         name=f"adb-{service[:30]}", daemon=True).start()

    def _run_service(self, handler: Callable[[Stream], None], stream: Stream) -> None:
        try:
            handler(stream)
        except StreamClosed as error:
            log.info("%s", error)
        except Exception:  # a bug in a service must not take the phone down
            log.exception("service %r failed", stream.service)
        finally:
            stream.close()

    def _on_stream_message(self, message: Message) -> None:
        remote_id, local_id = message.arg0, message.arg1
        with self._streams_lock:
            stream = self._streams.get(local_id)
        if stream is None or stream.remote_id != remote_id:
            return  # e.g. the server's CLSE answering ours: the stream is already gone
        if message.command == wire.OKAY:
            stream._on_okay()
        elif message.command == wire.WRTE:
            stream._on_data(message.data)
            self.send(Message(wire.OKAY, local_id, remote_id), quiet=True)
        else:
            self.forget(stream)
            stream._on_close()

    # --- ending ----------------------------------------------------------------
    def abort(self) -> None:
        """Drop the connection at once (RST, as when adbd dies), closing every stream."""
        if self._dead:
            return
        self._dead = True
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        for step in (lambda: self.sock.shutdown(socket.SHUT_RD), self.sock.close):
            try:  # SHUT_RD wakes our reader thread without a FIN; close then sends the RST
                step()
            except OSError:
                pass
        with self._streams_lock:
            streams, self._streams = list(self._streams.values()), {}
        for stream in streams:
            stream._on_close()
