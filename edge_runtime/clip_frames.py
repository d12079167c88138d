"""The frames of event clips: taken at a viewing size and rate, kept as JPEG until a clip needs them.

The model sees frames shrunk to its input size (224 px, 72 px for the ``surveillance`` recipe): too small for
a person to recognise who is fighting. A clip frame is therefore made from the frame *as decoded*, before
that shrink, by the thread that decoded it (the capture thread of the detect stream, or the camera's
:class:`~edge_runtime.record.RecordStream` when it has a full-resolution record stream):

1. taken at the clip's frame rate (``[clips] fps``, by timestamp with the one
   :class:`~edge_runtime.resample.FrameResampler`; 0 takes every frame);
2. scaled down (never up) to ``[clips] max_height`` rows, keeping the aspect ratio, both sides even as
   YUV 4:2:0 needs (0: as decoded, an odd last row or column dropped);
3. JPEG-compressed (quality :data:`JPEG_QUALITY`): an 854x480 frame is 615 kB as I420 and about 60-90 kB as
   JPEG, so the pre-capture ring of a camera is a few MB instead of a hundred (docs/benchmarks.md).

The clip writer decodes the JPEGs back to I420 for the encoder, only while it records.

>>> framer = ClipFramer(max_height=480, fps=15.0)  # doctest: +SKIP
>>> framer(time.time(), frame_1080p).width  # doctest: +SKIP
854
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .resample import FrameResampler

__all__ = ["JPEG_QUALITY", "ClipFramer", "RingFrame", "clip_size"]

# Quality 85: no blocking visible once the clip is encoded with H.264 crf 26, about half the bytes of 95.
JPEG_QUALITY = 85


@dataclass(frozen=True)
class RingFrame:
    """One clip frame: its capture time and its JPEG (``width`` x ``height``, both even)."""

    timestamp: float
    jpeg: bytes
    width: int
    height: int

    @property
    def nbytes(self) -> int:
        return len(self.jpeg)

    def yuv(self) -> np.ndarray:
        """The frame as I420, ``(height * 3 / 2, width)`` uint8: what the encoder takes."""
        bgr = cv2.imdecode(np.frombuffer(self.jpeg, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None or bgr.shape[:2] != (self.height, self.width):
            raise ValueError(
                f"a clip frame at {self.timestamp:.3f} does not decode to {self.width}x{self.height}"
            )
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)


def clip_size(width: int, height: int, max_height: int) -> tuple[int, int]:
    """``(width, height)`` of the clip of a ``width`` x ``height`` source: at most ``max_height`` rows (0: no
    limit), never larger than the source, the aspect ratio kept, both sides even.

    >>> clip_size(1920, 1080, 480), clip_size(640, 360, 480), clip_size(63, 47, 0)
    ((854, 480), (640, 360), (62, 46))
    """
    if max_height <= 0 or height <= max_height:
        return width & ~1, height & ~1
    h = max_height & ~1
    w = max(2, round(width * h / height / 2) * 2)
    return w, h


def _scale_down(bgr: np.ndarray, width: int, height: int) -> np.ndarray:
    """``bgr`` scaled down to ``width`` x ``height``: averaged by the largest whole factor (OpenCV's fast
    path of INTER_AREA, 3 ms for 1080p to 960x540 where a 2.25x INTER_AREA takes 16 ms), then bilinear for the
    rest (under 2x: no aliasing to speak of; within one grey level of INTER_AREA on average)."""
    src_h, src_w = bgr.shape[:2]
    k = min(src_h // height, src_w // width)
    if k >= 2:
        bgr = cv2.resize(bgr, (src_w // k, src_h // k), interpolation=cv2.INTER_AREA)
    if bgr.shape[:2] == (height, width):
        return bgr
    return cv2.resize(bgr, (width, height), interpolation=cv2.INTER_LINEAR)


class ClipFramer:
    """Makes the clip frames of one stream (one thread: it keeps the stream's frame-rate state).

    :meth:`wants` says whether the frame at a timestamp is taken (call it once per frame, in order); a
    reader that has not converted the frame yet (a record stream's grab) converts only the ones taken.
    Calling the framer does both: the :class:`RingFrame` of a BGR frame, or None when it is not taken.
    While :attr:`enabled` is False (another source makes the camera's clips) it takes no frame.
    """

    def __init__(self, max_height: int, fps: float, quality: int = JPEG_QUALITY) -> None:
        self.max_height = max_height
        self.fps = fps
        self._params = [cv2.IMWRITE_JPEG_QUALITY, quality]
        self._rate = FrameResampler(fps)
        self.enabled = True  # set by the loop thread, read by the decoding thread (a bool: atomic)

    def wants(self, timestamp: float) -> bool:
        return self.enabled and self._rate.count(timestamp) > 0

    def frame(self, timestamp: float, bgr: np.ndarray) -> RingFrame:
        """The clip frame of ``bgr`` (a BGR uint8 ``(h, w, 3)`` image as decoded)."""
        src_h, src_w = bgr.shape[:2]
        w, h = clip_size(src_w, src_h, self.max_height)
        if (w, h) == (src_w & ~1, src_h & ~1):  # as decoded: an odd last row or column dropped
            image = bgr[:h, :w]
        else:
            image = _scale_down(bgr, w, h)
        ok, jpeg = cv2.imencode(".jpg", image, self._params)
        if not ok:
            raise ValueError(f"a {w}x{h} clip frame could not be JPEG-encoded")
        return RingFrame(timestamp, jpeg.tobytes(), w, h)

    def __call__(self, timestamp: float, bgr: np.ndarray) -> RingFrame | None:
        return self.frame(timestamp, bgr) if self.wants(timestamp) else None
