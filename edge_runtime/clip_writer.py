"""The re-encoding clip writer: one event's clip frames (JPEG, :mod:`edge_runtime.clip_frames`) decoded back to
I420 and encoded with PyAV on the writer's own thread (libx264 in mp4 with its index in front, or VP9 in webm:
both play in a browser), so scoring never waits on encoding. The runtime only hands it frames; one that falls
behind holds at most :data:`WRITER_MAX_BYTES` of them (the rest dropped and counted). It writes a ``.part``
file that :class:`~edge_runtime.clip_store.ClipStore` publishes under its final name once it is complete,
then describes it (size, duration, SHA-256) for the event's ``end`` message.

PyAV is an optional dependency (``pip install i3d-mtn-edge[clips]``): :func:`check_encoder` says what to
install when clips are asked for and it is missing.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from .clip_frames import RingFrame
from .clip_store import ClipStore, clip_info, clip_missing

__all__ = [
    "CONTAINER_OPTIONS", "ENCODERS", "WRITER_MAX_BYTES", "ClipError", "ClipWriter", "QueuedClipWriter",
    "check_encoder",
]  # fmt: skip

log = logging.getLogger(__name__)

# codec setting -> (PyAV encoder, container format, file extension, encoder options)
ENCODERS: dict[str, tuple[str, str, str, dict[str, str]]] = {
    # ultrafast + crf 26: the least CPU per frame; veryfast made 2.6x smaller files for 2.4x the CPU (at
    # 299x224: docs/benchmarks.md, benchmarks/clips.py)
    "h264": ("libx264", "mp4", "mp4", {"preset": "ultrafast", "crf": "26"}),
    "vp9": ("libvpx-vp9", "webm", "webm", {"deadline": "realtime", "cpu-used": "8", "crf": "33", "b": "0"}),
}
CONTAINER_OPTIONS = {"mp4": {"movflags": "+faststart"}}  # the index first: a browser plays while loading
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


class QueuedClipWriter:
    """Writes one event's clip on a daemon thread: :meth:`put` items (clip frames or stream packets: anything
    with ``timestamp`` and ``nbytes``), then :meth:`finish`. A subclass's :meth:`_encode` writes the
    ``.part`` file from :meth:`_take` and publishes it. ``on_done`` gets the clip's ``end``-message
    description (:func:`~edge_runtime.clip_store.clip_info` or :func:`~edge_runtime.clip_store.clip_missing`),
    from the writer thread. At most :data:`WRITER_MAX_BYTES` wait (the rest dropped and counted)."""

    kind = ""  # what the log line calls the items

    def __init__(self, store: ClipStore, event_id: str, extension: str, first: list[Any],
                 on_done: Callable[[str, dict[str, Any]], None]) -> None:  # fmt: skip
        self.store, self.event_id = store, event_id
        self.name = f"{event_id}.{extension}"
        self.dropped = 0
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._queued_bytes = 0
        self._bytes_lock = threading.Lock()
        for item in first:
            self.put(item)
        self._on_done = on_done
        self._thread = threading.Thread(target=self._run, name=f"clip-{event_id[:8]}", daemon=True)
        self._thread.start()

    def put(self, item: Any) -> None:
        with self._bytes_lock:
            if self._queued_bytes + item.nbytes > WRITER_MAX_BYTES:
                self.dropped += 1
                return
            self._queued_bytes += item.nbytes
        self._queue.put(item)

    def finish(self) -> None:
        """No more items: the writer writes what it has, publishes the clip and calls ``on_done``."""
        self._queue.put(None)

    def _take(self) -> Any:
        item = self._queue.get()
        if item is not None:
            with self._bytes_lock:
                self._queued_bytes -= item.nbytes
        return item

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
                f" ({self.dropped} {self.kind} dropped: the writer fell behind)" if self.dropped else "",
            )  # fmt: skip
        self._on_done(self.event_id, info)

    def _encode(self) -> dict[str, Any]:
        raise NotImplementedError


class ClipWriter(QueuedClipWriter):
    """Re-encodes one event's clip frames (:class:`~edge_runtime.clip_frames.RingFrame`) with ``codec``."""

    kind = "frames"

    def __init__(self, store: ClipStore, event_id: str, codec: str, fps: float, first: list[RingFrame],
                 on_done: Callable[[str, dict[str, Any]], None]) -> None:  # fmt: skip
        self.codec = codec
        self.fps = fps if fps > 0 else 30.0
        super().__init__(store, event_id, ENCODERS[codec][2], first, on_done)

    def _encode(self) -> dict[str, Any]:
        import av

        encoder, container_format, _, options = ENCODERS[self.codec]
        part = self.store.part_path(self.name)
        first = self._take()
        if first is None:
            raise RuntimeError("no frames to write")
        count, last_pts, last_ts = 0, -1, first.timestamp
        with av.open(str(part), "w", format=container_format,
                     options=CONTAINER_OPTIONS.get(container_format, {})) as out:  # fmt: skip
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
