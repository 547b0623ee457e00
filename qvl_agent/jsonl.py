"""JSON Lines, read the one way every reader in this project reads them.

Records end at ``"\\n"`` and nowhere else. ``str.splitlines()`` also ends a line at U+2028,
U+2029, U+0085, form feeds and more, which a JSON string may hold raw (``ensure_ascii=False``
writes them so): it cuts such a record in two and both halves are lost. Each line is decoded
on its own, so a line torn mid-character (a full disk, a kill during a write) spoils only
itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple


class Line(NamedTuple):
    number: int  # 1-based, counting blank lines too, as an editor shows them
    text: str | None  # None when the line's bytes are not UTF-8 (torn mid-character)


NOT_UTF8 = "not UTF-8 text (a line torn mid-character?)"


def split_lines(data: bytes) -> Iterator[Line]:
    """Each non-blank line of ``data``, split on ``\\n`` only; a ``\\r`` before it and a
    UTF-8 byte-order mark at the start are dropped."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    for number, raw in enumerate(data.split(b"\n"), start=1):
        raw = raw.removesuffix(b"\r")
        if not raw.strip():
            continue
        try:
            yield Line(number, raw.decode("utf-8"))
        except UnicodeDecodeError:
            yield Line(number, None)


def read_lines(path: str | Path) -> list[Line]:
    """The non-blank lines of the JSON Lines file ``path`` (see :func:`split_lines`)."""
    return list(split_lines(Path(path).read_bytes()))
