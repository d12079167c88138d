"""Where a camera's event clips come from, and the fallback from one source to the next.

``[clips] mode`` chooses how clips are made (:func:`packet_url`):

- ``auto``: copied from the H.264 packets of the camera's RTSP record stream when it has one, else of its
  detect stream when that is RTSP H.264 (:mod:`edge_runtime.packet_stream`, :mod:`edge_runtime.clip_packets`:
  no decoding, no encoding), else re-encoded from frames;
- ``copy``: the same, but a camera with no RTSP H.264 stream is refused at start, by name;
- ``reencode``: re-encoded from frames (:mod:`edge_runtime.clip_writer`).

The frames of a re-encoded clip are the record stream's (when it is live) else the detect stream's. The
sources make a chain, best first: copied packets, record-stream frames, detect-stream frames.
:class:`ClipSources` uses the first one that is up: a source that delivered nothing for
:data:`DOWN_AFTER_S` is down, and clips fall back to the next one (one warning, ``clips.fallbacks`` in the
runtime's stats); a source that went down is used again once it has delivered for :data:`UP_AFTER_S`
without a gap (the first time, at its first delivery). Only the source in use makes clip frames (their
resize and JPEG cost CPU): a fallback's pre-capture ring fills from the moment it is used, so a clip that
begins within ``pre_s`` of a fallback has less pre-capture. The packets are always read (they cost the
demuxer's work only): a source back after an outage has its full ring. A clip keeps its source: one whose
source falls back ends there.
"""

from __future__ import annotations

import logging
from typing import Any

from .clip_frames import ClipFramer
from .clip_writer import ClipError
from .packet_stream import PacketStream
from .record import RecordStream
from .sources import FrameSource
from .stream_source import StreamSource
from .urls import redact_url, url_scheme

__all__ = ["DOWN_AFTER_S", "UP_AFTER_S", "ClipModeError", "ClipSources", "SourceHealth", "packet_url"]

log = logging.getLogger(__name__)

DOWN_AFTER_S = 2.0  # a source that delivered nothing for this long is down
UP_AFTER_S = 3.0  # a source that went down is used again after delivering this long
_RTSP = ("rtsp", "rtsps")


class ClipModeError(ClipError):
    """``[clips] mode = "copy"`` for a camera whose packets cannot be copied (one line naming it)."""


def packet_url(camera: str, source: FrameSource, mode: str) -> str | None:
    """The URL whose H.264 packets ``camera``'s clips copy under ``mode``: its RTSP record stream, else its
    RTSP detect stream (an H.264 one: the camera's ``codec``); None when clips are re-encoded. Raises
    :class:`ClipModeError` for ``copy`` without such a stream."""
    if mode == "reencode":
        return None
    for stream in (source.record, source):
        if isinstance(stream, StreamSource) and url_scheme(stream.url) in _RTSP and stream.codec == "h264":
            return stream.url
    if mode == "copy":
        what = redact_url(source.url) if isinstance(source, StreamSource) else source.description
        raise ClipModeError(
            f'camera {camera}: [clips] mode = "copy" needs an RTSP H.264 stream (detect or record), '
            f'and its source is {what}: use mode = "auto" or "reencode"'
        )
    return None


class SourceHealth:
    """Whether one clip source is up, from when it delivered (times: ``time.monotonic`` seconds)."""

    def __init__(self) -> None:
        self.up = False
        self.was_up = False
        self._last = -float("inf")  # the last delivery
        self._since = 0.0  # the start of the deliveries without a gap

    def update(self, delivered: bool, now: float) -> bool:
        """Note whether the source delivered since the last call; whether it is up now."""
        if delivered:
            if now - self._last > DOWN_AFTER_S:
                self._since = now
            self._last = now
            if not self.up and (not self.was_up or now - self._since >= UP_AFTER_S):
                self.up = self.was_up = True
        elif self.up and now - self._last > DOWN_AFTER_S:
            self.up = False
        return self.up


class ClipSources:
    """One camera's chain of clip sources (used from the runtime's loop thread); feeds ``clips``."""

    def __init__(self, camera: str, clips: Any, *, packets: PacketStream | None = None,
                 record: RecordStream | None = None, record_framer: ClipFramer | None = None,
                 detect_framer: ClipFramer | None = None) -> None:  # fmt: skip
        self.camera, self.clips = camera, clips
        self.packets, self.record = packets, record
        self.framers = {"record": record_framer, "detect": detect_framer}
        self.chain = [k for k, present in (("packets", packets), ("record", record_framer),
                                           ("detect", detect_framer)) if present is not None]  # fmt: skip
        self.health = {kind: SourceHealth() for kind in self.chain}
        self.active: str | None = None
        self.fallbacks = 0
        self._record_frames = 0

    def poll(self, detect_clip: Any, now: float) -> None:
        """Feed the clips what the sources delivered since the last call (``detect_clip``: the detect frame's
        clip frame, or None); switch to the best source that is up."""
        delivered = {"detect": True}  # the loop polls once per detect frame: it delivers
        if self.packets is not None:
            packets = self.packets.take_packets()
            for packet in packets:
                self.clips.feed_packet(packet)
            delivered["packets"] = bool(packets)
        record_frames = []
        if self.record is not None:
            grabbed = self.record.stats.frames
            delivered["record"], self._record_frames = grabbed > self._record_frames, grabbed
            record_frames = self.record.take_clip_frames()
        best = next((k for k in self.chain if self.health[k].update(delivered.get(k, False), now)), None)
        if best != self.active:
            self._switch(best)
        frames = (
            record_frames if self.active == "record" else [detect_clip] if self.active == "detect" else []
        )
        for frame in frames:
            if frame is not None:
                self.clips.feed(frame)

    def _switch(self, best: str | None) -> None:
        old = self.active
        if old is not None and (best is None or self.chain.index(best) > self.chain.index(old)):
            self.fallbacks += 1
            log.warning("%s: clips: the %s delivered nothing for %.0f s: clips from %s until it is back",
                        self.camera, _NAMES[old], DOWN_AFTER_S, _NAMES.get(best, "nothing"))  # fmt: skip
        elif old is not None or best == "packets":
            log.info("%s: clips from %s", self.camera, _NAMES.get(best, "nothing"))
        self.active = best
        for kind, framer in self.framers.items():
            if framer is not None:
                framer.enabled = kind == best
        self.clips.use(best or "nothing")


_NAMES = {
    "packets": "copied packets of the RTSP stream",
    "record": "record stream's frames (re-encoded)",
    "detect": "detect stream's frames (re-encoded)",
}
