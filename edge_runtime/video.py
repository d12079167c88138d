"""Reading (and writing) video files: one shared reader for training, calibration and the device's file source.

numpy + OpenCV only (no torch): this file runs on the edge device. Frames are BGR ``uint8`` ``(H, W, 3)``, as
OpenCV decodes them; :mod:`edge_runtime.preprocess` turns them into model input.

About frame counts: ``CAP_PROP_FRAME_COUNT`` comes from the container header (for mp4 the sample table), which
for an intact file written by OpenCV's ``mp4v`` writer is exact, but a damaged file can promise frames it cannot
decode and some containers only estimate it from duration x fps. So:

- :func:`probe_video` checks cheaply (``verify=True``, the default) that the last promised frame decodes, by
  seeking to it (one GOP of decoding), and falls back to counting frames when the header gives no count;
- :func:`read_frames` and :func:`iter_frames` decode sequentially and raise :class:`VideoReadError` if the video
  ends before the header's count (truncated or corrupt), so no caller silently trains on half a video.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "grey.mp4"
>>> write_video(path, np.full((5, 48, 64, 3), 128, np.uint8), fps=25.0)
5
>>> probe_video(path).num_frames
5
>>> read_frames(path, [4, 0]).shape
(2, 48, 64, 3)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

__all__ = [
    "VideoReadError",
    "VideoWriteError",
    "VideoInfo",
    "probe_video",
    "read_frames",
    "iter_grabbed",
    "iter_frames",
    "write_video",
]

logger = logging.getLogger(__name__)


class VideoReadError(ValueError):
    """A video that is missing, unreadable, empty, truncated or corrupt, or a frame index beyond its end."""


class VideoWriteError(ValueError):
    """A video that cannot be written (no encoder for the fourcc, unwritable folder, bad frames)."""


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` learned about a video file."""

    path: Path
    num_frames: int  # decodable frames (header count, checked; see the module docstring)
    fps: float  # frames per second from the container (0.0 if the container does not say)
    width: int  # pixels
    height: int  # pixels


def _open(path: str | Path) -> tuple[Path, cv2.VideoCapture]:
    """Open ``path`` for decoding or raise :class:`VideoReadError` naming it."""
    p = Path(path)
    if not p.exists():
        raise VideoReadError(f"video file not found: {p}")
    if not p.is_file():
        raise VideoReadError(f"not a video file (a directory or special file): {p}")
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        cap.release()
        raise VideoReadError(
            f"cannot open video {p}: not a readable video (truncated, corrupt or unknown format)"
        )
    return p, cap


def _header_count(cap: cv2.VideoCapture) -> int:
    """The container's frame count, or 0 when it gives none."""
    count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    return int(count) if count and count > 0 else 0


def _count_by_decoding(cap: cv2.VideoCapture) -> int:
    n = 0
    while cap.grab():
        n += 1
    return n


def probe_video(path: str | Path, *, verify: bool = True) -> VideoInfo:
    """Frame count, fps and size of a video file.

    With ``verify`` (default) the header's frame count is checked by seeking to and decoding the last frame
    (cheap: at most one GOP); a header without a count is replaced by counting decoded frames. Raises
    :class:`VideoReadError` naming the file if it is missing, unreadable, has no frames, or its last frame
    does not decode.
    """
    p, cap = _open(path)
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        count = _header_count(cap)
        if count == 0:
            count = _count_by_decoding(cap)  # the header gives none: count the frames
        elif verify:
            cap.set(cv2.CAP_PROP_POS_FRAMES, count - 1)
            if not cap.grab():
                raise VideoReadError(
                    f"video {p} is truncated or corrupt: its header promises {count} frames "
                    f"but frame {count - 1} cannot be decoded"
                )
    finally:
        cap.release()
    if count == 0:
        raise VideoReadError(f"video {p} has no decodable frames")
    if width <= 0 or height <= 0:
        raise VideoReadError(f"video {p} reports an invalid frame size {width}x{height}")
    return VideoInfo(path=p, num_frames=count, fps=fps, width=width, height=height)


def _check_indices(p: Path, indices: Iterable[int]) -> np.ndarray:
    idx = np.asarray(list(indices))
    if idx.size == 0:
        return idx.astype(np.int64)
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
        raise VideoReadError(
            f"frame indices for {p} must be a flat sequence of integers, got {idx.tolist()!r}"
        )
    if idx.min() < 0:
        raise VideoReadError(f"frame indices for {p} must be >= 0, got {int(idx.min())}")
    return idx.astype(np.int64)


def read_frames(path: str | Path, indices: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Decode frames of a video: all of them, or those at ``indices`` (any order, repeats allowed).

    Returns ``(N, H, W, 3)`` uint8 BGR, in the order of ``indices``. The video is decoded once, sequentially,
    up to the largest index; frames not asked for are skipped without colour conversion. Raises
    :class:`VideoReadError` naming the file if it is missing or unreadable, ends before the header's frame
    count (truncated / corrupt), or an index is beyond its end.
    """
    p, cap = _open(path)
    try:
        header = _header_count(cap)
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if indices is None:
            frames = list(_decode_all(p, cap, header))
            if not frames:
                raise VideoReadError(f"video {p} has no decodable frames")
            return np.stack(frames)
        idx = _check_indices(p, indices)
        if idx.size == 0:
            return np.zeros((0, height, width, 3), np.uint8)
        wanted = set(idx.tolist())
        last = int(idx.max())
        got: dict[int, np.ndarray] = {}
        for i in range(last + 1):
            if not cap.grab():
                if header and i < header:
                    raise VideoReadError(
                        f"video {p} is truncated or corrupt: decoded {i} of the {header} frames its header promises"
                    )
                raise VideoReadError(f"frame index {last} is beyond the end of video {p} ({i} frames)")
            if i in wanted:
                ok, frame = cap.retrieve()
                if not ok or frame is None:
                    raise VideoReadError(f"video {p} is corrupt: frame {i} cannot be decoded")
                got[i] = frame
    finally:
        cap.release()
    return np.stack([got[i] for i in idx.tolist()])


def _grab_all(p: Path, cap: cv2.VideoCapture, header: int) -> Iterator[Callable[[], np.ndarray | None]]:
    """Each frame decoded in turn, as the function that converts it to BGR (valid until the next frame)."""
    n = 0
    while cap.grab():
        n += 1
        yield _retriever(cap)
    if header and n < header:
        raise VideoReadError(
            f"video {p} is truncated or corrupt: decoded {n} of the {header} frames its header promises"
        )


def _retriever(cap: cv2.VideoCapture) -> Callable[[], np.ndarray | None]:
    def retrieve() -> np.ndarray | None:
        ok, frame = cap.retrieve()
        return frame if ok else None

    return retrieve


def _decode_all(p: Path, cap: cv2.VideoCapture, header: int) -> Iterator[np.ndarray]:
    """Each frame in turn as BGR; a frame that decodes but does not convert is a corrupt video."""
    for i, retrieve in enumerate(_grab_all(p, cap, header)):
        frame = retrieve()
        if frame is None:
            raise VideoReadError(f"video {p} is corrupt: frame {i} cannot be decoded")
        yield frame


def _iterate(
    path: str | Path, frames: Callable[[Path, cv2.VideoCapture, int], Iterator[Any]]
) -> Iterator[Any]:
    p, cap = _open(path)
    try:
        n = 0
        for frame in frames(p, cap, _header_count(cap)):
            n += 1
            yield frame
        if n == 0:
            raise VideoReadError(f"video {p} has no decodable frames")
    finally:
        cap.release()


def iter_grabbed(path: str | Path) -> Iterator[Callable[[], np.ndarray | None]]:
    """Decode the frames of a video one by one without converting them: yields, per frame, the function that
    returns it as BGR uint8 ``(H, W, 3)`` (None if it cannot be converted), valid until the next frame. A
    reader that skips frames (a capture thread at the model's frame rate) converts only the ones it keeps.
    Errors as :func:`iter_frames`."""
    return _iterate(path, _grab_all)


def iter_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Yield the frames of a video one by one (BGR uint8 ``(H, W, 3)``), without holding them all.

    A generator: errors (missing file, unreadable, truncated, a frame that does not convert) are raised as
    :class:`VideoReadError` when iteration reaches them, the open/first one on the first ``next()``.
    """
    return _iterate(path, _decode_all)


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float, *, fourcc: str = "mp4v") -> int:
    """Write BGR uint8 frames (all the same ``(H, W, 3)``) to ``path``; returns the number of frames written.

    Creates the parent folder. With the default ``mp4v`` fourcc, OpenCV's writer is deterministic: the same
    frames give byte-identical files.
    """
    p = Path(path)
    if fps <= 0:
        raise VideoWriteError(f"fps for {p} must be > 0, got {fps}")
    p.parent.mkdir(parents=True, exist_ok=True)
    writer: cv2.VideoWriter | None = None
    size: tuple[int, int] | None = None
    n = 0
    try:
        for frame in frames:
            frame = np.asarray(frame)
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                raise VideoWriteError(
                    f"frames for {p} must be uint8 (H, W, 3) BGR, got {frame.dtype} {tuple(frame.shape)}"
                )
            if writer is None:
                size = (frame.shape[1], frame.shape[0])
                writer = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*fourcc), float(fps), size)
                if not writer.isOpened():
                    raise VideoWriteError(f"cannot open a {fourcc!r} video writer for {p}")
            elif (frame.shape[1], frame.shape[0]) != size:
                raise VideoWriteError(
                    f"all frames for {p} must be {size[0]}x{size[1]} (WxH), frame {n} is "
                    f"{frame.shape[1]}x{frame.shape[0]}"
                )
            writer.write(np.ascontiguousarray(frame))
            n += 1
    finally:
        if writer is not None:
            writer.release()
    if n == 0:
        raise VideoWriteError(f"no frames given to write to {p}")
    logger.debug("wrote %d frames to %s", n, p)
    return n
