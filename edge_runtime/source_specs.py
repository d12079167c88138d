"""The command line's ``[NAME=]SOURCE`` form: a camera's name and its frame source (with an optional record
stream).

>>> name, src = parse_source_spec("door=rtsp://user:secret@10.0.0.5/stream1")
>>> name, src.description
('door', 'stream rtsp://user:***@10.0.0.5/stream1')
>>> parse_source_spec("0", position=1)[0]
'cam1'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .schema import SchemaError, validate_id
from .sources import CameraSource, FileSource, FrameSource, GStreamerSource, SourceSpecError
from .stream_decoders import SOFTWARE
from .stream_source import StreamSource
from .urls import mask_passwords, url_scheme

__all__ = ["RECORD_ROLE", "parse_source_spec", "parse_source_specs"]

RECORD_ROLE = "|record="  # DETECT|record=RECORD: a camera's two streams


def _default_name(source: FrameSource, position: int) -> str:
    if isinstance(source, FileSource):
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", source.path.stem).lstrip("_.-")[:64]
        try:
            return validate_id(stem, "camera name")
        except SchemaError:
            pass
    return f"cam{position}"


def _make_source(text: str, realtime: bool, loop: bool, decoder: str, codec: str) -> FrameSource:
    if text.startswith("gst:"):
        return GStreamerSource(text[4:].strip())
    if text.isdigit():
        return CameraSource(int(text))
    if text.startswith("/dev/"):
        match = re.fullmatch(r"/dev/video(\d+)", text)
        return CameraSource(int(match.group(1)) if match else text)
    scheme = url_scheme(text)
    if scheme == "file":
        return FileSource(urlsplit(text).path, realtime=realtime, loop=loop)
    if scheme in ("rtsp", "rtsps"):
        return StreamSource(text, decoder=decoder, codec=codec)
    if scheme:
        return StreamSource(text)
    if " ! " in text and "appsink" in text:
        return GStreamerSource(text)
    path = Path(text).expanduser()
    if not path.is_file():
        raise SourceSpecError(
            f"source {mask_passwords(text)!r} is not a camera index, /dev/video path, stream URL, gst: pipeline or an existing video file"
        )
    return FileSource(path, realtime=realtime, loop=loop)


def parse_source_spec(spec: str, position: int = 0, *, realtime: bool = False, loop: bool = False,
                      decoder: str = SOFTWARE, codec: str = "h264") -> tuple[str, FrameSource]:  # fmt: skip
    """``[NAME=]SOURCE`` -> ``(camera name, source)``.

    SOURCE: a camera index (``0``), a device path (``/dev/video2``), a stream URL (``rtsp://...``,
    ``http://...``), a GStreamer pipeline (``gst:... ! appsink``) or a video file (``realtime`` / ``loop``
    apply to files). NAME must pass :func:`edge_runtime.schema.validate_id`; the default is ``cam<position>``,
    or a file's stem made safe. ``SOURCE|record=RECORD`` gives the camera a record stream besides its detect
    stream SOURCE (Frigate's camera roles: the sub-stream is scored, the main stream kept at full size; a
    ``|`` never appears unescaped in a URL), as :attr:`FrameSource.record`. ``decoder`` / ``codec`` apply to
    RTSP streams (see :class:`StreamSource`).
    """
    text = spec.strip()
    if not text:
        raise SourceSpecError("empty source: expected [NAME=]SOURCE, e.g. door=0 or yard=rtsp://host/stream")
    name: str | None = None
    head, sep, rest = text.partition("=")
    if sep and "/" not in head and ":" not in head and not head.isdigit():
        try:
            name = validate_id(head, "camera name")
        except SchemaError as exc:
            raise SourceSpecError(f"source {mask_passwords(spec)!r}: {exc}") from None
        text = rest.strip()
        if not text:
            raise SourceSpecError(f"source {mask_passwords(spec)!r}: nothing after '{head}='")
    detect, sep, record = text.partition(RECORD_ROLE)
    source = _make_source(detect.strip(), realtime, loop, decoder, codec)
    if sep:
        if not record.strip():
            raise SourceSpecError(f"source {mask_passwords(spec)!r}: nothing after '{RECORD_ROLE}'")
        source.record = _make_source(record.strip(), realtime, loop, decoder, codec)
        if source.record.live != source.live:
            raise SourceSpecError(
                f"source {mask_passwords(spec)!r}: the detect and record streams must both be live or both files"
            )
    return name or _default_name(source, position), source


def parse_source_specs(specs: Sequence[str], *, realtime: bool = False, loop: bool = False,
                       decoder: str = SOFTWARE, codec: str = "h264") -> list[tuple[str, FrameSource]]:  # fmt: skip
    """Parse several specs (positions 0, 1, ...); two cameras with one name is an error."""
    parsed = [
        parse_source_spec(s, i, realtime=realtime, loop=loop, decoder=decoder, codec=codec)
        for i, s in enumerate(specs)
    ]
    seen: dict[str, Any] = {}
    for (name, _), spec in zip(parsed, specs, strict=True):
        if name in seen:
            raise SourceSpecError(
                f"two sources are named {name!r} ({mask_passwords(seen[name])!r} and {mask_passwords(spec)!r}): give each a name, NAME=SOURCE"
            )
        seen[name] = spec
    return parsed
