"""One camera's pipeline in the runtime: its capture thread, record stream, snippet window, event machine and
event clips, and where each of its pictures comes from.

The detect stream's capture thread resamples to the contract's frame rate and shrinks each frame the model
takes to its input size as it decodes it. The
pictures people look at come from larger frames: the event snapshot is the record stream's frame nearest in
time to the snippet's last frame (within ``RECORD_ALIGN_S``), else the detect frame as decoded. Event clip
frames (:class:`~edge_runtime.clip_frames.ClipFramer`, at ``[clips] max_height`` and ``fps``) are made by the
record stream's thread when the camera has a live record stream (a file played as fast as possible is read at
its own pace, which the detect stream's does not follow: its clips come from the detect stream), else by the
capture thread from the frame as decoded, before the shrink. With ``[clips] mode`` ``auto`` or ``copy`` and an
RTSP H.264 stream, the clips copy its packets instead (:mod:`edge_runtime.clip_sources`: the chain copied
packets -> record-stream frames -> detect-stream frames, falling back when a source stops delivering).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .bundle import Bundle
from .capture import CaptureThread, Frame
from .clip_frames import ClipFramer
from .clip_sources import ClipSources, packet_url
from .clips import CameraClips
from .events import EventStateMachine
from .packet_stream import PacketStream
from .preprocess import resize_frame
from .record import RecordStream
from .sources import FrameSource
from .window import SnippetPoses, SnippetWindow

__all__ = ["RECORD_ALIGN_S", "Camera"]

RECORD_ALIGN_S = 1.0  # a record frame further in time from the detect frame is not its picture


class Camera:
    """One camera's pipeline state (used from the runtime's loop thread)."""

    def __init__(self, name: str, source: FrameSource, bundle: Bundle, machine: EventStateMachine,
                 max_queue: int, clips: CameraClips | None = None, clip_settings: Any = None,
                 pose_model: Callable[[np.ndarray], np.ndarray] | None = None) -> None:  # fmt: skip
        self.name = name
        self.clips = clips
        live_record = clips is not None and source.record is not None and source.live
        detect_framer = ClipFramer(clip_settings.max_height, clip_settings.fps) if clips is not None else None
        record_framer = ClipFramer(clip_settings.max_height, clip_settings.fps) if live_record else None
        # Frames are made as small as the model needs in the capture thread: the queue holds small frames.
        shrink = functools.partial(resize_frame, cfg=bundle.preprocess)
        self.capture = CaptureThread(
            source, name, max_queue=max_queue, shrink=shrink, clip_frame=detect_framer,
            frame_rate=bundle.preprocess.frame_rate,
        )  # fmt: skip
        self.record = (
            RecordStream(source.record, name, clip_frame=record_framer) if source.record is not None else None
        )
        url = packet_url(name, source, clip_settings.mode) if clips is not None else None
        self.packets = PacketStream(url, name) if url is not None and source.live else None
        self.clip_sources = (
            ClipSources(
                name,
                clips,
                packets=self.packets,
                record=self.record,
                record_framer=record_framer,
                detect_framer=detect_framer,
            )
            if clips is not None
            else None
        )
        self.record_offset_ms: float | None = None  # record frame time - detect frame time, last snapshot
        w, pose = bundle.window, bundle.pose_forest
        # with a pose forest, the pose model (shared by the cameras: the loop runs them one at a time)
        poses = SnippetPoses(pose_model, pose.every, w.snippet_length) if pose and pose_model else None
        self.window = SnippetWindow(
            bundle.preprocess, w.snippet_length, w.frame_stride, bundle.motion_crops, poses
        )
        self.machine = machine
        self.segment = 0
        self.last_ts = 0.0
        self.done = False  # source ended and its events are closed
        self.snap_at = -float("inf")  # monotonic time of the last snapshot
        self.snap_peak = -float("inf")
        self.full_frame: np.ndarray | None = None  # full-size image of the ready snippet's last frame

    def feed_clips(self, frame: Frame) -> None:
        """Hand the clips what their sources delivered since the last call (:class:`ClipSources`)."""
        if self.clip_sources is not None:
            self.clip_sources.poll(frame.clip, time.monotonic())

    def start_readers(self) -> None:
        """Start the record stream's and the packet stream's threads (the capture thread starts apart)."""
        for reader in (self.record, self.packets):
            if reader is not None:
                reader.start()

    def stop_readers(self) -> None:
        for reader in (self.record, self.packets):
            if reader is not None:
                reader.stop()

    def join_readers(self, deadline: float) -> None:
        """Wait for the readers until ``deadline`` (monotonic): one left inside FFmpeg at exit aborts."""
        for reader in (self.record, self.packets):
            if reader is not None:
                reader.join(max(0.0, deadline - time.monotonic()))

    def hold_ends(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The messages to send now: an ``end`` waits for its clip (:meth:`CameraClips.hold`)."""
        return messages if self.clips is None else self.clips.hold(messages)

    def picture(self, frame: Frame) -> np.ndarray | None:
        """The snapshot's picture of ``frame``: the record stream's frame nearest in time (within
        ``RECORD_ALIGN_S``), else the frame at full size, else (the reader lagged) the newest full one."""
        near = self.record.frame_near(frame.timestamp) if self.record is not None else None
        if near is not None and abs(near[0] - frame.timestamp) <= RECORD_ALIGN_S:
            self.record_offset_ms = round(1000 * (near[0] - frame.timestamp), 1)
            return near[1]
        return frame.full if frame.full is not None else self.capture.newest_full()
