"""A camera's record stream: the full-resolution stream beside the small detect stream it is scored on.

IP cameras serve a main stream (1080p and up) and a sub-stream (e.g. 640x360); as Frigate's camera roles do,
the sub-stream is the camera's *detect* stream (decoded, shrunk, scored) and the main stream its *record*
stream. A :class:`RecordStream` stays connected to the record stream on its own thread (reconnecting with
the capture thread's backoff) and grabs every frame, which keeps it timed by the stream's own clock, but
converts to BGR only about ``keep_every_s`` seconds' worth: it keeps the newest ``FRAMES_KEPT`` of those
full-resolution frames. The two streams are aligned by timestamps, not frame counts (their rates may differ):
:meth:`RecordStream.frame_near` is the kept record frame nearest in time to a detect frame's timestamp, the
event snapshot's picture. With ``clip_frame`` (a :class:`~edge_runtime.clip_frames.ClipFramer`) the stream
also makes the camera's event-clip frames, at the clip's size and rate from the full-resolution frames and
timed by the record stream's clock: it converts only the frames the clip rate takes, and holds at most
``CLIP_BACKLOG`` of them until the runtime's loop takes them (:meth:`RecordStream.take_clip_frames`) into the
camera's pre-capture ring. The detect stream still drives the events; a clip frame and an event are matched
by timestamp.

>>> record = RecordStream(StreamSource("rtsp://cam/main"), "door").start()  # doctest: +SKIP
>>> record.frame_near(snippet.last_ts)  # doctest: +SKIP
(1733140000.033, array(...))
"""

from __future__ import annotations

import dataclasses
import logging
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from .clip_frames import ClipFramer, RingFrame
from .reader_policy import BackoffPolicy, RateMeter
from .reader_thread import ReaderThread
from .sources import FrameSource, SourceEnded, SourceError

__all__ = ["CLIP_BACKLOG", "FRAMES_KEPT", "RecordStats", "RecordStream"]

log = logging.getLogger(__name__)

FRAMES_KEPT = 3  # full-resolution frames held: 3 x 6 MB at 1080p
CLIP_BACKLOG = 64  # clip frames waiting for the loop (4 s at 15 fps, a few MB as JPEG): the oldest go first


@dataclass
class RecordStats:
    """Counters of one record stream (a snapshot from :attr:`RecordStream.stats`)."""

    frames: int = 0  # frames grabbed
    kept: int = 0  # of them converted and kept
    clip_frames: int = 0  # clip frames made (with clips)
    stream_fps: float = 0.0  # frames per second it delivers (by timestamp, the last ~2 s)
    reconnects: int = 0
    last_error: str | None = None

    def as_dict(self) -> dict[str, int | float | str | None]:
        return dataclasses.asdict(self)


class RecordStream(ReaderThread):
    """Reads ``source`` (a camera's record stream) on a daemon thread; see the module docstring. The first
    open, too, is retried there: a record stream never stops the camera's detection."""

    def __init__(self, source: FrameSource, camera: str, *, keep_every_s: float = 0.2,
                 reconnect: BackoffPolicy | None = None, clip_frame: ClipFramer | None = None) -> None:  # fmt: skip
        super().__init__("record", camera, RecordStats())
        self.source, self.clip_frame = source, clip_frame
        self.keep_every_s = keep_every_s
        self.reconnect = reconnect or BackoffPolicy()
        self._kept: deque[tuple[float, np.ndarray]] = deque(maxlen=FRAMES_KEPT)
        self._clips: deque[RingFrame] = deque(maxlen=CLIP_BACKLOG)
        self._rate = RateMeter()

    @property
    def stats(self) -> RecordStats:
        return super().stats

    def frame_near(self, timestamp: float) -> tuple[float, np.ndarray] | None:
        """The kept record frame nearest in time to ``timestamp``, with its own timestamp; None before any."""
        with self._lock:
            if not self._kept:
                return None
            return min(self._kept, key=lambda kept: abs(kept[0] - timestamp))

    def take_clip_frames(self) -> list[RingFrame]:
        """The clip frames made since the last call, oldest first."""
        with self._lock:
            frames = list(self._clips)
            self._clips.clear()
        return frames

    # -- reader side ---------------------------------------------------------------------------------------
    def _run(self) -> None:
        attempt = 0
        try:
            while not self._stop.is_set():
                try:
                    if attempt or not self._stats.frames:
                        self.source.open()
                        log.info("%s: record stream %s opened", self.camera, self.source.description)
                        if attempt:
                            with self._lock:
                                self._stats.reconnects += 1
                        attempt = 0
                    self._read_until_failure()
                    return
                except SourceEnded:
                    return
                except (SourceError, cv2.error, OSError) as exc:
                    with self._lock:
                        self._stats.last_error = (
                            str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
                        )
                    self.source.release()
                    delay = self.reconnect.delay(attempt)
                    attempt += 1
                    log.warning(
                        "%s: record stream: %s; retrying in %.1f s",
                        self.camera,
                        self._stats.last_error,
                        delay,
                    )
                    self._stop.wait(delay)
        finally:
            self.source.release()

    def _read_until_failure(self) -> None:
        next_keep = 0.0
        while not self._stop.is_set():
            self.source.grab()
            ts = self.source.timestamp()
            with self._lock:
                self._stats.frames += 1
                self._rate.add(ts)
                self._stats.stream_fps = self._rate.fps or self._stats.stream_fps
            keep = ts >= next_keep
            clip = self.clip_frame is not None and self.clip_frame.wants(ts)
            if not (keep or clip):
                continue
            image = self.source.retrieve()
            if image is None or not image.size:
                continue
            framed = self.clip_frame.frame(ts, image) if clip and self.clip_frame is not None else None
            with self._lock:
                if framed is not None:
                    self._clips.append(framed)
                    self._stats.clip_frames += 1
                if keep:
                    next_keep = ts + self.keep_every_s
                    self._kept.append((ts, image))
                    self._stats.kept += 1
