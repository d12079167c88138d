"""Frame sources: V4L2 cameras, RTSP/HTTP streams, GStreamer pipelines and video files, behind one interface.

A :class:`FrameSource` opens, reads one BGR uint8 frame at a time and releases; :class:`~edge_runtime.capture.
CaptureThread` runs it in the background, reconnects it and keeps its queue bounded. Live sources (cameras,
streams, a file played in real time) may drop old frames; a file played as fast as possible never does, so its
scores are deterministic. Stream URLs are shown with their password masked: credentials never reach a log.

:func:`parse_source_spec` reads the command line's ``[NAME=]SOURCE`` form:

>>> name, src = parse_source_spec("door=rtsp://user:secret@10.0.0.5/stream1")
>>> name, src.description
('door', 'stream rtsp://user:***@10.0.0.5/stream1')
>>> parse_source_spec("0", position=1)[0]
'cam1'
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from .resample import file_fps
from .schema import SchemaError, validate_id
from .stream_decoders import SOFTWARE, DecoderError, check_decoder, opencv_has_gstreamer, stream_pipeline
from .video import VideoReadError, iter_frames, probe_video

__all__ = [
    "CameraSource",
    "FileSource",
    "FrameSource",
    "GStreamerSource",
    "RECORD_ROLE",
    "SourceEnded",
    "SourceError",
    "SourceSpecError",
    "StreamSource",
    "parse_source_spec",
    "parse_source_specs",
    "redact_url",
]

log = logging.getLogger(__name__)

_FFMPEG_OPEN_LOCK = threading.Lock()
RTSP_FFMPEG_OPTIONS = "rtsp_transport;tcp|analyzeduration;300000"  # TCP; probe 0.3 s (StreamSource)
RECORD_ROLE = "|record="  # DETECT|record=RECORD: a camera's two streams
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


class SourceError(RuntimeError):
    """A source that cannot be opened or read; the message is one line and names the source."""


class SourceSpecError(SourceError, ValueError):
    """A bad ``[NAME=]SOURCE`` specification (a usage error)."""


class SourceEnded(Exception):  # noqa: N818 - an end-of-stream signal, not an error
    """The source has no more frames (the end of a file that does not loop)."""


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe to log)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def _safe(text: str) -> str:
    """Any ``scheme://user:password@`` inside ``text`` with the password masked."""
    return re.sub(r"(://[^/@:\s]*:)[^@/\s]*@", r"\1***@", text)


class FrameSource(ABC):
    """Where frames come from. Not thread-safe: one :class:`CaptureThread` drives one source."""

    kind: ClassVar[str] = ""  # "camera" | "stream" | "gstreamer" | "file"
    record: FrameSource | None = (
        None  # the camera's record stream when this is its detect stream (see record.py)
    )

    @property
    @abstractmethod
    def description(self) -> str:
        """What this source is, for messages and logs (no credentials)."""

    @property
    def live(self) -> bool:
        """True when frames arrive on their own clock (keep the newest, drop old ones); False for a file."""
        return True

    @property
    def waits_at_start(self) -> bool:
        """True when a failed first open is retried in the background instead of stopping the runtime: a
        network camera may boot after the device (a power cut) while the other cameras already run."""
        return False

    @abstractmethod
    def open(self) -> None:
        """Open (or reopen) the source; raise :class:`SourceError` with a one-line reason."""

    @abstractmethod
    def read(self) -> np.ndarray | None:
        """The next frame (BGR uint8 ``(h, w, 3)``); None or an empty array for an empty frame.

        Raises :class:`SourceError` when the read fails (the source needs reopening) and
        :class:`SourceEnded` when there are no more frames.
        """

    @abstractmethod
    def release(self) -> None:
        """Close the source; :meth:`open` may be called again."""

    def timestamp(self) -> float:
        """Capture time of the frame :meth:`read` (or :meth:`grab`) just returned, seconds since the epoch."""
        return time.time()

    def grab(self) -> None:
        """Take the next frame without converting it to BGR yet (:meth:`retrieve` does); raises as :meth:`read`.
        A record stream grabs every frame, to stay connected and timed, and retrieves a few."""
        self._grabbed = self.read()

    def retrieve(self) -> np.ndarray | None:
        """The frame :meth:`grab` took, as :meth:`read` would have returned it."""
        return getattr(self, "_grabbed", None)


class _OpenCVSource(FrameSource):
    """A source read through ``cv2.VideoCapture``."""

    def __init__(self) -> None:
        self._cap: cv2.VideoCapture | None = None

    @abstractmethod
    def _capture(self) -> cv2.VideoCapture:
        """A new ``cv2.VideoCapture`` for this source (may be unopened)."""

    def _open_error(self) -> str:
        return f"cannot open {self.description}: OpenCV could not open it"

    def open(self) -> None:
        self.release()
        try:
            cap = self._capture()
        except cv2.error as exc:
            raise SourceError(f"{self._open_error()} ({_safe(str(exc).strip().splitlines()[-1])})") from None
        if not cap.isOpened():
            cap.release()
            raise SourceError(self._open_error())
        self._cap = cap

    def read(self) -> np.ndarray | None:
        self.grab()
        return self.retrieve()

    def grab(self) -> None:
        if self._cap is None:
            raise SourceError(f"{self.description} is not open")
        if not self._cap.grab():
            raise SourceError(f"{self.description}: read failed (disconnected or stalled)")
        self._grabbed_one()

    def _grabbed_one(self) -> None:
        """Called after each good grab (a stream times its frame here)."""

    def retrieve(self) -> np.ndarray | None:
        if self._cap is None:
            raise SourceError(f"{self.description} is not open")
        ok, frame = self._cap.retrieve()
        return frame if ok else None

    def release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class CameraSource(_OpenCVSource):
    """A V4L2 camera by index (``/dev/video<index>``) or device path (e.g. ``/dev/v4l/by-id/...``)."""

    kind = "camera"

    def __init__(self, index: int | str, *, width: int | None = None, height: int | None = None,
                 fps: float | None = None) -> None:  # fmt: skip
        super().__init__()
        self.index = index
        self.device = f"/dev/video{index}" if isinstance(index, int) else str(index)
        self.requested = {
            cv2.CAP_PROP_FRAME_WIDTH: width,
            cv2.CAP_PROP_FRAME_HEIGHT: height,
            cv2.CAP_PROP_FPS: fps,
        }

    @property
    def description(self) -> str:
        return (
            f"camera {self.index} ({self.device})" if isinstance(self.index, int) else f"camera {self.device}"
        )

    def _open_error(self) -> str:
        if sys.platform.startswith("linux") and not Path(self.device).exists():
            return f"cannot open {self.description}: no such device (is the camera plugged in?)"
        return f"cannot open {self.description}: OpenCV could not open it (in use by another program, or not a capture device)"

    def _capture(self) -> cv2.VideoCapture:
        if sys.platform.startswith("linux") and hasattr(cv2, "CAP_V4L2"):
            cap = cv2.VideoCapture(self.index, cv2.CAP_V4L2)
        else:
            cap = cv2.VideoCapture(self.index)
        for prop, value in self.requested.items():
            if value is not None:
                cap.set(prop, float(value))
        return cap


class StreamSource(_OpenCVSource):
    """A network stream (``rtsp://``, ``http(s)://``, ...) read with OpenCV's FFmpeg backend.

    ``open_timeout_s`` / ``read_timeout_s`` bound how long FFmpeg waits, so a dead stream fails (and is
    reconnected) instead of blocking forever. RTSP goes over TCP (interleaved), as most NVRs do: no frame is
    torn by a lost UDP packet; and FFmpeg probes a stream for 0.3 s instead of its default (about a second,
    until it has seen a key frame), because OpenCV opens one FFmpeg stream at a time in a process: eight
    cameras would wait eight seconds. An H.264 stream's size comes from its session description anyway. Set
    ``OPENCV_FFMPEG_CAPTURE_OPTIONS`` yourself to choose otherwise (:data:`RTSP_FFMPEG_OPTIONS` is the default).

    ``decoder`` other than ``"software"`` reads an RTSP stream through a hardware decoder in a GStreamer pipeline
    (:mod:`edge_runtime.stream_decoders`; ``codec`` says h264 or h265): an OpenCV without GStreamer is refused
    here, in one line, rather than at each open.

    Timestamps follow the stream's own presentation times (the camera's clock), anchored to the wall clock so
    that no frame is stamped later than it arrived: FFmpeg hands out the second of frames it buffered while
    opening in a burst, and arrival times would squeeze them together. ``fps`` is the rate the stream
    declares (0.0 when it does not say); the rate it really delivers is measured by the capture thread.
    """

    kind = "stream"
    _REANCHOR_S = 5.0  # a presentation time that jumps back, or this far ahead, restarts the anchor

    def __init__(self, url: str, *, open_timeout_s: float = 10.0, read_timeout_s: float = 10.0,
                 decoder: str = SOFTWARE, codec: str = "h264") -> None:  # fmt: skip
        super().__init__()
        scheme = _SCHEME_RE.match(url)
        if not scheme or scheme.group(1).lower() not in STREAM_SCHEMES:
            raise SourceSpecError(
                f"stream URL {redact_url(url)!r} must start with one of {[s + '://' for s in STREAM_SCHEMES]}"
            )
        self.url, self.decoder = url, decoder
        self.pipeline: str | None = None  # the GStreamer pipeline of a hardware decoder
        if decoder != SOFTWARE:
            try:
                self.pipeline = stream_pipeline(url, decoder, codec, timeout_s=open_timeout_s)
            except DecoderError as exc:
                raise SourceSpecError(f"stream {redact_url(url)}: {exc}") from None
            try:
                check_decoder(decoder)
            except DecoderError as exc:
                raise SourceError(f"stream {redact_url(url)}: {exc}") from None
        self.open_timeout_s, self.read_timeout_s = open_timeout_s, read_timeout_s
        self.fps = 0.0
        self.size = (0, 0)  # (width, height) the stream declares
        self._anchor: float | None = None  # wall time of presentation time 0
        self._opened_at = 0.0
        self._repeats = 0  # consecutive frames with the previous frame's presentation time
        self._pts = 0.0  # presentation time of the last frame, seconds
        self._ts = 0.0
        if scheme.group(1).lower() in ("rtsp", "rtsps"):
            # Read by FFmpeg at each open; set once here, on the thread that parses the sources.
            os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", RTSP_FFMPEG_OPTIONS)

    @property
    def description(self) -> str:
        via = f" (decoded by {self.decoder})" if self.pipeline else ""
        return f"stream {redact_url(self.url)}{via}"

    @property
    def waits_at_start(self) -> bool:
        return True

    def _capture(self) -> cv2.VideoCapture:
        if self.pipeline is not None:  # rtspsrc's tcp-timeout bounds the waits (see stream_pipeline)
            return cv2.VideoCapture(self.pipeline, cv2.CAP_GSTREAMER)
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self.open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.read_timeout_s * 1000),
        ]  # fmt: skip
        return cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, params)

    def open(self) -> None:
        # OpenCV opens one FFmpeg stream at a time anyway: start the clock when this one starts
        with _FFMPEG_OPEN_LOCK if self.pipeline is None else contextlib.nullcontext():
            self._opened_at = time.time()
            super().open()
        assert self._cap is not None
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps < 1000 else 0.0
        self.size = (
            int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        self._anchor, self._pts, self._ts = None, 0.0, 0.0

    def _grabbed_one(self) -> None:
        now = time.time()
        assert self._cap is not None
        pts = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        repeats = self._repeats + 1 if self._anchor is not None and abs(pts - self._pts) < 1e-6 else 0
        if self._anchor is None:  # the first frame: FFmpeg began receiving when the open began
            self._anchor = self._opened_at - pts
            ts = self._opened_at
        elif self._pts < pts <= self._pts + self._REANCHOR_S:
            self._anchor = min(self._anchor, now - pts)  # the least delayed frame sets it: none in the future
            ts = self._anchor + pts
        elif repeats:  # no new presentation time: a stream's first frames, or one without timing at all
            ts = self._ts if repeats < 3 else now
        else:  # a jump: the stream restarted
            self._anchor, ts = now - pts, now
        self._pts, self._ts, self._repeats = pts, max(ts, self._ts), repeats  # never back in time

    def timestamp(self) -> float:
        return self._ts


class GStreamerSource(_OpenCVSource):
    """A GStreamer pipeline ending in ``appsink`` (e.g. ``nvarguscamerasrc ! ... ! appsink`` on a Jetson)."""

    kind = "gstreamer"

    def __init__(self, pipeline: str) -> None:
        super().__init__()
        if "appsink" not in pipeline:
            raise SourceSpecError(
                f"GStreamer pipeline {pipeline!r} must end in 'appsink' so OpenCV can read it"
            )
        self.pipeline = pipeline

    @property
    def description(self) -> str:
        return f"GStreamer pipeline '{self.pipeline}'"

    def open(self) -> None:
        if not opencv_has_gstreamer():
            raise SourceError(
                f"cannot open {self.description}: this OpenCV ({cv2.__version__}) was built without GStreamer; "
                "install an OpenCV built with it (on a Jetson, JetPack's python3-opencv) or give a camera "
                "index, a /dev/video path or a stream URL instead"
            )
        super().open()

    def _capture(self) -> cv2.VideoCapture:
        return cv2.VideoCapture(self.pipeline, cv2.CAP_GSTREAMER)


class FileSource(FrameSource):
    """A video file, played as fast as possible (default: never drops, deterministic) or at its own fps.

    Timestamps are the open time plus the frame's position in the video (``n / fps``), so they are evenly
    spaced whatever the decoding speed. With ``loop`` the video restarts at its end and never ends.
    """

    kind = "file"

    def __init__(self, path: str | Path, *, realtime: bool = False, loop: bool = False) -> None:
        self.path = Path(path)
        self.realtime, self.loop = realtime, loop
        self.fps = 0.0
        self._frames: Iterator[np.ndarray] | None = None
        self._served = 0  # frames returned since open (across loops)
        self._t0_wall = 0.0
        self._t0_mono = 0.0

    @property
    def description(self) -> str:
        return f"video file {self.path}"

    @property
    def live(self) -> bool:
        return self.realtime

    def open(self) -> None:
        try:
            info = probe_video(self.path, verify=False)
        except VideoReadError as exc:
            raise SourceError(str(exc)) from None
        self.fps = file_fps(info.fps)
        if info.fps <= 0:
            log.warning("%s does not state its fps; timing it at %.0f fps", self.path, self.fps)
        self._frames = iter_frames(self.path)
        self._served = 0
        self._t0_wall, self._t0_mono = time.time(), time.monotonic()

    def read(self) -> np.ndarray | None:
        if self._frames is None:
            raise SourceError(f"{self.description} is not open")
        try:
            frame = next(self._frames)
        except StopIteration:
            if not self.loop:
                raise SourceEnded(str(self.path)) from None
            self._frames = iter_frames(self.path)
            frame = next(self._frames)
        except VideoReadError as exc:
            raise SourceError(str(exc)) from None
        if self.realtime:
            wait = self._t0_mono + self._served / self.fps - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        self._served += 1
        return frame

    def timestamp(self) -> float:
        return self._t0_wall + (self._served - 1) / self.fps

    def release(self) -> None:
        if self._frames is not None:
            close = getattr(self._frames, "close", None)
            if close is not None:
                close()
            self._frames = None


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
    scheme = _SCHEME_RE.match(text)
    if scheme and scheme.group(1).lower() == "file":
        return FileSource(urlsplit(text).path, realtime=realtime, loop=loop)
    if scheme and scheme.group(1).lower() in ("rtsp", "rtsps"):
        return StreamSource(text, decoder=decoder, codec=codec)
    if scheme:
        return StreamSource(text)
    if " ! " in text and "appsink" in text:
        return GStreamerSource(text)
    path = Path(text).expanduser()
    if not path.is_file():
        raise SourceSpecError(
            f"source {_safe(text)!r} is not a camera index, /dev/video path, stream URL, gst: pipeline or an existing video file"
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
            raise SourceSpecError(f"source {_safe(spec)!r}: {exc}") from None
        text = rest.strip()
        if not text:
            raise SourceSpecError(f"source {_safe(spec)!r}: nothing after '{head}='")
    detect, sep, record = text.partition(RECORD_ROLE)
    source = _make_source(detect.strip(), realtime, loop, decoder, codec)
    if sep:
        if not record.strip():
            raise SourceSpecError(f"source {_safe(spec)!r}: nothing after '{RECORD_ROLE}'")
        source.record = _make_source(record.strip(), realtime, loop, decoder, codec)
        if source.record.live != source.live:
            raise SourceSpecError(
                f"source {_safe(spec)!r}: the detect and record streams must both be live or both files"
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
                f"two sources are named {name!r} ({_safe(seen[name])!r} and {_safe(spec)!r}): give each a name, NAME=SOURCE"
            )
        seen[name] = spec
    return parsed
