"""A watch server on its own thread, with the control the runs are steered through."""

from __future__ import annotations

import secrets
import threading

from qvl_agent.watch.control import WatchControl
from qvl_agent.watch.server import WatchServer

# Seconds the page gets to receive the run's end before the server closes.
FAREWELL_SECONDS = 2.0


class WatchSession:
    """The watch server on its own thread, with the control the runs are steered through."""

    def __init__(self, server: WatchServer) -> None:
        self.server = server
        self.control = server.control
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="qvl-watch", daemon=True)
        self._thread.start()

    @classmethod
    def start(cls, host: str = "127.0.0.1", port: int = 0, kind: str = "run") -> WatchSession:
        """Serve the page on ``host:port`` (0: a free port); raises OSError when it cannot."""
        control = WatchControl(kind=kind)
        return cls(WatchServer(host, port, control, secrets.token_urlsafe(18)))

    @property
    def url(self) -> str:
        return self.server.url

    def close(self) -> None:
        """Let open pages receive the end of the run, then stop serving. A run still held
        (paused, taken over) is stopped: nobody could resume it any more."""
        self.control.stop("the watch page closed")
        feed = self.control.feed
        feed.close()
        feed.wait_delivered(FAREWELL_SECONDS)
        self.server.closing.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> WatchSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
