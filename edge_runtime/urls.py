"""Stream URLs in messages and logs: a URL's scheme, and its password masked (credentials never reach a log).

>>> redact_url("rtsp://user:secret@10.0.0.5/stream1")
'rtsp://user:***@10.0.0.5/stream1'
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

__all__ = ["STREAM_SCHEMES", "mask_passwords", "redact_url", "url_scheme"]

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def url_scheme(text: str) -> str | None:
    """The lower-case scheme of ``text`` when it starts with ``scheme://``, else None."""
    match = _SCHEME_RE.match(text)
    return match.group(1).lower() if match else None


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe to log)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def mask_passwords(text: str) -> str:
    """Any ``scheme://user:password@`` inside ``text`` with the password masked."""
    return re.sub(r"(://[^/@:\s]*:)[^@/\s]*@", r"\1***@", text)
