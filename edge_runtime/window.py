"""Per-camera streaming buffers: frames -> snippets (:class:`SnippetWindow`), features -> window (:class:`FeatureRing`).

A :class:`SnippetWindow` keeps every ``stride``-th frame, exactly as :mod:`edge_runtime.snippets` samples a
video (snippet ``i`` is frames ``i*S*stride + stride*j``, ``j < S``), preprocesses each kept frame once with
:func:`edge_runtime.preprocess.preprocess_frame`, and hands out a snippet as soon as its ``S``-th frame
arrives. Consecutive snippets do not overlap, as in training. A stream's unfinished tail is never padded
(whole-clip scoring pads the last snippet; a live camera just waits for more frames).

A :class:`FeatureRing` holds the newest ``K`` backbone features of one camera; the head runs over them.

>>> import numpy as np
>>> from edge_runtime.preprocess import PreprocessConfig
>>> win = SnippetWindow(PreprocessConfig.square(4), snippet_length=2, frame_stride=1)
>>> [win.push(np.zeros((6, 8, 3), np.uint8), t) is not None for t in range(4)]
[False, True, False, True]
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .preprocess import PreprocessConfig, preprocess_frame
from .snippets import snippet_span

__all__ = ["FeatureRing", "Snippet", "SnippetWindow"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snippet:
    """A snippet ready for the backbone."""

    array: np.ndarray  # (3, S, H, W) float32, the model's input for one snippet
    index: int  # snippet number in this window's stream, from 0 (since the last reset)
    first_ts: float  # timestamp of its first frame
    last_ts: float  # timestamp of its last (S-th kept) frame
    last_frame: np.ndarray  # that last frame as BGR uint8 (h, w, 3), kept for snapshots


class SnippetWindow:
    """Collects one camera's frames into non-overlapping snippets of ``snippet_length`` frames.

    Args:
        preprocess_cfg: the bundle's preprocessing contract.
        snippet_length: ``S``, frames per snippet.
        frame_stride: keep every ``frame_stride``-th frame (1 keeps all).
    """

    def __init__(self, preprocess_cfg: PreprocessConfig, snippet_length: int, frame_stride: int = 1) -> None:
        self.span = snippet_span(snippet_length, frame_stride)  # frames of video per snippet (validates both)
        self.cfg = preprocess_cfg
        self.snippet_length = snippet_length
        self.frame_stride = frame_stride
        self.reset()

    def reset(self) -> None:
        """Forget the partly filled snippet and restart the frame count (e.g. after a camera reconnect)."""
        self._frames_seen = 0  # frames pushed since the reset
        self._snippets = 0  # snippets handed out since the reset
        self._kept: list[np.ndarray] = []  # preprocessed frames of the current snippet, each (3, H, W)
        self._first_ts = 0.0

    @property
    def frames_seen(self) -> int:
        """Frames pushed since creation or the last :meth:`reset`."""
        return self._frames_seen

    @property
    def pending(self) -> int:
        """Frames of the next snippet collected so far (0 .. S-1)."""
        return len(self._kept)

    def push(self, frame_bgr: np.ndarray, timestamp: float) -> Snippet | None:
        """Add one BGR uint8 frame (any size); return the snippet it completes, else None."""
        position = self._frames_seen % self.span  # place of this frame inside its snippet's span
        self._frames_seen += 1
        if position % self.frame_stride:
            return None  # between sampled frames: never preprocessed
        if not self._kept:
            self._first_ts = float(timestamp)
        self._kept.append(preprocess_frame(frame_bgr, self.cfg))
        if len(self._kept) < self.snippet_length:
            return None
        snippet = Snippet(
            array=np.stack(self._kept, axis=1),  # (3, S, H, W)
            index=self._snippets,
            first_ts=self._first_ts,
            last_ts=float(timestamp),
            last_frame=frame_bgr,
        )
        self._snippets += 1
        self._kept = []
        return snippet


class FeatureRing:
    """The newest ``num_snippets`` features ``(D,)`` of one camera, read back in time order.

    >>> ring = FeatureRing(2, 3)
    >>> for v in (1, 2, 3):
    ...     ring.append(np.full(3, v, np.float32))
    >>> ring.window()[:, 0].tolist(), ring.full
    ([2.0, 3.0], True)
    """

    def __init__(self, num_snippets: int, feature_dim: int) -> None:
        if num_snippets < 1:
            raise ValueError(f"a feature ring needs num_snippets >= 1, got {num_snippets}")
        if feature_dim < 1:
            raise ValueError(f"a feature ring needs feature_dim >= 1, got {feature_dim}")
        self.num_snippets = num_snippets
        self.feature_dim = feature_dim
        self._buf = np.zeros((num_snippets, feature_dim), np.float32)
        self._count = 0  # features appended since the last reset

    def append(self, feature: np.ndarray) -> None:
        """Add the newest feature ``(D,)``; the oldest one falls out once the ring is full."""
        feature = np.asarray(feature, np.float32)
        if feature.shape != (self.feature_dim,):
            raise ValueError(f"a feature must have shape ({self.feature_dim},), got {feature.shape}")
        self._buf[self._count % self.num_snippets] = feature
        self._count += 1

    def window(self) -> np.ndarray:
        """The stored features ``(K', D)``, oldest first; ``K' = min(appended, K)``; a copy."""
        if self._count <= self.num_snippets:
            return self._buf[: self._count].copy()
        start = self._count % self.num_snippets
        return np.concatenate([self._buf[start:], self._buf[:start]])

    @property
    def full(self) -> bool:
        """True once ``num_snippets`` features have been appended."""
        return self._count >= self.num_snippets

    def __len__(self) -> int:
        return min(self._count, self.num_snippets)

    def reset(self) -> None:
        """Forget every feature."""
        self._count = 0
