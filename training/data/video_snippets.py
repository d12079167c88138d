"""Every snippet of a whole video, preprocessed, without holding the whole decoded video in memory.

Used by feature caching, evaluation and calibration: the frames of snippet ``i`` are exactly
:func:`edge_runtime.snippets.snippet_frame_indices` (a video shorter than one snippet padded with its last frame),
but the video is decoded once, sequentially, and each snippet is yielded as soon as it is complete.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge_runtime.preprocess import PreprocessConfig
from edge_runtime.resample import file_fps
from edge_runtime.video import iter_frames, probe_video
from edge_runtime.window import SnippetWindow

if TYPE_CHECKING:
    import torch

__all__ = ["preprocess_config", "iter_video_snippets", "iter_snippet_batches", "preprocess_video"]


def preprocess_config(
    frame_size: int | tuple[int, int], resize_short_side: int | None = None
) -> PreprocessConfig:
    """The preprocessing contract for a model input of ``frame_size`` pixels, or ``(H, W)``."""
    crop = (frame_size, frame_size) if isinstance(frame_size, int) else tuple(frame_size)
    return PreprocessConfig(crop_size=crop, resize_short_side=resize_short_side or max(crop))


def iter_video_snippets(
    path: str | Path, snippet_length: int, cfg: PreprocessConfig, stride: int = 1, crops: int = 1
) -> Iterator[np.ndarray]:
    """Yield each snippet of a video as float32 ``(crops * C, S, H, W)``, in order (``crops``: the crop
    positions each carries, :class:`~edge_runtime.preprocess.FramePreprocessor`).

    The frames go through the device's own :class:`edge_runtime.window.SnippetWindow`, timed ``i / fps`` as
    the device's file source times them, so whole-clip scoring sees the pixels the device sees; a video shorter
    than one snippet gives one, padded (:meth:`~edge_runtime.window.SnippetWindow.flush`).
    Raises :class:`edge_runtime.video.VideoReadError` (naming the file) if the video cannot be decoded.
    """
    fps = file_fps(probe_video(path, verify=False).fps)
    window = SnippetWindow(cfg, snippet_length, stride, crops)
    for i, frame in enumerate(iter_frames(path)):
        snippet = window.push(frame, i / fps)
        if snippet is not None:
            yield snippet.array
    last = window.flush()
    if last is not None:
        yield last.array


def iter_snippet_batches(
    path: str | Path,
    snippet_length: int,
    cfg: PreprocessConfig,
    stride: int = 1,
    batch_size: int = 8,
    crops: int = 1,
) -> Iterator[np.ndarray]:
    """:func:`iter_video_snippets` grouped into float32 batches ``(N <= batch_size, crops * C, S, H, W)``."""
    batch: list[np.ndarray] = []
    for snippet in iter_video_snippets(path, snippet_length, cfg, stride, crops):
        batch.append(snippet)
        if len(batch) == batch_size:
            yield np.stack(batch)
            batch = []
    if batch:
        yield np.stack(batch)


def preprocess_video(
    path: str | Path,
    clip_length: int = 16,
    *,
    frame_size: int | tuple[int, int] = 224,
    resize_short_side: int | None = None,
    frame_stride: int = 1,
) -> torch.Tensor:
    """A whole video as model input: a float32 tensor ``(3, T', H, W)`` with ``T' = n * clip_length`` for its
    ``n`` snippets (:func:`edge_runtime.snippets.num_snippets`), so ``model(preprocess_video(path).unsqueeze(0))`` scores it.

    Holds the whole preprocessed video in memory; for long videos use :func:`iter_snippet_batches`.
    """
    import torch  # lazy: the rest of this module is torch-free (calibration lists videos with it)

    cfg = preprocess_config(frame_size, resize_short_side)
    snippets = list(iter_video_snippets(path, clip_length, cfg, frame_stride))
    return torch.from_numpy(np.ascontiguousarray(np.concatenate(snippets, axis=1)))
