"""Which frames form which snippet: shared by training, feature caching, calibration and the device.

A snippet is ``S`` frames taken every ``stride`` frames; consecutive snippets do not overlap, so snippet ``i``
starts at frame ``i * S * stride``. A video of ``n`` frames has its ``n // (S * stride)`` complete snippets, the
ones a camera playing it completes; its unfinished tail is left out, as the device leaves it. Only a video
shorter than one snippet is padded, by repeating its last frame (RTFM pads short videos the same way), so that
it has one. (Padding every tail made snippets that were mostly one frozen frame: on the real clips, a fight's
second snippet of 5 moving and 27 frozen frames; leaving them out gained the 32-frame recipe 0.004-0.011 of
video AUC: docs/real-video.md.)
"""

from __future__ import annotations

import numpy as np

from .resample import resample_indices

__all__ = ["snippet_span", "num_snippets", "complete_snippets", "snippet_frame_indices", "frame_to_snippet"]


def _check(snippet_length: int, stride: int) -> None:
    if snippet_length <= 0:
        raise ValueError(f"snippet length must be positive, got {snippet_length}")
    if stride <= 0:
        raise ValueError(f"frame stride must be positive, got {stride}")


def snippet_span(snippet_length: int, stride: int = 1) -> int:
    """Frames of video covered by one snippet."""
    _check(snippet_length, stride)
    return snippet_length * stride


def num_snippets(num_frames: int, snippet_length: int, stride: int = 1) -> int:
    """Snippets in a video of ``num_frames`` frames: the complete ones, or one padded when there is none."""
    if num_frames < 0:
        raise ValueError(f"frame count must be >= 0, got {num_frames}")
    return max(num_frames // snippet_span(snippet_length, stride), min(num_frames, 1))


def complete_snippets(
    num_frames: int, snippet_length: int, stride: int = 1, *, fps: float = 0.0, rate: float = 0.0
) -> int:
    """Snippets a stream of a file's ``num_frames`` frames completes: what the device scores when it plays the
    file (:class:`edge_runtime.window.SnippetWindow` never pads a stream's unfinished tail): :func:`num_snippets`
    but for a video shorter than one snippet, which completes none. With a contract frame ``rate`` the snippets
    count samples (:mod:`edge_runtime.resample`)."""
    samples = len(resample_indices(num_frames, fps, rate)) if rate else num_frames
    return samples // snippet_span(snippet_length, stride)


def snippet_frame_indices(index: int, num_frames: int, snippet_length: int, stride: int = 1) -> np.ndarray:
    """Frame indices (length ``S``) of snippet ``index``, clamped to the last frame (the padding of a video shorter
    than one snippet)."""
    if num_frames <= 0:
        raise ValueError("a video with no frames has no snippets")
    start = index * snippet_span(snippet_length, stride)
    idx = start + stride * np.arange(snippet_length)
    return np.minimum(idx, num_frames - 1)


def frame_to_snippet(
    num_frames: int, snippet_length: int, stride: int = 1, *, fps: float = 0.0, rate: float = 0.0
) -> np.ndarray:
    """For each frame of a file, the snippet it belongs to: spreads snippet scores over the file's frames,
    ``(num_frames,)``; the frames of an unfinished tail name the snippet after the last one (callers give them
    the last snippet's score). With a contract frame ``rate`` (:mod:`edge_runtime.resample`) the snippets
    count samples, not frames: a frame belongs to the snippet of the last sample taken at or before it."""
    span = snippet_span(snippet_length, stride)
    if rate == 0:
        return np.arange(num_frames) // span
    taken = resample_indices(num_frames, fps, rate)  # source frame of each sample, non-decreasing
    last_sample = np.searchsorted(taken, np.arange(num_frames), side="right") - 1
    return np.maximum(last_sample, 0) // span
