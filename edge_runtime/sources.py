"""Frame sources behind one interface: V4L2 cameras, GStreamer pipelines and video files (network streams:
:mod:`edge_runtime.stream_source`; the command line's ``[NAME=]SOURCE`` form: :mod:`edge_runtime.source_specs`).

A :class:`FrameSource` opens, reads one BGR uint8 frame at a time and releases; :class:`~edge_runtime.capture.
CaptureThread` runs it in the background, reconnects it and keeps its queue bounded. Live sources (cameras,
streams, a file played in real time) may drop old frames; a file played as fast as possible never does, so its
scores are deterministic.
"""

from __future__ import annotations

import logging
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np

from .resample import file_fps
from .stream_decoders import opencv_has_gstreamer
from .urls import mask_passwords
from .video import VideoReadError, iter_grabbed, probe_video

__all__ = [
    "CameraSource",
    "FileSource",
    "FrameSource",
    "GStreamerSource",
    "OpenCVSource",
    "SourceEnded",
    "SourceError",
    "SourceSpecError",
]

log = logging.getLogger(__name__)


class SourceError(RuntimeError):
    """A source that cannot be opened or read; the message is one line and names the source."""


class SourceSpecError(SourceError, ValueError):
    """A bad ``[NAME=]SOURCE`` specification (a usage error)."""


class SourceEnded(Exception):  # noqa: N818 - an end-of-stream signal, not an error
    """The source has no more frames (the end of a file that does not loop)."""


class FrameSource(ABC):
    """Where frames come from. Not thread-safe: one :class:`CaptureThread` drives one source."""

    kind: ClassVar[str] = ""  # "camera" | "stream" | "gstreamer" | "file"
    record: FrameSource | None = (
        None  # the camera's record stream when this is its detect stream (see record.py)
    )

    @property
    @abstractmethod
    def description(self) -> str:
        """What this source is, for messages and logs (no credentials)."""

    @property
    def live(self) -> bool:
        """True when frames arrive on their own clock (keep the newest, drop old ones); False for a file."""
        return True

    @property
    def waits_at_start(self) -> bool:
        """True when a failed first open is retried in the background instead of stopping the runtime: a
        network camera may boot after the device (a power cut) while the other cameras already run."""
        return False

    @abstractmethod
    def open(self) -> None:
        """Open (or reopen) the source; raise :class:`SourceError` with a one-line reason."""

    @abstractmethod
    def read(self) -> np.ndarray | None:
        """The next frame (BGR uint8 ``(h, w, 3)``); None or an empty array for an empty frame.

        Raises :class:`SourceError` when the read fails (the source needs reopening) and
        :class:`SourceEnded` when there are no more frames.
        """

    @abstractmethod
    def release(self) -> None:
        """Close the source; :meth:`open` may be called again."""

    def timestamp(self) -> float:
        """Capture time of the frame :meth:`read` (or :meth:`grab`) just returned, seconds since the epoch."""
        return time.time()

    def grab(self) -> None:
        """Take the next frame without converting it to BGR yet (:meth:`retrieve` does); raises as :meth:`read`.
        A record stream grabs every frame, to stay connected and timed, and retrieves a few."""
        self._grabbed = self.read()

    def retrieve(self) -> np.ndarray | None:
        """The frame :meth:`grab` took, as :meth:`read` would have returned it."""
        return getattr(self, "_grabbed", None)


class OpenCVSource(FrameSource):
    """A source read through ``cv2.VideoCapture``."""

    def __init__(self) -> None:
        self._cap: cv2.VideoCapture | None = None

    @abstractmethod
    def _capture(self) -> cv2.VideoCapture:
        """A new ``cv2.VideoCapture`` for this source (may be unopened)."""

    def _open_error(self) -> str:
        return f"cannot open {self.description}: OpenCV could not open it"

    def open(self) -> None:
        self.release()
        try:
            cap = self._capture()
        except cv2.error as exc:
            raise SourceError(
                f"{self._open_error()} ({mask_passwords(str(exc).strip().splitlines()[-1])})"
            ) from None
        if not cap.isOpened():
            cap.release()
            raise SourceError(self._open_error())
        self._cap = cap

    def read(self) -> np.ndarray | None:
        self.grab()
        return self.retrieve()

    def grab(self) -> None:
        if self._cap is None:
            raise SourceError(f"{self.description} is not open")
        if not self._cap.grab():
            raise SourceError(f"{self.description}: read failed (disconnected or stalled)")
        self._grabbed_one()

    def _grabbed_one(self) -> None:
        """Called after each good grab (a stream times its frame here)."""

    def retrieve(self) -> np.ndarray | None:
        if self._cap is None:
            raise SourceError(f"{self.description} is not open")
        ok, frame = self._cap.retrieve()
        return frame if ok else None

    def release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class CameraSource(OpenCVSource):
    """A V4L2 camera by index (``/dev/video<index>``) or device path (e.g. ``/dev/v4l/by-id/...``)."""

    kind = "camera"

    def __init__(self, index: int | str, *, width: int | None = None, height: int | None = None,
                 fps: float | None = None) -> None:  # fmt: skip
        super().__init__()
        self.index = index
        self.device = f"/dev/video{index}" if isinstance(index, int) else str(index)
        self.requested = {
            cv2.CAP_PROP_FRAME_WIDTH: width,
            cv2.CAP_PROP_FRAME_HEIGHT: height,
            cv2.CAP_PROP_FPS: fps,
        }

    @property
    def description(self) -> str:
        return (
            f"camera {self.index} ({self.device})" if isinstance(self.index, int) else f"camera {self.device}"
        )

    def _open_error(self) -> str:
        if sys.platform.startswith("linux") and not Path(self.device).exists():
            return f"cannot open {self.description}: no such device (is the camera plugged in?)"
        return f"cannot open {self.description}: OpenCV could not open it (in use by another program, or not a capture device)"

    def _capture(self) -> cv2.VideoCapture:
        if sys.platform.startswith("linux") and hasattr(cv2, "CAP_V4L2"):
            cap = cv2.VideoCapture(self.index, cv2.CAP_V4L2)
        else:
            cap = cv2.VideoCapture(self.index)
        for prop, value in self.requested.items():
            if value is not None:
                cap.set(prop, float(value))
        return cap


class GStreamerSource(OpenCVSource):
    """A GStreamer pipeline ending in ``appsink`` (e.g. ``nvarguscamerasrc ! ... ! appsink`` on a Jetson)."""

    kind = "gstreamer"

    def __init__(self, pipeline: str) -> None:
        super().__init__()
        if "appsink" not in pipeline:
            raise SourceSpecError(
                f"GStreamer pipeline {pipeline!r} must end in 'appsink' so OpenCV can read it"
            )
        self.pipeline = pipeline

    @property
    def description(self) -> str:
        return f"GStreamer pipeline '{self.pipeline}'"

    def open(self) -> None:
        if not opencv_has_gstreamer():
            raise SourceError(
                f"cannot open {self.description}: this OpenCV ({cv2.__version__}) was built without GStreamer; "
                "install an OpenCV built with it (on a Jetson, JetPack's python3-opencv) or give a camera "
                "index, a /dev/video path or a stream URL instead"
            )
        super().open()

    def _capture(self) -> cv2.VideoCapture:
        return cv2.VideoCapture(self.pipeline, cv2.CAP_GSTREAMER)


class FileSource(FrameSource):
    """A video file, played as fast as possible (default: never drops, deterministic) or at its own fps.

    Timestamps are the open time plus the frame's position in the video (``n / fps``), so they are evenly
    spaced whatever the decoding speed. With ``loop`` the video restarts at its end and never ends.
    :meth:`grab` decodes a frame and :meth:`retrieve` converts it to BGR, as a stream's do.
    """

    kind = "file"

    def __init__(self, path: str | Path, *, realtime: bool = False, loop: bool = False) -> None:
        self.path = Path(path)
        self.realtime, self.loop = realtime, loop
        self.fps = 0.0
        self._frames: Iterator[Callable[[], np.ndarray | None]] | None = None  # decoded, not yet converted
        self._retrieve: Callable[[], np.ndarray | None] = lambda: None  # the frame grab() took
        self._served = 0  # frames returned since open (across loops)
        self._t0_wall = 0.0
        self._t0_mono = 0.0

    @property
    def description(self) -> str:
        return f"video file {self.path}"

    @property
    def live(self) -> bool:
        return self.realtime

    def open(self) -> None:
        try:
            info = probe_video(self.path, verify=False)
        except VideoReadError as exc:
            raise SourceError(str(exc)) from None
        self.fps = file_fps(info.fps)
        if info.fps <= 0:
            log.warning("%s does not state its fps; timing it at %.0f fps", self.path, self.fps)
        self._frames = iter_grabbed(self.path)
        self._served = 0
        self._t0_wall, self._t0_mono = time.time(), time.monotonic()

    def read(self) -> np.ndarray | None:
        self.grab()
        return self.retrieve()

    def grab(self) -> None:
        if self._frames is None:
            raise SourceError(f"{self.description} is not open")
        try:
            self._retrieve = next(self._frames)
        except StopIteration:
            if not self.loop:
                raise SourceEnded(str(self.path)) from None
            self._frames = iter_grabbed(self.path)
            self._retrieve = next(self._frames)
        except VideoReadError as exc:
            raise SourceError(str(exc)) from None
        if self.realtime:
            wait = self._t0_mono + self._served / self.fps - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        self._served += 1

    def retrieve(self) -> np.ndarray | None:
        if self._frames is None:
            raise SourceError(f"{self.description} is not open")
        return self._retrieve()

    def timestamp(self) -> float:
        return self._t0_wall + (self._served - 1) / self.fps

    def release(self) -> None:
        if self._frames is not None:
            close = getattr(self._frames, "close", None)
            if close is not None:
                close()
            self._frames = None
