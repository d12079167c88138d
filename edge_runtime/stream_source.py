"""Network streams (``rtsp://``, ``http(s)://``, ...) as a frame source, read with OpenCV's FFmpeg backend or
a hardware decoder's GStreamer pipeline, timed by the stream's own presentation times."""

from __future__ import annotations

import contextlib
import os
import threading
import time

import cv2

from .sources import OpenCVSource, SourceError, SourceSpecError
from .stream_decoders import SOFTWARE, DecoderError, check_decoder, stream_pipeline
from .urls import STREAM_SCHEMES, redact_url, url_scheme

__all__ = ["RTSP_FFMPEG_OPTIONS", "StreamClock", "StreamSource"]

_FFMPEG_OPEN_LOCK = threading.Lock()
RTSP_FFMPEG_OPTIONS = "rtsp_transport;tcp|analyzeduration;300000"  # TCP; probe 0.3 s (StreamSource)


class StreamClock:
    """A stream's presentation times (seconds) on the wall clock: the one rule that times a stream's decoded
    frames (:class:`StreamSource`) and its packets (:class:`~edge_runtime.packet_stream.PacketStream`), so
    that the two stay aligned by stream time, not arrival order.

    Through the opening the first presentation time is anchored at the time the stream began opening, so that
    the burst FFmpeg buffered while opening keeps the stream's spacing; any frame that would be stamped later
    than it arrived lowers the anchor. The opening ends when :attr:`STEADY_FRAMES` frames in a row arrived no
    less delayed than the least delayed one before (by :attr:`STEADY_TOLERANCE_S`: a burst's frames are each a
    frame interval less delayed than the last), or at the latest after :attr:`SETTLE_S` of stream time. After it
    the anchor is the least ``arrival - pts`` seen: no frame arrives before it was sent, so the least delayed
    one is the best bound, and two sessions of one stream (detect frames and copied packets) agree on it however
    long each one's server took to send its first frame (the open-time anchor is early by that wait: 0.1–0.9 s
    were measured between two sessions). A presentation time that jumps back, or more than
    :attr:`REANCHOR_S` ahead, restarts the anchor (the stream restarted); one that repeats (a stream's first
    frames, or one without timing) keeps the previous time, then arrival times. Stamps never go back in time.
    """

    REANCHOR_S = 5.0
    SETTLE_S = 2.0  # stream time after which the opening is over however its frames arrived
    STEADY_FRAMES = 3  # frames in a row whose delay did not fall: the opening burst is over
    STEADY_TOLERANCE_S = 0.005  # a delay that falls by less is arrival jitter, not a burst

    def __init__(self, opened_at: float = 0.0) -> None:
        self.reset(opened_at)

    def reset(self, opened_at: float) -> None:
        """A new connection that began opening at wall time ``opened_at``."""
        self.opened_at = opened_at
        self._anchor: float | None = None  # wall time of presentation time 0
        self._least = 0.0  # the least arrival - pts seen since the anchor began
        self._start = 0.0  # the presentation time the anchor began at
        self._repeats = 0  # consecutive stamps with the previous presentation time
        self._pts = 0.0
        self._steady = 0  # frames in a row whose delay did not fall below the least by the tolerance
        self._settled = False  # past the opening: the anchor is the least delay
        self.ts = 0.0  # the last stamp

    def stamp(self, pts: float, now: float) -> float:
        """The wall-clock time of presentation time ``pts`` (seconds), arrived at wall time ``now``."""
        repeats = self._repeats + 1 if self._anchor is not None and abs(pts - self._pts) < 1e-6 else 0
        if self._anchor is None:  # the first frame: FFmpeg began receiving when the open began
            self._anchor, self._least, self._start = self.opened_at - pts, now - pts, pts
            ts = self.opened_at
        elif self._pts < pts <= self._pts + self.REANCHOR_S:
            delay = now - pts
            self._steady = 0 if delay < self._least - self.STEADY_TOLERANCE_S else self._steady + 1
            self._least = min(self._least, delay)
            self._settled = (
                self._settled or self._steady >= self.STEADY_FRAMES or pts - self._start >= self.SETTLE_S
            )
            self._anchor = self._least if self._settled else min(self._anchor, delay)  # none in the future
            ts = self._anchor + pts
        elif repeats:  # no new presentation time
            ts = self.ts if repeats < 3 else now
        else:  # a jump: the stream restarted
            self._anchor = self._least = now - pts
            self._start, ts = pts, now
            self._steady, self._settled = 0, False
        self._pts, self._repeats = pts, repeats
        self.ts = max(ts, self.ts)  # never back in time
        return self.ts


class StreamSource(OpenCVSource):
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
    that no frame is stamped later than it arrived (:class:`StreamClock`): FFmpeg hands out the second of
    frames it buffered while opening in a burst, and arrival times would squeeze them together. ``fps`` is the rate the stream
    declares (0.0 when it does not say); the rate it really delivers is measured by the capture thread.
    """

    kind = "stream"

    def __init__(self, url: str, *, open_timeout_s: float = 10.0, read_timeout_s: float = 10.0,
                 decoder: str = SOFTWARE, codec: str = "h264") -> None:  # fmt: skip
        super().__init__()
        scheme = url_scheme(url)
        if scheme not in STREAM_SCHEMES:
            raise SourceSpecError(
                f"stream URL {redact_url(url)!r} must start with one of {[s + '://' for s in STREAM_SCHEMES]}"
            )
        self.url, self.decoder, self.codec = url, decoder, codec
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
        self._clock = StreamClock()
        if scheme in ("rtsp", "rtsps"):
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
            opened_at = time.time()
            super().open()
        assert self._cap is not None
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps < 1000 else 0.0
        self.size = (
            int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        self._clock.reset(opened_at)

    def _grabbed_one(self) -> None:
        assert self._cap is not None
        self._clock.stamp(self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0, time.time())

    def timestamp(self) -> float:
        return self._clock.ts
