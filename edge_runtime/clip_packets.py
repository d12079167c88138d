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
        fmt = first.fmt
        kept = [first]  # the packets muxed; each is muxed once the next one gives its duration
        with av.open(str(self.store.part_path(self.name)), "w", format="mp4",
                     options=CONTAINER_OPTIONS["mp4"]) as out:  # fmt: skip
            stream = out.add_mux_stream(fmt.codec, width=fmt.width, height=fmt.height)
            stream.time_base = fmt.time_base
            packet = self._take()
            while packet is not None:
                if packet.fmt is fmt and packet.dts > kept[-1].dts:  # another connection's: not this clip's
                    out.mux(self._packet(kept[-1], first, packet.dts - kept[-1].dts, stream, len(kept) == 1))
                    kept.append(packet)
                packet = self._take()
            # the last frame lasts as long as the one before it: a sample of no duration is not shown
            last_duration = kept[-1].dts - kept[-2].dts if len(kept) > 1 else round(1 / (30 * fmt.time_base))
            out.mux(self._packet(kept[-1], first, last_duration, stream, len(kept) == 1))
        final = self.store.publish(self.name)
        # what the file plays: its presentation times (stamps may step once, when a session's anchor settles)
        duration = float((kept[-1].dts - first.dts + last_duration) * fmt.time_base)
        info = clip_info(final, duration_s=duration, frames=len(kept), width=fmt.width, height=fmt.height,
                         started_at=first.timestamp, codec=fmt.codec)  # fmt: skip
        self.store.enforce(protect=self.name)
        return info

    @staticmethod
    def _packet(packet: StreamPacket, first: StreamPacket, duration: int, stream: Any, is_first: bool) -> Any:
        """The muxer's packet of ``packet``, its times rebased to the clip's ``first``; the first gets the
        session description's parameter sets in front when it has none in band."""
        import av

        data = packet.data
        if is_first and packet.fmt.extradata.startswith(_ANNEX_B) and not _has_sps(data):
            data = packet.fmt.extradata + data
        out = av.Packet(data)
        out.pts, out.dts, out.duration = packet.pts - first.dts, packet.dts - first.dts, duration
        out.time_base, out.stream, out.is_keyframe = packet.fmt.time_base, stream, packet.keyframe
        return out
