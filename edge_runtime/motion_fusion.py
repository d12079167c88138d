"""The motion forest next to the network: one composition for every caller of the streaming rule.

With a :class:`MotionFusion`, each snippet's feature becomes ``[backbone feature (D) | snippet motion stats]``
(:func:`fused_features`, the statistics of :mod:`edge_runtime.motion_stats`), the ring and the streaming rule
of :mod:`edge_runtime.scoring` carry those rows as they carry plain features, and the head function becomes
(:func:`fused_head`)::

    score_j = (1 - weight) * net_head(features 0..j)_j + weight * forest(window stats of snippets 0..j)

The streaming rule only reads the newest position ``j = K' - 1`` of each window: the fused score of the
window. The other positions are the fused scores of the window's prefixes (the windows of a filling ring),
so the fused head is causal as the MTN is and ``streaming_scores(..., causal=True)`` stays exact.

Without a fusion (``None``) every function here returns its input unchanged: exactly the network's numbers.
The device's :class:`~edge_runtime.scoring.StreamingScorer`, the export's scoring and accuracy control, the
evaluation, the trainer's validation and the quality benchmark all compose the head this way.

>>> fused_head(lambda w: w.sum(-1), None) is not None  # no forest: the network's head as it is
True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .forest import TreeEnsemble, load_forest
from .motion_stats import (
    STATS_SIZE,
    STATS_VERSION,
    WINDOW_STATS_SIZE,
    snippets_motion_stats,
    window_motion_stats,
)

__all__ = [
    "MotionFusion",
    "MotionFusionError",
    "fused_features",
    "fused_head",
    "load_motion_fusion",
    "video_window_stats",
]

HeadFn = Callable[[np.ndarray], np.ndarray]  # windows (n, K', D) float32 -> snippet scores (n, K')


class MotionFusionError(ValueError):
    """A forest that does not fit the statistics this runtime computes, or a bad weight; one line."""


@dataclass(frozen=True)
class MotionFusion:
    """A forest over window motion statistics and its share ``weight`` of the fused score."""

    forest: TreeEnsemble
    weight: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.weight <= 1.0:
            raise MotionFusionError(f"motion_weight must be in [0, 1], got {self.weight!r}")
        if self.forest.stats_version != STATS_VERSION:
            raise MotionFusionError(
                f"the forest was trained on statistics {self.forest.stats_version!r}; this runtime computes "
                f"{STATS_VERSION!r} (train and export again)"
            )
        if self.forest.n_features != WINDOW_STATS_SIZE:
            raise MotionFusionError(
                f"the forest takes {self.forest.n_features} features; window statistics have {WINDOW_STATS_SIZE}"
            )

    def with_weight(self, weight: float) -> MotionFusion:
        """The same forest at another share: 0 gives the network's scores, 1 the forest's."""
        return dataclasses.replace(self, weight=float(weight))


def load_motion_fusion(path: str | Path, weight: float) -> MotionFusion:
    """The forest file ``path`` (``.npz``, no pickles) at share ``weight``; errors name the file."""
    try:
        return MotionFusion(load_forest(path), float(weight))
    except MotionFusionError as exc:
        raise MotionFusionError(f"{path}: {exc}") from None


def fused_features(features: np.ndarray, snippets: np.ndarray, fusion: MotionFusion | None) -> np.ndarray:
    """Rows ``(N, D + STATS_SIZE)`` of backbone features ``(N, D)`` and the flow snippets ``(N, 2, S, H, W)``
    they came from; without a fusion the features as they are."""
    if fusion is None:
        return features
    stats = snippets_motion_stats(snippets)
    return np.concatenate([np.asarray(features, np.float32), stats], axis=1)


def fused_head(net_head: HeadFn, fusion: MotionFusion | None) -> HeadFn:
    """The streaming rule's head function over fused rows (see the module docstring); without a fusion,
    ``net_head`` itself."""
    if fusion is None:
        return net_head
    w = np.float32(fusion.weight)

    def head(windows: np.ndarray) -> np.ndarray:
        if windows.shape[-1] <= STATS_SIZE:
            raise MotionFusionError(
                f"fused windows must hold features and {STATS_SIZE} motion statistics, got {windows.shape}"
            )
        n, k = windows.shape[:2]
        net = np.asarray(net_head(np.ascontiguousarray(windows[..., :-STATS_SIZE])), np.float32)  # (n, K')
        prefix = window_motion_stats(windows[..., -STATS_SIZE:]).reshape(n * k, WINDOW_STATS_SIZE)
        forest = fusion.forest.predict(prefix).astype(np.float32).reshape(n, k)  # (n, K')
        return (np.float32(1) - w) * net + w * forest

    return head


def video_window_stats(stats: np.ndarray, num_snippets: int) -> np.ndarray:
    """The forest's input for every snippet of a video ``(n, STATS_SIZE) -> (n, WINDOW_STATS_SIZE)``: snippet
    ``i``'s window ``max(0, i-K+1) .. i``, as the streaming rule forms it (training fits the forest on these)."""
    s = np.asarray(stats, np.float32)
    return np.stack(
        [window_motion_stats(s[None, max(0, i - num_snippets + 1) : i + 1])[0, -1] for i in range(len(s))]
    )
