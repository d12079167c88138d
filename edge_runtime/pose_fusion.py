"""The pose forest next to the network and the motion forest: rows that carry poses, a head that scores them.

Each snippet's row gains a pose block (:func:`pose_block`): the frame's aspect (width / height), how many of
the snippet's frames the pose model saw, and their poses ``(MAX_PEOPLE, POSE_SIZE)`` in order, in
:func:`pose_slots` fixed slots. The pose model sees the contract's frames ``t`` with ``t % every == 0``
(:func:`edge_runtime.pose_model.pose_frame`), counted from a video's or a stream's first frame, so a snippet
of ``S >= every`` frames holds at least one. The ring and the streaming rule carry these rows as they carry
features; the head (:func:`pose_head`) becomes::

    score_j = (1 - weight) * inner_head(rows 0..j without the blocks)_j + weight * forest(pose stats 0..j)

where ``inner_head`` is the network's head, or the network fused with the motion forest
(:func:`edge_runtime.motion_fusion.fused_head`), and the pose statistics (:mod:`edge_runtime.pose_stats`) are
those of every pose frame of the window's snippets ``0..j``, in order. Like the motion forest's, the head is
causal: the streaming and the whole-clip scores are equal. Without a :class:`PoseFusion` (``None``) every
function returns its input unchanged.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .forest import TreeEnsemble, forest_mismatch
from .pose_stats import MAX_PEOPLE, POSE_SIZE, POSE_STATS_SIZE, POSE_STATS_VERSION, window_pose_stats

__all__ = [
    "PoseFusion",
    "PoseFusionError",
    "pose_block",
    "pose_block_size",
    "pose_head",
    "pose_rows",
    "pose_slots",
    "video_pose_blocks",
    "window_poses",
]

HeadFn = Callable[[np.ndarray], np.ndarray]  # windows (n, K', D) float32 -> snippet scores (n, K')
_PERSON = MAX_PEOPLE * POSE_SIZE


class PoseFusionError(ValueError):
    """A pose forest or pose rows that do not fit this runtime; one line."""


@dataclass(frozen=True)
class PoseFusion:
    """A forest over window pose statistics, its share ``weight`` of the score, and where the poses come from:
    every ``every``-th frame of the contract, ``height`` pixels high, of snippets spanning ``snippet_span``
    contract frames (``S x frame_stride``)."""

    forest: TreeEnsemble
    weight: float
    snippet_span: int
    every: int = 3
    height: int = 384

    def __post_init__(self) -> None:
        if not 0.0 <= self.weight <= 1.0:
            raise PoseFusionError(f"pose_weight must be in [0, 1], got {self.weight!r}")
        if not 1 <= self.every <= self.snippet_span:
            raise PoseFusionError(
                f"pose_every must be in [1, the snippet's span = {self.snippet_span}] (each snippet needs a pose "
                f"frame), got {self.every!r}"
            )
        mismatch = forest_mismatch(self.forest, POSE_STATS_VERSION, POSE_STATS_SIZE, "pose forest")
        if mismatch:
            raise PoseFusionError(mismatch)

    @property
    def slots(self) -> int:
        return pose_slots(self.snippet_span, self.every)

    @property
    def block_size(self) -> int:
        return pose_block_size(self.slots)

    def with_weight(self, weight: float) -> PoseFusion:
        """The same forest at another share: 0 gives the inner head's scores, 1 the pose forest's."""
        return dataclasses.replace(self, weight=float(weight))


def pose_slots(snippet_span: int, every: int) -> int:
    """The most pose frames a snippet spanning ``snippet_span`` contract frames can hold."""
    return math.ceil(snippet_span / every)


def pose_block_size(slots: int) -> int:
    """Numbers in a snippet's pose block: the aspect, the count, and ``slots`` frames of poses."""
    return 2 + slots * _PERSON


def pose_block(poses: np.ndarray | Sequence[np.ndarray], aspect: float, slots: int) -> np.ndarray:
    """A snippet's pose block ``(pose_block_size(slots),)`` float32 of its pose frames' poses ``(p <= slots,
    MAX_PEOPLE, POSE_SIZE)`` in order, of frames ``aspect`` times as wide as high."""
    p = np.asarray(poses, np.float32).reshape(-1, MAX_PEOPLE, POSE_SIZE)
    if len(p) > slots:
        raise PoseFusionError(f"a snippet holds at most {slots} pose frames, got {len(p)}")
    block = np.zeros(pose_block_size(slots), np.float32)
    block[0], block[1] = aspect, len(p)
    block[2 : 2 + len(p) * _PERSON] = p.ravel()
    return block


def video_pose_blocks(
    poses: np.ndarray, num_samples: int, num_snippets: int, *, span: int, every: int, aspect: float
) -> np.ndarray:
    """Pose blocks ``(num_snippets, pose_block_size(pose_slots(span, every)))`` of a whole video of
    ``num_samples`` contract frames whose pose frames ``0, every, 2 * every, ...`` gave ``poses``
    ``(ceil(num_samples / every), MAX_PEOPLE, POSE_SIZE)``: snippet ``i`` holds those of its frames
    ``i * span .. (i + 1) * span - 1`` (``span``: contract frames per snippet, :attr:`PoseFusion.snippet_span`;
    a padded last snippet, those it has)."""
    if len(poses) != math.ceil(num_samples / every):
        raise PoseFusionError(
            f"{num_samples} frames every {every} give {math.ceil(num_samples / every)} pose frames, got {len(poses)}"
        )
    slots, blocks = pose_slots(span, every), []
    for i in range(num_snippets):
        first = math.ceil(i * span / every)  # the snippet's first pose frame, counted in pose frames
        last = math.ceil(min((i + 1) * span, num_samples) / every)
        blocks.append(pose_block(poses[first:last], aspect, slots))
    return np.stack(blocks)


def window_poses(blocks: np.ndarray) -> tuple[np.ndarray, float]:
    """The poses ``(T, MAX_PEOPLE, POSE_SIZE)`` of a window's blocks ``(K', block)``, in order, and the aspect;
    a window without a pose frame gives one frame with nobody in it."""
    b = np.asarray(blocks, np.float32)
    frames = [row[2 : 2 + int(row[1]) * _PERSON].reshape(-1, MAX_PEOPLE, POSE_SIZE) for row in b]
    poses = np.concatenate(frames) if frames else np.zeros((0, MAX_PEOPLE, POSE_SIZE), np.float32)
    if not len(poses):
        poses = np.zeros((1, MAX_PEOPLE, POSE_SIZE), np.float32)
    return poses, float(b[-1, 0])


def pose_rows(rows: np.ndarray, blocks: np.ndarray | None, fusion: PoseFusion | None) -> np.ndarray:
    """Rows ``(N, D' + block)``: the inner rows ``(N, D')`` and each snippet's pose block; without a fusion
    the rows as they are."""
    if fusion is None:
        return rows
    if blocks is None or np.shape(blocks) != (len(rows), fusion.block_size):
        raise PoseFusionError(
            f"a pose forest needs a pose block ({fusion.block_size}) per row, got {np.shape(blocks)}"
        )
    return np.concatenate([np.asarray(rows, np.float32), np.asarray(blocks, np.float32)], axis=1)


def pose_head(inner: HeadFn, fusion: PoseFusion | None) -> HeadFn:
    """The streaming rule's head over rows with pose blocks (see the module docstring); without a fusion,
    ``inner`` itself."""
    if fusion is None:
        return inner
    w, tail = np.float32(fusion.weight), fusion.block_size

    def head(windows: np.ndarray) -> np.ndarray:
        if windows.shape[-1] <= tail:
            raise PoseFusionError(
                f"pose windows must hold rows and a {tail}-number pose block, got {windows.shape}"
            )
        n, k = windows.shape[:2]
        scores = np.asarray(inner(np.ascontiguousarray(windows[..., :-tail])), np.float32)  # (n, K')
        if w == 0:
            return scores
        blocks = windows[..., -tail:]
        stats = np.stack(
            [window_pose_stats(*window_poses(blocks[i, : j + 1])) for i in range(n) for j in range(k)]
        )
        pose = fusion.forest.predict(stats).astype(np.float32).reshape(n, k)
        return (np.float32(1) - w) * scores + w * pose

    return head
