"""Serving a saved clip to the page's ``<video>``: one file, opened without following links, with byte ranges.

A browser's media element asks for ``Range: bytes=N-`` to read the index and to seek; a server that answers
only ``200`` with the whole file makes seeking fail in some browsers. One range per request is served
(``206``); several, or a malformed header, get the whole file (``200``), which RFC 9110 allows; a range
past the end is ``416``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

__all__ = ["parse_range", "send_file_range"]

_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")
_TYPES = {".mp4": "video/mp4", ".webm": "video/webm"}
_CHUNK = 1 << 16


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | bool:
    """``(first, last)`` (inclusive) of a single ``Range`` header; None for none / ignored; False when it
    cannot be satisfied."""
    m = _RANGE_RE.fullmatch((header or "").strip())
    if m is None or (not m[1] and not m[2]):
        return None
    if not m[1]:  # the last N bytes
        n = int(m[2])
        return (max(0, size - n), size - 1) if n > 0 and size > 0 else False
    first = int(m[1])
    last = min(int(m[2]), size - 1) if m[2] else size - 1
    if first >= size or last < first:
        return False
    return first, last


def send_file_range(handler: Any, folder: Path, name: str, send: Callable[..., None]) -> None:
    """Answer ``handler``'s GET with ``folder/name`` (a plain file, not a link): 200, 206, 404 or 416."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        dir_fd = None
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dir_fd) if dir_fd is not None else None
    except OSError:
        fd = None
    finally:
        if dir_fd is not None:
            os.close(dir_fd)
    if fd is None:
        send(HTTPStatus.NOT_FOUND, b"no such clip\n", "text/plain; charset=utf-8")
        return
    with os.fdopen(fd, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        span = parse_range(handler.headers.get("Range"), size)
        if span is False:
            send(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, b"", "text/plain",
                 extra={"Content-Range": f"bytes */{size}"})  # fmt: skip
            return
        first, last = span if span else (0, size - 1)
        handler.send_response(HTTPStatus.PARTIAL_CONTENT if span else HTTPStatus.OK)
        handler.send_header("Content-Type", _TYPES.get(Path(name).suffix, "application/octet-stream"))
        handler.send_header("Content-Length", str(last - first + 1))
        handler.send_header("Accept-Ranges", "bytes")
        handler.send_header("Cache-Control", "private, max-age=3600")
        handler.send_header("X-Content-Type-Options", "nosniff")
        if span:
            handler.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        handler.end_headers()
        fh.seek(first)
        left = last - first + 1
        while left > 0 and (block := fh.read(min(_CHUNK, left))):
            handler.wfile.write(block)
            left -= len(block)
