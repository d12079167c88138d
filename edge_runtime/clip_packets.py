"""Event clips copied from the camera's H.264 packets: muxed into an mp4, never decoded nor encoded.

A :class:`PacketClipWriter` takes the packets of one event (the camera's :class:`~edge_runtime.packet_stream.
PacketRing` from the key frame at or before ``started_at - pre_s``, then each packet until ``post_s`` after
the event's end) and muxes them with PyAV into an mp4 whose index is in front (a browser plays it as it
loads), on its own thread. The picture is the camera's own (its size, its rate, its bit rate): ``[clips]
max_height``, ``fps`` and ``codec`` apply to re-encoded clips only. Times are the packets' own presentation
times, rebased to the clip's first packet. A first key frame without its parameter sets in band gets the
session description's (``extradata``) in front, so the clip decodes by itself. The file is published
atomically by the :class:`~edge_runtime.clip_store.ClipStore` and described with the same fields as a
re-encoded clip.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .clip_store import ClipStore, clip_info
from .clip_writer import CONTAINER_OPTIONS, QueuedClipWriter
from .packet_stream import StreamPacket

__all__ = ["PacketClipWriter"]

_ANNEX_B = (b"\x00\x00\x01", b"\x00\x00\x00\x01")
_SPS = 7  # H.264 NAL unit type of a sequence parameter set


def _has_sps(data: bytes) -> bool:
    """Whether an Annex B H.264 packet carries a sequence parameter set."""
    i = data.find(b"\x00\x00\x01")
    while i >= 0 and i + 3 < len(data):
        if data[i + 3] & 0x1F == _SPS:
            return True
        i = data.find(b"\x00\x00\x01", i + 3)
    return False


class PacketClipWriter(QueuedClipWriter):
    """Muxes one event's :class:`~edge_runtime.packet_stream.StreamPacket` s into ``EVENT_ID.mp4``."""

    kind = "packets"

    def __init__(self, store: ClipStore, event_id: str, first: list[StreamPacket],
                 on_done: Callable[[str, dict[str, Any]], None]) -> None:  # fmt: skip
        super().__init__(store, event_id, "mp4", first, on_done)

    def _encode(self) -> dict[str, Any]:
        import av

        first: StreamPacket | None = self._take()
        if first is None:
            raise RuntimeError("no packets to write")
        fmt, tb = first.fmt, first.fmt.time_base
        count, last, last_dts, frame_s = 0, first, -1, 0.0
        with av.open(str(self.store.part_path(self.name)), "w", format="mp4",
                     options=CONTAINER_OPTIONS["mp4"]) as out:  # fmt: skip
            stream = out.add_mux_stream(fmt.codec, width=fmt.width, height=fmt.height)
            stream.time_base = tb
            packet: StreamPacket | None = first
            while packet is not None:
                if (
                    packet.fmt is fmt and packet.dts > last_dts
                ):  # another connection's packets: not this clip's
                    data = packet.data
                    if count == 0 and fmt.extradata.startswith(_ANNEX_B) and not _has_sps(data):
                        data = fmt.extradata + data
                    out_packet = av.Packet(data)
                    out_packet.pts, out_packet.dts = packet.pts - first.dts, packet.dts - first.dts
                    out_packet.time_base, out_packet.stream = tb, stream
                    out_packet.is_keyframe = packet.keyframe
                    out.mux(out_packet)
                    if count:
                        frame_s = float((packet.dts - last.dts) * tb)
                    count, last, last_dts = count + 1, packet, packet.dts
                packet = self._take()
        final = self.store.publish(self.name)
        duration = last.timestamp - first.timestamp + frame_s  # the last frame is shown one frame long
        info = clip_info(final, duration_s=duration, frames=count, width=fmt.width, height=fmt.height,
                         started_at=first.timestamp, codec=fmt.codec)  # fmt: skip
        self.store.enforce(protect=self.name)
        return info
