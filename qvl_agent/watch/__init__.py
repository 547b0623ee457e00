"""``--watch``: a local web page that shows a run as it happens and lets a person steer it
(pause, resume, stop, take over, and answer ``--confirm`` questions).

    with WatchSession.start() as watch:
        Agent(model, device, steering=watch.control).run(goal)

The page is served from this package (no network), by the stdlib's HTTP server on
loopback; another address only when asked for (``--watch-host``), with a warning.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qvl_agent.watch.session import WatchSession


def watch_options(parser: argparse.ArgumentParser) -> None:
    """``--watch``, ``--watch-port``, ``--watch-host``; read back by :func:`watch_from_args`."""
    parser.add_argument("--watch", action="store_true",
                        help="serve a live page of the run (screenshot, the action about to be "
                        "taken, the model's thought; pause, stop, take over) and print its URL")
    parser.add_argument("--watch-port", type=int, default=0, metavar="P",
                        help="port of the watch page (default: a free one, printed)")
    parser.add_argument("--watch-host", default="127.0.0.1", metavar="H",
                        help="address of the watch page (default 127.0.0.1; any other lets "
                        "whoever has the printed URL watch and steer the run)")


class WatchError(ValueError):
    """Watch options that cannot be served; the message says what to change."""


def watch_from_args(args: argparse.Namespace, kind: str = "run") -> WatchSession | None:
    """The watch session the options ask for (None without ``--watch``); prints its URL."""
    from qvl_agent.server.httpd import is_loopback
    from qvl_agent.watch.session import WatchSession

    if not getattr(args, "watch", False):
        return None
    if not 0 <= args.watch_port <= 65535:
        raise WatchError(f"--watch-port {args.watch_port}: a port is 0-65535 (0 picks a free one)")
    try:
        session = WatchSession.start(args.watch_host, args.watch_port, kind=kind)
    except OSError as error:
        raise WatchError(f"cannot serve the watch page on {args.watch_host}:{args.watch_port}: "
                         f"{error.strerror or error}") from None
    if not is_loopback(args.watch_host):
        print(f"warning: the watch page listens on {args.watch_host}: anyone who can reach it "
              "and has the URL below can watch the screen and steer the run (plain HTTP, "
              "not encrypted)", file=sys.stderr)
    print(f"watch: {session.url}", file=sys.stderr, flush=True)
    return session
