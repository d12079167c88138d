"""Every snippet of a whole video, preprocessed, without holding the whole decoded video in memory.

Used by feature caching, evaluation and calibration: the frames of snippet ``i`` are exactly
:func:`edge_runtime.snippets.snippet_frame_indices` (the last snippet padded with the video's last frame),
but the video is decoded once, sequentially, and each snippet is yielded as soon as it is complete.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edge_runtime.preprocess import PreprocessConfig, preprocess_frame, stack_snippet
from edge_runtime.snippets import snippet_span
from edge_runtime.video import iter_frames

__all__ = ["preprocess_config", "iter_video_snippets", "iter_snippet_batches", "preprocess_video"]


def preprocess_config(frame_size: int, resize_short_side: int | None = None) -> PreprocessConfig:
    """The preprocessing contract for a square model input of ``frame_size`` pixels."""
    return PreprocessConfig(
        crop_size=(frame_size, frame_size), resize_short_side=resize_short_side or frame_size
    )


def iter_video_snippets(
    path: str | Path, snippet_length: int, cfg: PreprocessConfig, stride: int = 1
) -> Iterator[np.ndarray]:
    """Yield each snippet of a video as float32 ``(3, S, H, W)``, in order.

    Raises :class:`edge_runtime.video.VideoReadError` (naming the file) if the video cannot be decoded.
    """
    span = snippet_span(snippet_length, stride)
    current: list[np.ndarray] = []
    last_raw: np.ndarray | None = None
    for i, frame in enumerate(iter_frames(path)):
        last_raw = frame
        offset = i % span
        if offset % stride == 0:
            current.append(preprocess_frame(frame, cfg))
        if offset == span - 1:
            yield stack_snippet(current)
            current = []
    if current:  # a partial last snippet: pad with the video's last frame, as snippet_frame_indices does
        assert last_raw is not None
        pad = preprocess_frame(last_raw, cfg)
        current += [pad] * (snippet_length - len(current))
        yield stack_snippet(current)


def iter_snippet_batches(
    path: str | Path, snippet_length: int, cfg: PreprocessConfig, stride: int = 1, batch_size: int = 8
) -> Iterator[np.ndarray]:
    """:func:`iter_video_snippets` grouped into float32 batches ``(N <= batch_size, 3, S, H, W)``."""
    batch: list[np.ndarray] = []
    for snippet in iter_video_snippets(path, snippet_length, cfg, stride):
        batch.append(snippet)
        if len(batch) == batch_size:
            yield np.stack(batch)
            batch = []
    if batch:
        yield np.stack(batch)


def preprocess_video(
    path: str | Path,
    clip_length: int,
    *,
    frame_size: int = 224,
    resize_short_side: int | None = None,
    frame_stride: int = 1,
) -> np.ndarray:
    """A whole video as model input: float32 ``(3, T', H, W)`` with ``T' = n * clip_length`` for its ``n``
    snippets (the last one padded), ready for ``I3D_MTN_AnomalyDetector`` after ``torch.from_numpy(x)[None]``.

    Holds the whole preprocessed video in memory; for long videos use :func:`iter_snippet_batches`.
    """
    cfg = preprocess_config(frame_size, resize_short_side)
    snippets = list(iter_video_snippets(path, clip_length, cfg, frame_stride))
    return np.ascontiguousarray(np.concatenate(snippets, axis=1))
