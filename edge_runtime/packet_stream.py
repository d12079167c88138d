"""An RTSP H.264 stream's packets, read without decoding, for event clips that copy them.

A :class:`PacketStream` stays connected to a camera's stream on its own thread (PyAV's demuxer over RTSP/TCP,
reconnecting with the capture thread's backoff) and hands out each H.264 packet as a :class:`StreamPacket`:
its bytes, whether it is a key frame, and its time on the wall clock by the stream's own presentation times
(:class:`~edge_runtime.stream_source.StreamClock`, the rule that times the decoded detect stream too, so an
event's time and a packet's time are comparable). Nothing is decoded: a packet costs the demuxer's work only.
The runtime's loop takes the packets (:meth:`PacketStream.take_packets`) into the camera's
:class:`PacketRing`, which keeps the newest seconds of them from a key frame on, so that a clip cut from it
decodes from its first packet. At most :data:`PACKET_BACKLOG_BYTES` wait for the loop (the oldest go first).

A stream that is not H.264 is read once, said so in one warning, and left (its clips are re-encoded).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from fractions import Fraction

from .reader_policy import BackoffPolicy
from .reader_thread import ReaderThread
from .stream_source import RTSP_FFMPEG_OPTIONS, StreamClock
from .urls import redact_url

__all__ = [
    "PACKET_BACKLOG_BYTES",
    "PacketFormat",
    "PacketRing",
    "PacketStats",
    "PacketStream",
    "StreamPacket",
]

log = logging.getLogger(__name__)

PACKET_BACKLOG_BYTES = 8_000_000  # packets waiting for the loop: seconds of a 1080p stream
COPIED_CODECS = ("h264",)


@dataclass(frozen=True)
class PacketFormat:
    """What a muxer needs of one connection's stream (a reconnection makes a new one)."""

    codec: str
    width: int
    height: int
    time_base: Fraction
    extradata: bytes  # the parameter sets of the session description (Annex B), maybe empty
    connection: int


@dataclass(frozen=True)
class StreamPacket:
    """One packet of the stream: ``timestamp`` on the wall clock, ``pts``/``dts`` in ``fmt.time_base``."""

    timestamp: float
    pts: int
    dts: int
    keyframe: bool
    data: bytes
    fmt: PacketFormat

    @property
    def nbytes(self) -> int:
        return len(self.data)


@dataclass
class PacketStats:
    """Counters of one packet stream (a snapshot from :attr:`PacketStream.stats`)."""

    packets: int = 0
    bytes: int = 0
    dropped: int = 0  # taken too late by the loop (the backlog's bound)
    reconnects: int = 0
    codec: str | None = None
    last_error: str | None = None


class PacketRing:
    """The newest ``seconds`` of a camera's packets (by timestamp), always from a key frame on, at most
    ``max_bytes`` of them; one connection's packets only (a new connection empties it)."""

    def __init__(self, seconds: float, max_bytes: int) -> None:
        self.seconds, self.max_bytes = float(seconds), max_bytes
        self._packets: deque[StreamPacket] = deque()
        self._keys: deque[float] = deque()  # the times of the key frames held
        self.nbytes = 0

    def push(self, packet: StreamPacket) -> None:
        if self._packets and packet.fmt is not self._packets[-1].fmt:
            self.clear()
        if not self._packets and not packet.keyframe:
            return  # nothing decodes before the first key frame
        self._packets.append(packet)
        self.nbytes += packet.nbytes
        if packet.keyframe:
            self._keys.append(packet.timestamp)
        # Whole groups of pictures go: the oldest key frame only once the next one is old enough too.
        limit = packet.timestamp - self.seconds
        while len(self._keys) > 1 and (self._keys[1] <= limit or self.nbytes > self.max_bytes):
            self._keys.popleft()
            self.nbytes -= self._packets.popleft().nbytes
            while not self._packets[0].keyframe:
                self.nbytes -= self._packets.popleft().nbytes

    def since(self, start: float) -> list[StreamPacket]:
        """The packets from the last key frame at or before ``start`` (at most one group of pictures before
        it), else from the oldest, to the newest."""
        packets = list(self._packets)
        first = 0
        for i, packet in enumerate(packets):
            if packet.timestamp > start:
                break
            if packet.keyframe:
                first = i
        return packets[first:]

    def clear(self) -> None:
        self._packets.clear()
        self._keys.clear()
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._packets)


class PacketStream(ReaderThread):
    """Reads the packets of ``url`` (an RTSP H.264 stream) on a daemon thread; see the module docstring."""

    def __init__(self, url: str, camera: str, *, reconnect: BackoffPolicy | None = None,
                 open_timeout_s: float = 10.0, read_timeout_s: float = 2.0) -> None:  # fmt: skip
        super().__init__("packets", camera, PacketStats())
        self.url = url
        self.reconnect = reconnect or BackoffPolicy()
        self.open_timeout_s, self.read_timeout_s = open_timeout_s, read_timeout_s
        self._backlog: deque[StreamPacket] = deque()
        self._backlog_bytes = 0
        self._connections = 0

    @property
    def description(self) -> str:
        return f"packets of {redact_url(self.url)}"

    @property
    def stats(self) -> PacketStats:
        return super().stats

    def take_packets(self) -> list[StreamPacket]:
        """The packets read since the last call, oldest first."""
        with self._lock:
            packets = list(self._backlog)
            self._backlog.clear()
            self._backlog_bytes = 0
        return packets

    # -- reader side ---------------------------------------------------------------------------------------
    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                if self._read_connection():
                    return  # not a stream whose packets can be copied
                attempt = 0
            except Exception as exc:  # noqa: BLE001 - av.error.* and OSError: the stream is down, retried
                with self._lock:
                    self._stats.last_error = (
                        str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
                    )
            if self._stop.is_set():
                return
            delay = self.reconnect.delay(attempt)
            attempt += 1
            log.warning("%s: %s: %s; retrying in %.1f s", self.camera, self.description,
                        self._stats.last_error or "the stream ended", delay)  # fmt: skip
            self._stop.wait(delay)

    def _read_connection(self) -> bool:
        """Read one connection until it fails; True when the stream's codec cannot be copied."""
        import av

        options = dict(item.split(";", 1) for item in RTSP_FFMPEG_OPTIONS.split("|"))
        opened_at = time.time()
        with av.open(
            self.url, options=options, timeout=(self.open_timeout_s, self.read_timeout_s)
        ) as container:
            stream = container.streams.video[0]
            codec = stream.codec_context.name
            with self._lock:
                self._stats.codec = codec
                if self._connections:
                    self._stats.reconnects += 1
            self._connections += 1
            if codec not in COPIED_CODECS:
                log.warning("%s: %s: the stream is %s, not H.264: its clips are re-encoded", self.camera,
                            self.description, codec)  # fmt: skip
                return True
            log.info("%s: %s opened (%s)", self.camera, self.description, codec)
            fmt = PacketFormat(codec, stream.codec_context.width, stream.codec_context.height,
                               stream.time_base, bytes(stream.codec_context.extradata or b""),
                               self._connections)  # fmt: skip
            clock = StreamClock(opened_at)
            for packet in container.demux(stream):
                if self._stop.is_set():
                    return False
                if packet.size == 0 or packet.dts is None:
                    continue
                pts = packet.pts if packet.pts is not None else packet.dts
                ts = clock.stamp(float(pts * fmt.time_base), time.time())
                self._keep(StreamPacket(ts, pts, packet.dts, packet.is_keyframe, bytes(packet), fmt))
        return False

    def _keep(self, packet: StreamPacket) -> None:
        with self._lock:
            self._backlog.append(packet)
            self._backlog_bytes += packet.nbytes
            self._stats.packets += 1
            self._stats.bytes += packet.nbytes
            while self._backlog_bytes > PACKET_BACKLOG_BYTES and len(self._backlog) > 1:
                self._backlog_bytes -= self._backlog.popleft().nbytes
                self._stats.dropped += 1
