"""A background capture thread per camera: reads frames, never blocks inference, reconnects with backoff.

Live sources (cameras, streams, files played in real time) keep only the newest ``max_queue`` frames: when
inference falls behind, the oldest waiting frame is dropped and counted. Until the consumer's first
:meth:`CaptureThread.get` (a runtime opens all its cameras before its loop starts, and a camera opened first
reads while the others open) up to :data:`START_BACKLOG` frames wait instead; the bound then comes down as
the consumer drains them (``max_queue`` above what is left) to ``max_queue``: no frame is lost to the start.
A file played as fast as possible never drops: the reader waits for room instead, so every frame is scored
and scores are deterministic.

When a live source fails (a read error, no frame for ``stall_timeout`` seconds, a camera unplugged) the
thread releases it and reopens it after ``initial``, ``initial * factor``, ... seconds (at most ``max``),
logging and counting each attempt. Empty frames are counted and skipped; a change of resolution is counted
(the preprocessing accepts any size). The first open happens in :meth:`CaptureThread.start`, so a camera or
file that is not there is a one-line :class:`~edge_runtime.sources.SourceError` the CLI can report before
running. A network stream that cannot be opened yet is the exception (``waits_at_start``): a camera that boots
after the device must not stop the others, so it is logged and reopened with backoff like a dropped stream.

Frames can be made small as soon as they are decoded (``shrink``: the runtime passes the bundle's
preprocessing contract, and :func:`~edge_runtime.preprocess.resize_frame` brings the short side down to what
the model needs), so the queue holds small frames: a 1080p frame is 6 MB, its 224-pixel version 0.3 MB. The
full-size image is kept for the newest ``FULL_FRAMES_KEPT`` frames only (all queued frames of a file played
as fast as possible, which is deterministic), as :attr:`Frame.full`, for the event's snapshot;
:meth:`CaptureThread.newest_full` is the newest full-size frame when an older frame's was let go. With
``clip_frame`` (a :class:`~edge_runtime.clip_frames.ClipFramer`) each frame's clip frame, at the clip's size
and rate, is made here too from the image as decoded, as :attr:`Frame.clip`.

With ``frame_rate`` (the runtime passes the contract's) the thread also resamples by timestamp
(:class:`~edge_runtime.resample.FrameResampler`, the rule every frame source follows): a frame the contract's
rate skips (every other frame of a 30 fps camera for a 15 fps model) is grabbed, timed and counted
(:attr:`CaptureStats.frames_skipped`) but neither converted to BGR, shrunk nor queued, unless its clip frame
is wanted (then it is queued with :attr:`Frame.samples` 0, its clip frame and an empty image). Each queued
frame says how many samples of the contract's rate it fills (an empty frame's samples go to the next good
frame, skipped or not, as the window's own resampler would give them), which the snippet window takes as given. The queue then
holds frames at the model's rate, and the conversion and the resize (1.6 ms a 640x360 frame, the capture's
largest cost) are spent on the frames the model sees.

>>> from edge_runtime.sources import FileSource  # doctest: +SKIP
>>> with CaptureThread(FileSource("clip.mp4"), "door") as cap:  # doctest: +SKIP
...     while not cap.finished:
...         frame = cap.get(timeout=0.5)
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from .clip_frames import ClipFramer, RingFrame
from .reader_policy import BackoffPolicy, RateMeter
from .resample import FrameResampler
from .sources import FrameSource, SourceEnded, SourceError

__all__ = ["FULL_FRAMES_KEPT", "BackoffPolicy", "CaptureStats", "CaptureThread", "Frame"]

log = logging.getLogger(__name__)

_NO_IMAGE = np.zeros((0, 0, 3), np.uint8)  # the image of a frame queued for its clip frame only
START_BACKLOG = 150  # live frames held before the consumer starts: 5 s at 30 fps (small frames when shrunk)
FULL_FRAMES_KEPT = 2  # live sources: full-size images of the newest frames only (a 1080p one is 6 MB)


@dataclass(frozen=True)
class Frame:
    """One captured frame."""

    camera: str  # camera name
    index: int  # frames captured by this thread before it (gaps = dropped frames)
    timestamp: float  # capture time, seconds since the epoch
    image: np.ndarray  # BGR uint8 (h, w, 3); shrunk by the thread's ``shrink`` when it has one
    segment: int = 0  # reconnects before it: a change means frames before and after are not continuous
    full: np.ndarray | None = None  # the image as decoded (``image`` itself without ``shrink``); None once
    # the frame fell more than FULL_FRAMES_KEPT frames behind the newest (a live source whose reader lags)
    shrunk: bool = False  # True when ``image`` went through ``shrink``
    clip: RingFrame | None = None  # its event-clip frame (``clip_frame``), None when the clip rate skips it
    samples: int = 1  # samples of the contract's frame rate it fills (``frame_rate``): 0 when it is queued
    # for its clip frame only (``image`` then empty, ``full`` None), 2 or more when a camera slower than the
    # contract's rate has it repeated


@dataclass
class CaptureStats:
    """Counters of one capture thread (a snapshot from :attr:`CaptureThread.stats`)."""

    frames_read: int = 0  # good frames captured (skipped ones included)
    frames_skipped: int = 0  # of those, grabbed but not converted: the contract's frame rate skips them
    frames_dropped: int = 0  # captured but pushed out of the queue unread (live sources only)
    reconnects: int = 0  # successful reopens
    reconnect_attempts: int = 0  # reopen attempts, successful or not
    empty_frames: int = 0  # reads that gave no image
    resolution_changes: int = 0  # frames whose size differs from the previous frame's
    stream_fps: float = 0.0  # frames per second the source really delivers (by timestamp, the last ~2 s)
    declared_fps: float = 0.0  # frames per second the source says it has (0.0: it does not say)
    last_error: str | None = None  # the latest failure, one line

    def as_dict(self) -> dict[str, int | str | None]:
        return dataclasses.asdict(self)


def _as_bgr(image: np.ndarray) -> np.ndarray | None:
    """A BGR uint8 ``(h, w, 3)`` view of a captured image, or None if it is not an image."""
    if image.dtype != np.uint8:
        return None
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image if image.ndim == 3 and image.shape[2] == 3 else None


class CaptureThread:
    """Reads ``source`` on a daemon thread into a bounded queue; :meth:`get` takes frames out."""

    def __init__(
        self,
        source: FrameSource,
        name: str,
        *,
        max_queue: int = 32,
        reconnect: BackoffPolicy | None = None,
        stall_timeout: float = 10.0,
        shrink: Callable[[np.ndarray], np.ndarray] | None = None,
        clip_frame: ClipFramer | None = None,
        frame_rate: float = 0.0,
    ) -> None:
        if max_queue < 1:
            raise ValueError(f"max_queue must be >= 1, got {max_queue}")
        if stall_timeout <= 0:
            raise ValueError(f"stall_timeout must be > 0 seconds, got {stall_timeout}")
        self.source, self.name = source, name
        self.max_queue = max_queue
        self.reconnect = reconnect or BackoffPolicy()
        self.stall_timeout = stall_timeout
        self.shrink, self.clip_frame = shrink, clip_frame
        self._queue: deque[Frame] = deque()
        self._limit = max(max_queue, START_BACKLOG)  # live frames queued before the oldest is dropped
        self._full: OrderedDict[int, np.ndarray] = OrderedDict()  # frame index -> full-size image
        self._newest_full: np.ndarray | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._ended = False
        self._stats = CaptureStats()
        self._thread: threading.Thread | None = None
        self._index = 0
        self._shape: tuple[int, ...] | None = None
        self._rate = RateMeter()
        self._samples = FrameResampler(frame_rate)  # samples each frame fills at the contract's rate
        self._owed = 0  # samples of empty frames since the last good one: the next good frame fills them

    # -- consumer side ------------------------------------------------------------------------------------------
    def start(self) -> CaptureThread:
        """Open the source (a failure raises :class:`SourceError` here, unless the source ``waits_at_start``:
        then it is reopened with backoff in the background) and start reading in the background."""
        if self._thread is not None:
            raise RuntimeError(f"capture thread {self.name} was already started")
        opened = True
        try:
            self.source.open()
            self._opened()
        except SourceError as exc:
            if not self.source.waits_at_start:
                raise
            opened = False
            self._record_error(str(exc))
            log.warning("%s: %s; retrying in the background with backoff", self.name, exc)
        self._thread = threading.Thread(
            target=self._run, args=(opened,), name=f"capture-{self.name}", daemon=True
        )
        self._thread.start()
        return self

    def get(self, timeout: float | None = None) -> Frame | None:
        """The oldest queued frame; waits up to ``timeout`` seconds (None: until one comes or the source ends)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._queue:
                if self._ended:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            frame = self._queue.popleft()
            # the start's backlog drains: the bound follows it down, max_queue above what is left of it
            self._limit = min(self._limit, len(self._queue) + self.max_queue)
            full = self._full.pop(frame.index, None)
            self._cond.notify_all()
            return dataclasses.replace(frame, full=full) if full is not None else frame

    def newest_full(self) -> np.ndarray | None:
        """The newest full-size frame captured (None before the first)."""
        with self._cond:
            return self._newest_full

    @property
    def ended(self) -> bool:
        """True once the reader has stopped (end of file, unrecoverable file error, or :meth:`stop`)."""
        return self._ended

    @property
    def finished(self) -> bool:
        """True once the reader has stopped and every queued frame has been taken."""
        with self._cond:
            return self._ended and not self._queue

    @property
    def stats(self) -> CaptureStats:
        """A snapshot of the counters."""
        with self._cond:
            return dataclasses.replace(self._stats)

    def queued(self) -> int:
        """Frames waiting in the queue."""
        with self._cond:
            return len(self._queue)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the reader to stop; True if it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self._ended

    def request_stop(self) -> None:
        """Ask the reader to stop, without waiting (stop many cameras at once, then :meth:`stop` each)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop reading and release the source (queued frames stay readable). A reader still inside a
        blocking read after ``timeout`` seconds is left to finish it (a daemon thread: it releases the source
        when the read returns, and never holds up the process's exit)."""
        self.request_stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if self._thread is None:
            self._finish()

    def __enter__(self) -> CaptureThread:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- reader side --------------------------------------------------------------------------------------------
    def _run(self, opened: bool) -> None:
        attempt = 0  # consecutive failed reconnect cycles; reset by a good frame
        try:
            if not opened:
                attempt = self._reopen(attempt)
            last_good = time.monotonic()
            while not self._stop.is_set():
                try:
                    self.source.grab()
                    timestamp = self.source.timestamp()
                    samples = self._samples.count(timestamp)
                    clip = self.clip_frame is not None and self.clip_frame.wants(timestamp)
                    image = self.source.retrieve() if samples or clip or self._owed else None
                except SourceEnded:
                    log.info("%s: %s ended", self.name, self.source.description)
                    return
                except (SourceError, cv2.error, OSError) as exc:
                    self._record_error(str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc))
                    if not self.source.live:
                        log.error("%s: %s", self.name, self._stats.last_error)
                        return  # a file does not heal by reopening
                    attempt = self._reopen(attempt)
                    last_good = time.monotonic()
                    continue
                if not (samples or clip or self._owed):
                    attempt, last_good = 0, time.monotonic()
                    self._skipped(timestamp)
                    continue
                bgr = _as_bgr(image) if image is not None and image.size else None
                if bgr is None:
                    self._owed += samples
                    with self._cond:
                        self._stats.empty_frames += 1
                    if self.source.live and time.monotonic() - last_good > self.stall_timeout:
                        self._record_error(
                            f"{self.source.description}: no frame for {self.stall_timeout:g} s"
                        )
                        attempt = self._reopen(attempt)
                        last_good = time.monotonic()
                    elif self.source.live:
                        self._stop.wait(0.005)  # a source that returns empty frames at once: do not spin
                    continue
                attempt, last_good = 0, time.monotonic()
                samples, self._owed = samples + self._owed, 0
                self._put(bgr, timestamp, samples, clip)
        finally:
            self._finish()

    def _finish(self) -> None:
        try:
            self.source.release()
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def _opened(self, verb: str = "opened") -> None:
        declared = float(getattr(self.source, "fps", 0.0) or 0.0)
        with self._cond:
            self._stats.declared_fps = declared
            self._rate.clear()  # a reopened stream's rate is measured afresh
            self._samples.reset()  # and resampled afresh, as the window restarts at the new segment
            self._owed = 0
        rate = f" ({declared:g} fps declared)" if declared else ""
        log.info("%s: %s %s%s", self.name, verb, self.source.description, rate)

    def _record_error(self, message: str) -> None:
        with self._cond:
            self._stats.last_error = message

    def _skipped(self, timestamp: float) -> None:
        with self._cond:
            self._stats.frames_read += 1
            self._stats.frames_skipped += 1
            self._rate.add(timestamp)
            self._stats.stream_fps = self._rate.fps or self._stats.stream_fps

    def _put(self, image: np.ndarray, timestamp: float, samples: int, clip: bool) -> None:
        shrink = self.shrink is not None and samples > 0
        small = self.shrink(image) if shrink else image  # outside the lock: the costly part
        framed = self.clip_frame.frame(timestamp, image) if clip and self.clip_frame is not None else None
        with self._cond:
            if self._shape is not None and image.shape != self._shape:
                self._stats.resolution_changes += 1
                log.info("%s: resolution changed from %s to %s", self.name, self._shape[:2], image.shape[:2])
            self._shape = image.shape
            frame = Frame(
                self.name, self._index, timestamp, small if samples else _NO_IMAGE, self._stats.reconnects,
                shrunk=shrink, clip=framed, samples=samples,
            )  # fmt: skip
            self._newest_full = image
            if samples:  # a frame queued for its clip frame only holds no image: the queue stays small
                self._full[frame.index] = image
            while self.source.live and len(self._full) > FULL_FRAMES_KEPT:
                self._full.popitem(last=False)
            self._index += 1
            self._stats.frames_read += 1
            self._rate.add(frame.timestamp)
            self._stats.stream_fps = self._rate.fps or self._stats.stream_fps
            if self.source.live:
                if len(self._queue) >= self._limit:
                    self._full.pop(self._queue.popleft().index, None)
                    self._stats.frames_dropped += 1
            else:
                while len(self._queue) >= self.max_queue and not self._stop.is_set():
                    self._cond.wait(0.5)  # a file: wait for the consumer instead of dropping
                if self._stop.is_set():
                    self._full.pop(frame.index, None)
                    return
            self._queue.append(frame)
            self._cond.notify_all()

    def _reopen(self, attempt: int) -> int:
        """Release and reopen the source with backoff until it opens or :meth:`stop`; the next attempt number."""
        self.source.release()
        while not self._stop.is_set():
            delay = self.reconnect.delay(attempt)
            attempt += 1
            with self._cond:
                self._stats.reconnect_attempts += 1
                reason = self._stats.last_error
            log.warning("%s: reconnect attempt %d in %.1f s (%s)", self.name, attempt, delay, reason)
            if self._stop.wait(delay):
                break
            try:
                self.source.open()
            except (SourceError, cv2.error, OSError) as exc:
                self._record_error(str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc))
                self.source.release()
                continue
            with self._cond:
                self._stats.reconnects += 1
            self._opened("reconnected to")
            break
        return attempt
