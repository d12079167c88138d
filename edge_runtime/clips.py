"""Event clips: a pre-capture ring per camera and a writer thread per clip (pre + event + post).

Each camera's clip frames (:mod:`edge_runtime.clip_frames`: at the clip's size and rate, JPEG, made by the
thread that decoded them from the frame as decoded, or from the camera's record stream) go through
:meth:`CameraClips.feed`: a :class:`FrameRing` keeps them for ``ring_s`` seconds, and never more than
:data:`RING_MAX_BYTES`. When an event starts, the ring's frames from ``started_at - pre_s`` on (the first one
at most one frame from that time) go to a :class:`ClipWriter`, and every frame after them until ``post_s``
seconds after the event's end, or until the clip is ``max_s`` long. The writer decodes and encodes on its own
thread with PyAV (libx264 in mp4 with its index in front, or VP9 in webm: both play in a browser), so scoring
never waits on encoding; the runtime only hands it frames, and one that falls behind holds at most
:data:`WRITER_MAX_BYTES` of them. It writes a ``.part`` file that
:class:`~edge_runtime.clip_store.ClipStore` publishes under its final name once it is complete, then describes
it (size, duration, SHA-256) for the event's ``end`` message, which the runtime holds back until then.

PyAV is an optional dependency (``pip install i3d-mtn-edge[clips]``): :func:`check_encoder` says what to
install when clips are asked for and it is missing.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from .clip_frames import RingFrame
from .clip_store import ClipStore, clip_info, clip_missing
from .sources import FrameSource

__all__ = [
    "ENCODERS", "RING_MAX_BYTES", "WRITER_MAX_BYTES", "CameraClips", "ClipError", "ClipWriter", "FrameRing",
    "RingFrame", "check_encoder", "ring_seconds",
]  # fmt: skip

log = logging.getLogger(__name__)

# codec setting -> (PyAV encoder, container format, file extension, encoder options)
ENCODERS: dict[str, tuple[str, str, str, dict[str, str]]] = {
    # ultrafast + crf 26: the least CPU per frame; veryfast made 2.6x smaller files for 2.4x the CPU (at
    # 299x224: docs/benchmarks.md, benchmarks/clips.py)
    "h264": ("libx264", "mp4", "mp4", {"preset": "ultrafast", "crf": "26"}),
    "vp9": ("libvpx-vp9", "webm", "webm", {"deadline": "realtime", "cpu-used": "8", "crf": "33", "b": "0"}),
}
_CONTAINER_OPTIONS = {"mp4": {"movflags": "+faststart"}}  # the index first: a browser plays while loading
# Per camera: the ring's default (15 fps, 480 rows, ~6 s) holds 5-8 MB; the bound only binds on a long pre_s
# or a noisy scene, letting the oldest frames go (one warning).
RING_MAX_BYTES = 16_000_000
# A writer's queued frames (those it began with included; the newest are the ring's own) before it drops
# frames (counted): an encoder that falls far behind never grows the memory.
WRITER_MAX_BYTES = 16_000_000
_TIME_BASE = Fraction(1, 1000)  # frame times in milliseconds: a camera's real timing, drops included


class ClipError(RuntimeError):
    """Clips were asked for and cannot be made or served (a library, the encoder, the token): one line."""


def check_encoder(codec: str) -> None:
    """Raise :class:`ClipError` (one line) when PyAV or the codec's encoder is missing."""
    try:
        import av
    except ImportError:
        raise ClipError(
            "event clips need PyAV: pip install 'i3d-mtn-edge[clips]' (or turn clips off)"
        ) from None
    encoder = ENCODERS[codec][0]
    if encoder not in av.codecs_available:
        raise ClipError(f"event clips: this PyAV build has no {encoder} encoder (codec {codec!r})")


class FrameRing:
    """The newest ``seconds`` of a camera's clip frames (by timestamp), at most ``max_bytes`` of them."""

    def __init__(self, seconds: float, max_bytes: int = RING_MAX_BYTES, name: str = "") -> None:
        self.seconds, self.max_bytes, self.name = float(seconds), max_bytes, name
        self._frames: deque[RingFrame] = deque()
        self.nbytes = 0
        self.trimmed = 0  # frames let go before their time to stay within max_bytes

    def push(self, frame: RingFrame) -> None:
        if self._frames and frame.timestamp < self._frames[-1].timestamp:  # a reconnected source's clock
            self.clear()
        self._frames.append(frame)
        self.nbytes += frame.nbytes
        while self._frames and self._frames[0].timestamp < frame.timestamp - self.seconds:
            self.nbytes -= self._frames.popleft().nbytes
        while self.nbytes > self.max_bytes and len(self._frames) > 1:
            self.nbytes -= self._frames.popleft().nbytes
            if not self.trimmed:
                log.warning(
                    "%s: the clip ring reached its %.0f MB bound: it holds %.1f s instead of %.1f s "
                    "(a lower [clips] max_height or fps, or a shorter pre_s, fits)", self.name or "clips",
                    self.max_bytes / 1e6, frame.timestamp - self._frames[0].timestamp, self.seconds,
                )  # fmt: skip
            self.trimmed += 1

    def since(self, start: float) -> list[RingFrame]:
        """The frames from the one nearest ``start`` (at most one frame away when the ring reaches back that
        far; else from the oldest) to the newest."""
        frames = list(self._frames)
        first = 0
        for i, frame in enumerate(frames):
            if frame.timestamp <= start:
                first = i
            else:
                if i > 0 and frames[i - 1].timestamp <= start:
                    before = start - frames[i - 1].timestamp
                    first = i if frame.timestamp - start < before else i - 1
                break
        return frames[first:]

    def clear(self) -> None:
        self._frames.clear()
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._frames)


class ClipWriter:
    """Encodes one event's clip on a daemon thread: :meth:`put` frames, then :meth:`finish`. ``on_done``
    gets the clip's ``end``-message description (:func:`~edge_runtime.clip_store.clip_info` or
    :func:`~edge_runtime.clip_store.clip_missing`), from the writer thread."""

    def __init__(self, store: ClipStore, event_id: str, codec: str, fps: float, first: list[RingFrame],
                 on_done: Callable[[str, dict[str, Any]], None]) -> None:  # fmt: skip
        self.store, self.event_id, self.codec = store, event_id, codec
        self.name = f"{event_id}.{ENCODERS[codec][2]}"
        self.fps = fps if fps > 0 else 30.0
        self.dropped = 0
        self._queue: queue.SimpleQueue[RingFrame | None] = queue.SimpleQueue()
        self._queued_bytes = 0
        self._bytes_lock = threading.Lock()
        for frame in first:
            self.put(frame)
        self._on_done = on_done
        self._thread = threading.Thread(target=self._run, name=f"clip-{event_id[:8]}", daemon=True)
        self._thread.start()

    def put(self, frame: RingFrame) -> None:
        with self._bytes_lock:
            if self._queued_bytes + frame.nbytes > WRITER_MAX_BYTES:
                self.dropped += 1
                return
            self._queued_bytes += frame.nbytes
        self._queue.put(frame)

    def finish(self) -> None:
        """No more frames: the writer encodes what it has, publishes the clip and calls ``on_done``."""
        self._queue.put(None)

    def _take(self) -> RingFrame | None:
        frame = self._queue.get()
        if frame is not None:
            with self._bytes_lock:
                self._queued_bytes -= frame.nbytes
        return frame

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        started = time.perf_counter()
        try:
            info = self._encode()
        except Exception as exc:  # noqa: BLE001 - any failure of one clip is logged, never stops the runtime
            self.store.discard(self.name)
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
            log.error("clip %s could not be written: %s", self.name, reason)
            info = clip_missing(reason)
        else:
            log.info(
                "clip %s: %d frames, %.1f s, %.0f kB, written in %.2f s%s", self.name, info["frames"],
                info["duration_s"], info["size_bytes"] / 1e3, time.perf_counter() - started,
                f" ({self.dropped} frames dropped: the encoder fell behind)" if self.dropped else "",
            )  # fmt: skip
        self._on_done(self.event_id, info)

    def _encode(self) -> dict[str, Any]:
        import av

        encoder, container_format, _, options = ENCODERS[self.codec]
        part = self.store.part_path(self.name)
        first = self._take()
        if first is None:
            raise RuntimeError("no frames to write")
        count, last_pts, last_ts = 0, -1, first.timestamp
        with av.open(str(part), "w", format=container_format,
                     options=_CONTAINER_OPTIONS.get(container_format, {})) as out:  # fmt: skip
            stream = out.add_stream(encoder, rate=round(self.fps), options=dict(options))
            stream.width, stream.height, stream.pix_fmt = first.width, first.height, "yuv420p"
            stream.codec_context.time_base = _TIME_BASE
            stream.codec_context.thread_count = 1  # one core at most, beside the inference
            frame: RingFrame | None = first
            while frame is not None:
                if (frame.width, frame.height) == (first.width, first.height):  # a resized stream: skipped
                    video = av.VideoFrame.from_ndarray(frame.yuv(), format="yuv420p")
                    pts = max(round((frame.timestamp - first.timestamp) * 1000), last_pts + 1)
                    video.pts, video.time_base = pts, _TIME_BASE
                    out.mux(stream.encode(video))
                    count, last_pts, last_ts = count + 1, pts, frame.timestamp
                frame = self._take()
            out.mux(stream.encode(None))
        final = self.store.publish(self.name)
        duration = last_ts - first.timestamp + 1.0 / self.fps  # the last frame is shown one frame long
        info = clip_info(final, duration_s=duration, frames=count, width=first.width, height=first.height,
                         started_at=first.timestamp, codec=self.codec)  # fmt: skip
        self.store.enforce(protect=self.name)
        return info


def ring_seconds(pre_s: float, min_duration_s: float, window: Any) -> float:
    """How long a camera's ring reaches back: ``pre_s`` before an event's ``started_at``, which is
    ``min_duration_s`` and up to one snippet (of the bundle's ``window``) before its ``start``, + 1 s."""
    return pre_s + min_duration_s + window.snippet_length * window.frame_stride / window.fps + 1.0


class CameraClips:
    """One camera's ring and the writer of its current event's clip (used from the runtime's loop thread,
    except ``on_done``, which writers call). ``fps``: the clip's frame rate (its nominal rate: frames are
    timed by their timestamps)."""

    def __init__(self, camera: str, store: ClipStore, *, pre_s: float, post_s: float, max_s: float,
                 ring_s: float, codec: str, fps: float = 30.0) -> None:  # fmt: skip
        import av  # noqa: F401 - imported here, not on the writer's first clip: a start never waits on it

        self.camera, self.store = camera, store
        self.pre_s, self.post_s, self.max_s, self.codec, self.fps = pre_s, post_s, max_s, codec, fps
        self.ring = FrameRing(ring_s, name=camera)
        self._writer: ClipWriter | None = None
        self._clip_start = 0.0
        self._stop_at = float("inf")  # the active clip's last frame time
        self._done: list[tuple[str, dict[str, Any]]] = []
        self._writers: dict[str, ClipWriter] = {}
        self._held: dict[str, dict[str, Any]] = {}  # event_id -> its end message, until its clip is written
        self._results: dict[str, dict[str, Any]] = {}  # event_id -> its clip field, until its end comes
        self._open: set[str] = set()  # events whose clip began and whose end has not been released
        self._writer_event: str | None = None
        self._starts: list[tuple[str, float]] = []  # (event_id, started_at) to begin after the start is sent
        self._lock = threading.Lock()

    @classmethod
    def for_camera(cls, camera: str, source: FrameSource, store: ClipStore, settings: Any,
                   min_duration_s: float, window: Any) -> CameraClips:  # fmt: skip
        """The recorder of a runtime's camera (``settings``: :class:`devices.clip_settings.ClipSettings`,
        ``window``: the bundle's). Its ring reaches back far enough for a clip to begin ``pre_s`` before an
        event's ``started_at``, which is ``min_duration_s`` and up to one snippet before its ``start``."""
        ring_s = ring_seconds(settings.pre_s, min_duration_s, window)
        fps = settings.fps or float(getattr(source, "fps", 0.0) or 30.0)
        return cls(camera, store, pre_s=settings.pre_s, post_s=settings.post_s, max_s=settings.max_s,
                   ring_s=ring_s, codec=settings.codec, fps=fps)  # fmt: skip

    def hold(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Note a clip to begin for each ``start`` message (:meth:`begin`, once the start is sent: it waits
        for no writer); hold each ``end`` back until its clip is written (then :meth:`finished_ends` gives it,
        saying so). The messages to send now."""
        now = []
        for message in messages:
            if message["type"] == "start":
                self._starts.append((message["event_id"], message["started_at"]))
                self._open.add(message["event_id"])
            if message["type"] == "end" and message["event_id"] in self._open:
                self.begin()
                if self._writer_event == message["event_id"]:
                    self.event_ended(message["ended_at"])
                self._held[message["event_id"]] = message
            else:
                now.append(message)
        return now

    def begin(self) -> None:
        """Begin the clips of the starts :meth:`hold` noted (after the runtime sent them)."""
        starts, self._starts = self._starts, []
        for event_id, started_at in starts:
            self.event_started(event_id, started_at)

    def finished_ends(self) -> list[dict[str, Any]]:
        """The held ``end`` messages whose clips were written (or failed) since the last call, each with its
        ``clip`` field."""
        self._results.update(self.take_done())
        ends = []
        for event_id in [e for e in self._held if e in self._results]:
            ends.append({**self._held.pop(event_id), "clip": self._results.pop(event_id)})
            self._open.discard(event_id)
        return ends

    def feed(self, frame: RingFrame) -> None:
        """The camera's next clip frame (:class:`~edge_runtime.clip_frames.ClipFramer`), in time order."""
        self.ring.push(frame)
        if self._writer is None:
            return
        if frame.timestamp > self._stop_at or frame.timestamp - self._clip_start > self.max_s:
            self._finish_writer()
        else:
            self._writer.put(frame)

    def event_started(self, event_id: str, started_at: float) -> None:
        """Begin the clip of ``event_id``: the ring from ``started_at - pre_s`` on, then the frames fed."""
        if self._writer is not None:  # the previous event's post-capture is cut short by the new event
            self._finish_writer()
        first = self.ring.since(started_at - self.pre_s)
        self._open.add(event_id)
        if not first:
            self._done_callback(event_id, clip_missing("no frames in the pre-capture ring"))
            return
        self._clip_start, self._stop_at = first[0].timestamp, float("inf")
        writer = ClipWriter(self.store, event_id, self.codec, self.fps, first, self._done_callback)
        with self._lock:
            self._writers[event_id] = writer
        self._writer, self._writer_event = writer, event_id

    def event_ended(self, ended_at: float) -> None:
        """The event ended at ``ended_at``: the clip takes frames until ``post_s`` later."""
        self._stop_at = ended_at + self.post_s
        if self.post_s == 0:
            self._finish_writer()

    def close(self, timeout: float) -> list[dict[str, Any]]:
        """The source ended or the runtime stops: finish the clip with the frames it has, wait (at most
        ``timeout`` seconds) for every writer; every held ``end``, a clip not written by then said so."""
        self.begin()
        self._finish_writer()
        deadline = time.monotonic() + timeout
        with self._lock:
            writers = list(self._writers.values())
        for writer in writers:
            writer.join(max(0.0, deadline - time.monotonic()))
        ends = self.finished_ends()
        late = clip_missing("not finished when the runtime stopped")
        ends += [{**end, "clip": late} for end in self._held.values()]
        self._held.clear()
        self._open.clear()
        return ends

    def take_done(self) -> list[tuple[str, dict[str, Any]]]:
        """``(event_id, clip field)`` of the clips finished since the last call."""
        with self._lock:
            done, self._done = self._done, []
        return done

    def _finish_writer(self) -> None:
        if self._writer is not None:
            self._writer.finish()
            self._writer, self._writer_event = None, None

    def _done_callback(self, event_id: str, info: dict[str, Any]) -> None:
        with self._lock:
            self._done.append((event_id, info))
            self._writers.pop(event_id, None)
