"""Event clips: a pre-capture ring per camera and the writer of each event's clip (pre + event + post).

Each camera's clip frames (:mod:`edge_runtime.clip_frames`: at the clip's size and rate, JPEG, made by the
thread that decoded them from the frame as decoded, or from the camera's record stream) go through
:meth:`CameraClips.feed`: a :class:`FrameRing` keeps them for ``ring_s`` seconds, and never more than
:data:`RING_MAX_BYTES`. When an event starts, the ring's frames from ``started_at - pre_s`` on (the first one
at most one frame from that time) go to a :class:`~edge_runtime.clip_writer.ClipWriter` (re-encoding, on its
own thread), and every frame after them until ``post_s`` seconds after the event's end, or until the clip is
``max_s`` long. The ``end`` message is held back until the writer has published the clip.

A camera whose H.264 packets are copied (:mod:`edge_runtime.clip_sources`) feeds them through
:meth:`CameraClips.feed_packet` into a :class:`~edge_runtime.packet_stream.PacketRing`; while they are the
camera's clip source (:meth:`CameraClips.use`), a clip begins at the ring's last key frame at or before
``started_at - pre_s`` (at most one group of pictures before it: a copied clip can only begin at a key
frame) and goes to a :class:`~edge_runtime.clip_packets.PacketClipWriter`, which muxes without decoding.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

from .clip_frames import RingFrame
from .clip_packets import PacketClipWriter
from .clip_store import ClipStore, clip_missing
from .clip_writer import ClipWriter, QueuedClipWriter
from .packet_stream import PacketRing, StreamPacket
from .sources import FrameSource

__all__ = ["PACKET_RING_MAX_BYTES", "RING_MAX_BYTES", "CameraClips", "FrameRing", "ring_seconds"]

log = logging.getLogger(__name__)

# Per camera: the ring's default (15 fps, 480 rows, ~6 s) holds 5-8 MB; the bound only binds on a long pre_s
# or a noisy scene, letting the oldest frames go (one warning).
RING_MAX_BYTES = 16_000_000
# The packet ring: the same seconds plus up to one group of pictures of the camera's own stream (1080p at
# 4 Mbit/s: about 4 MB); the bound lets the oldest groups go.
PACKET_RING_MAX_BYTES = 32_000_000


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
        self.packets = PacketRing(
            ring_s, PACKET_RING_MAX_BYTES
        )  # fed only when the camera's packets are copied
        self.source = "frames"  # a new clip's source: "packets" (copied), else frames (re-encoded)
        self._writer: QueuedClipWriter | None = None
        self._writer_copies = False
        self._clip_start = 0.0
        self._stop_at = float("inf")  # the active clip's last frame time
        self._done: list[tuple[str, dict[str, Any]]] = []
        self._writers: dict[str, QueuedClipWriter] = {}
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
        self._to_writer(frame, copied=False)

    def feed_packet(self, packet: StreamPacket) -> None:
        """The camera's next H.264 packet (:class:`~edge_runtime.packet_stream.PacketStream`), in order."""
        self.packets.push(packet)
        self._to_writer(packet, copied=True)

    def _to_writer(self, item: RingFrame | StreamPacket, copied: bool) -> None:
        if self._writer is None or self._writer_copies != copied:
            return
        if item.timestamp > self._stop_at or item.timestamp - self._clip_start > self.max_s:
            self._finish_writer()
        else:
            self._writer.put(item)

    def use(self, source: str) -> None:
        """Make new clips of ``source`` (``"packets"``: copied; another name: the frames fed, re-encoded;
        :mod:`edge_runtime.clip_sources`). A clip being written ends with what it has, and the frame ring
        starts again: frames of another stream (another size, another clock) never join a clip's."""
        if source == self.source:
            return
        self._finish_writer()
        self.ring.clear()
        self.source = source

    def event_started(self, event_id: str, started_at: float) -> None:
        """Begin the clip of ``event_id``: the ring from ``started_at - pre_s`` on, then the frames fed."""
        if self._writer is not None:  # the previous event's post-capture is cut short by the new event
            self._finish_writer()
        copied = self.source == "packets"
        first = (self.packets if copied else self.ring).since(started_at - self.pre_s)
        self._open.add(event_id)
        if not first:
            what = "packets" if copied else "frames"
            self._done_callback(event_id, clip_missing(f"no {what} in the pre-capture ring"))
            return
        self._clip_start, self._stop_at = first[0].timestamp, float("inf")
        writer: QueuedClipWriter
        if copied:
            writer = PacketClipWriter(self.store, event_id, first, self._done_callback)
        else:
            writer = ClipWriter(self.store, event_id, self.codec, self.fps, first, self._done_callback)
        with self._lock:
            self._writers[event_id] = writer
        self._writer, self._writer_event, self._writer_copies = writer, event_id, copied

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
