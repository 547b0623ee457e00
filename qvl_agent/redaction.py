"""Keeping credentials out of what is shown and recorded.

A URL may carry a user and password (``http://user:pass@host``); the endpoint backend sends
them (as HTTP basic auth), and every message, name and record that mentions the URL shows
``http://user:***@host`` instead, the way the API key is shown as ``***``.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
# scheme://userinfo@ : the userinfo runs to the last "@" before the host part ends (a "/",
# "?", "#", whitespace or quote), so an unencoded "@" in a password is masked too.
_USERINFO = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([^\s/?#'\"<>@]*(?:@[^\s/?#'\"<>@]*)*)@")


def mask_url_credentials(text: str) -> str:
    """``text`` with every URL's password (or lone user token) replaced by ``***``."""

    def masked(match: re.Match[str]) -> str:
        user, colon, _ = match.group(2).partition(":")
        return f"{match.group(1)}{user}:{MASK}@" if colon else f"{match.group(1)}{MASK}@"

    return _USERINFO.sub(masked, text)


def without_url_credentials(url: str) -> str:
    """``url`` without its user and password: the form names and records use."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def url_secrets(url: str) -> list[str]:
    """The password of ``url`` as written and decoded (for redacting echoes of it)."""
    from urllib.parse import unquote

    password = urlsplit(url).password or ""
    return [secret for secret in {password, unquote(password)} if len(secret) >= 3]
