"""The motion forest next to the network: one composition for every caller of the streaming rule.

With a :class:`MotionFusion`, each snippet's feature becomes ``[backbone feature (D) | snippet motion stats]``
(:func:`fused_features`, the statistics of :mod:`edge_runtime.motion_stats`), the ring and the streaming rule
of :mod:`edge_runtime.scoring` carry those rows as they carry plain features, and the head function becomes
(:func:`fused_head`)::

    score_j = (1 - weight) * net_head(features 0..j)_j + weight * forest(window stats of snippets 0..j)

The streaming rule only reads the newest position ``j = K' - 1`` of each window: the fused score of the
window. The other positions are the fused scores of the window's prefixes (the windows of a filling ring),
so the fused head is causal as the MTN is and ``streaming_scores(..., causal=True)`` stays exact.

With ``crops = 3`` the snippets are those of ``FramePreprocessor(cfg, crops=3)``: the centre crop's channels
(the network's input, :func:`network_input`) and then the left and the right crop's. Rows carry
``[feature | stats of each crop]`` and the forest's share is the max over the crops of the forest on each
crop's window statistics (:func:`crops_forest`): motion at a wide frame's edge, which the centre crop misses,
still scores. The forest itself is fitted on centre crops.

With a pose forest (``MotionFusion.pose``, :mod:`edge_runtime.pose_fusion`) each row also carries the
snippet's pose block, last, and :func:`fused_head` is :func:`~edge_runtime.pose_fusion.pose_head` of the head
above: ``(1 - pose_weight) * score_j + pose_weight * pose forest``. :meth:`MotionFusion.part` scores one part
alone (the network, the motion forest, the pose forest) over the same rows.

Without a fusion (``None``) every function here returns its input unchanged: exactly the network's numbers.
The device's :class:`~edge_runtime.scoring.StreamingScorer`, the export's scoring and accuracy control, the
evaluation (and so a run's threshold) and the quality benchmark all compose the head this way.

>>> fused_head(lambda w: w.sum(-1), None) is not None  # no forest: the network's head as it is
True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .forest import TreeEnsemble, forest_mismatch, load_forest
from .motion_stats import (
    STATS_SIZE,
    STATS_VERSION,
    WINDOW_STATS_SIZE,
    snippets_motion_stats,
    window_motion_stats,
)
from .pose_fusion import PoseFusion, pose_head
from .preprocess import MOTION_CROPS

__all__ = [
    "MotionFusion",
    "MotionFusionError",
    "crops_forest",
    "crops_motion_stats",
    "fused_features",
    "fused_head",
    "load_motion_fusion",
    "motion_crops",
    "network_features",
    "network_input",
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
    crops: int = 1  # horizontal crop positions scored (1: the centre; 3: and the left and right edges)
    pose: PoseFusion | None = (
        None  # a pose forest beside it (edge_runtime.pose_fusion), its block last in the rows
    )

    def __post_init__(self) -> None:
        if self.crops not in MOTION_CROPS:
            raise MotionFusionError(f"motion_crops must be one of {MOTION_CROPS}, got {self.crops!r}")
        if not 0.0 <= self.weight <= 1.0:
            raise MotionFusionError(f"motion_weight must be in [0, 1], got {self.weight!r}")
        mismatch = forest_mismatch(self.forest, STATS_VERSION, WINDOW_STATS_SIZE)
        if mismatch:
            raise MotionFusionError(mismatch)

    def with_weight(self, weight: float) -> MotionFusion:
        """The same forest at another share: 0 gives the network's scores, 1 the forest's."""
        return dataclasses.replace(self, weight=float(weight))

    @property
    def parts(self) -> tuple[str, ...]:
        """The parts of the fused score :meth:`part` can score alone."""
        return ("network", "forest") + (("pose",) if self.pose is not None else ())

    def part(self, name: str) -> MotionFusion:
        """The fusion that scores one part alone (same rows): ``"network"``, ``"forest"`` (the motion forest)
        or ``"pose"`` (the pose forest)."""
        quiet = self.pose.with_weight(0.0) if self.pose is not None else None
        if name == "network":
            return dataclasses.replace(self, weight=0.0, pose=quiet)
        if name == "forest":
            return dataclasses.replace(self, weight=1.0, pose=quiet)
        if name == "pose" and self.pose is not None:
            return dataclasses.replace(self, pose=self.pose.with_weight(1.0))
        raise MotionFusionError(f"a part of the fused score is one of {self.parts}, got {name!r}")

    @property
    def row_tail(self) -> int:
        """Numbers after the backbone feature in a row: the motion statistics of each crop and a pose block."""
        return self.crops * STATS_SIZE + (self.pose.block_size if self.pose is not None else 0)


def load_motion_fusion(path: str | Path, weight: float, crops: int = 1) -> MotionFusion:
    """The forest file ``path`` (``.npz``, no pickles) at share ``weight`` over ``crops`` crop positions;
    errors name the file."""
    try:
        return MotionFusion(load_forest(path), float(weight), crops)
    except MotionFusionError as exc:
        raise MotionFusionError(f"{path}: {exc}") from None


def motion_crops(fusion: MotionFusion | None) -> int:
    """Crop positions each snippet must carry for ``fusion`` (1 without a forest)."""
    return 1 if fusion is None else fusion.crops


def _crop_channels(snippets: np.ndarray, crops: int) -> int:
    """Channels per crop of snippets ``(N, crops * 2, S, H, W)``; refuses snippets without the crops."""
    shape = np.shape(snippets)
    if len(shape) != 5 or shape[1] != 2 * crops:
        raise MotionFusionError(
            f"a motion forest over {crops} crop(s) needs flow snippets (N, {2 * crops}, S, H, W) "
            f"(FramePreprocessor crops={crops}), got shape {tuple(shape)}"
        )
    return 2


def network_features(rows: np.ndarray, fusion: MotionFusion | None) -> np.ndarray:
    """The backbone features ``(N, D)`` of rows ``(N, D + tail)`` (:func:`fused_features`, a pose block)."""
    return rows if fusion is None else rows[..., : -fusion.row_tail]


def network_input(snippets: np.ndarray, fusion: MotionFusion | None) -> np.ndarray:
    """The network's input ``(N, C, S, H, W)`` of snippets ``(N, crops * C, S, H, W)``: the centre crop."""
    crops = motion_crops(fusion)
    return snippets if crops == 1 else snippets[:, : _crop_channels(snippets, crops)]


def fused_features(features: np.ndarray, snippets: np.ndarray, fusion: MotionFusion | None) -> np.ndarray:
    """Rows ``(N, D + crops * STATS_SIZE)`` of backbone features ``(N, D)`` and the flow snippets
    ``(N, crops * 2, S, H, W)`` they came from; without a fusion the features as they are."""
    if fusion is None:
        return features
    return np.concatenate(
        [np.asarray(features, np.float32), crops_motion_stats(snippets, fusion.crops)], axis=1
    )


def crops_motion_stats(snippets: np.ndarray, crops: int) -> np.ndarray:
    """Statistics ``(N, crops * STATS_SIZE)`` of snippets ``(N, crops * 2, S, H, W)``, crop by crop (the
    centre first)."""
    if crops != 1:
        _crop_channels(snippets, crops)
    parts = np.split(np.asarray(snippets), crops, axis=1)  # each (N, 2, S, H, W)
    return np.concatenate([snippets_motion_stats(p) for p in parts], axis=1)


def _windows_per_crop(stats: np.ndarray) -> np.ndarray:
    """Window statistics ``(n, K', crops * WINDOW_STATS_SIZE)`` of snippet statistics ``(n, K', crops *
    STATS_SIZE)``, crop by crop (:func:`~edge_runtime.motion_stats.window_motion_stats`)."""
    s = np.asarray(stats, np.float32)
    if s.ndim != 3 or s.shape[-1] % STATS_SIZE or not s.shape[-1]:
        raise MotionFusionError(f"window statistics need (n, K', crops * {STATS_SIZE}), got shape {s.shape}")
    parts = np.split(s, s.shape[-1] // STATS_SIZE, axis=-1)
    return np.concatenate([window_motion_stats(p) for p in parts], axis=-1)


def crops_forest(forest: TreeEnsemble, windows: np.ndarray, crops: int) -> np.ndarray:
    """THE side-crop rule: the forest's score of each window ``(m, crops * WINDOW_STATS_SIZE)`` (the window
    statistics of each crop, the centre first) is the max over the crops of ``forest`` on that crop's; ``(m,)``."""
    x = np.asarray(windows, np.float32)
    if x.ndim != 2 or x.shape[1] != crops * WINDOW_STATS_SIZE:
        raise MotionFusionError(f"{crops} crop(s) of {WINDOW_STATS_SIZE} window statistics, got {x.shape}")
    return np.max([forest.predict(part) for part in np.split(x, crops, axis=1)], axis=0).astype(np.float32)


def fused_head(net_head: HeadFn, fusion: MotionFusion | None) -> HeadFn:
    """The streaming rule's head function over fused rows (see the module docstring); with a pose forest,
    :func:`~edge_runtime.pose_fusion.pose_head` of it; without a fusion, ``net_head`` itself."""
    if fusion is None:
        return net_head
    w = np.float32(fusion.weight)
    tail = fusion.crops * STATS_SIZE

    def head(windows: np.ndarray) -> np.ndarray:
        if windows.shape[-1] <= tail:
            raise MotionFusionError(
                f"fused windows must hold features and {tail} motion statistics, got {windows.shape}"
            )
        n, k = windows.shape[:2]
        net = np.asarray(net_head(np.ascontiguousarray(windows[..., :-tail])), np.float32)  # (n, K')
        prefix = _windows_per_crop(windows[..., -tail:]).reshape(n * k, -1)  # every prefix's statistics
        forest = crops_forest(fusion.forest, prefix, fusion.crops).reshape(n, k)  # (n, K')
        return (np.float32(1) - w) * net + w * forest

    return pose_head(head, fusion.pose)  # the pose block, when there is one, is the rows' last


def video_window_stats(stats: np.ndarray, num_snippets: int) -> np.ndarray:
    """The forest's input for every snippet of a video ``(n, crops * STATS_SIZE) -> (n, crops *
    WINDOW_STATS_SIZE)``: snippet ``i``'s window ``max(0, i-K+1) .. i``, as the streaming rule forms it, crop by
    crop (training fits the forest on the centre crop's, the first ``WINDOW_STATS_SIZE`` columns)."""
    s = np.asarray(stats, np.float32)
    return np.stack(
        [_windows_per_crop(s[None, max(0, i - num_snippets + 1) : i + 1])[0, -1] for i in range(len(s))]
    )
