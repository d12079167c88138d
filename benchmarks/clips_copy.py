"""The cost of event clips copied from a camera's H.264 packets (``[clips] mode = "copy"``), for
:mod:`benchmarks.clips`.

The source frames are encoded once into an H.264 mp4 at 30 fps (GStreamer's x264enc, its default 2 Mbit/s, a
key frame every second) and served by the real RTSP server (tests/rtsp_server.py, another process, at the
stream's own pace). In this process, as the runtime does: a :class:`~edge_runtime.packet_stream.PacketStream`
demuxes the packets (no decoding) and the loop feeds them to the camera's packet ring; then one event is
recorded (pre 3 s, 5 s of event, post 2 s) by a :class:`~edge_runtime.clip_packets.PacketClipWriter`. The CPU
of this process over each phase, as the share of one core: "always" while the ring fills, "while recording"
from the start to the clip's end. Also the clip's bytes per second and how long the ``start`` message waits.
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

__all__ = ["copy_cost"]

FPS = 30
EVENT_S, PRE_S, POST_S = 5.0, 3.0, 2.0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _pump(packets: Any, clips: Any, until: float) -> float:
    """Feed the stream's packets to ``clips`` until their time reaches ``until``; the newest packet's time."""
    newest = 0.0
    while newest < until:
        for packet in packets.take_packets():
            clips.feed_packet(packet)
            newest = packet.timestamp
        time.sleep(0.01)
    return newest


def copy_cost(frames: list[np.ndarray], size: tuple[int, int], ring_s: float) -> dict[str, float]:
    """Serve ``frames`` at ``size`` (w, h) as an RTSP H.264 camera and record one copied clip of it."""
    from edge_runtime.clip_store import ClipStore
    from edge_runtime.clips import CameraClips
    from edge_runtime.packet_stream import PacketStream
    from tests.rtsp_helpers import RtspServer, encode_h264_frames

    seconds = ring_s + EVENT_S + POST_S + 3.0
    n = int(seconds * FPS)
    with tempfile.TemporaryDirectory() as tmp:
        source = (
            frames[i % len(frames)] if frames[0].shape[1::-1] == size else
            cv2.resize(frames[i % len(frames)], size, interpolation=cv2.INTER_AREA)
            for i in range(n)
        )  # fmt: skip
        video = encode_h264_frames(Path(tmp) / "camera.mp4", source, size=f"{size[0]}x{size[1]}", fps=FPS)
        store = ClipStore(Path(tmp) / "clips", budget_bytes=10**10, max_age_s=86400)
        clips = CameraClips("bench", store, pre_s=PRE_S, post_s=POST_S, max_s=600.0, ring_s=ring_s,
                            codec="h264", fps=FPS)  # fmt: skip
        clips.use("packets")
        with RtspServer({"/cam": video}) as server:
            packets = PacketStream(server.url("/cam"), "bench").start()
            try:
                first = _pump(packets, clips, 1.0)  # connected: its first packets (wall-clock times)
                wall, cpu = time.perf_counter(), _cpu()
                newest = _pump(packets, clips, first + ring_s + 0.5)
                always = (_cpu() - cpu) / (time.perf_counter() - wall) * 100
                wall, cpu = time.perf_counter(), _cpu()
                start = {"type": "start", "event_id": "bench-copy", "started_at": newest}
                assert clips.hold([start]) == [start]
                held_s = time.perf_counter() - wall
                clips.begin()  # after the start is sent
                begin_s = time.perf_counter() - wall - held_s
                ended = _pump(packets, clips, newest + EVENT_S)
                clips.hold([{"type": "end", "event_id": "bench-copy", "ended_at": ended}])
                _pump(packets, clips, ended + POST_S + 0.1)
                (end,) = clips.close(timeout=60)
                recording = (_cpu() - cpu) / (time.perf_counter() - wall) * 100
            finally:
                packets.stop()
                packets.join(5)
    clip = end["clip"]
    assert clip["exists"], clip
    return {
        "always_pct": always, "recording_pct": recording, "clip_kbps": clip["size_bytes"] / clip["duration_s"] / 1e3,
        "held_us": held_s * 1e6, "begin_ms": begin_s * 1e3,
        "frames": clip["frames"], "duration_s": clip["duration_s"], "ring_mb": clips.packets.nbytes / 1e6,
    }  # fmt: skip
