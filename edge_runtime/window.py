"""Per-camera streaming buffers: frames -> snippets (:class:`SnippetWindow`), features -> window (:class:`FeatureRing`).

A :class:`SnippetWindow` takes frames at the contract's frame rate by timestamp
(:class:`edge_runtime.resample.FrameResampler`: a frame may be dropped or repeated), keeps every
``stride``-th of those, exactly as :mod:`edge_runtime.snippets` samples a video (snippet ``i`` is frames
``i*S*stride + stride*j``, ``j < S``), preprocesses each kept frame once with the stream's
:class:`edge_runtime.preprocess.FramePreprocessor`, and hands out a snippet as soon as its ``S``-th frame
arrives. Consecutive snippets do not overlap, as in training. A stream's unfinished tail is never padded
(a live camera just waits for more frames; whole-clip scoring pads only a video shorter than one snippet,
:mod:`edge_runtime.snippets`).

With a :class:`SnippetPoses` (a bundle with a pose forest) the window also runs the pose model on the contract's
frames ``t`` with ``t % every == 0`` (counted since the reset, repeats included), on the frame as decoded, and
each snippet carries its pose block (:func:`edge_runtime.pose_fusion.pose_block`): the blocks whole-clip
scoring builds from the same frames (:func:`~edge_runtime.pose_fusion.video_pose_blocks`).

A :class:`FeatureRing` holds the newest ``K`` backbone features of one camera; the head runs over them.

>>> import numpy as np
>>> from edge_runtime.preprocess import PreprocessConfig
>>> win = SnippetWindow(PreprocessConfig.square(4), snippet_length=2, frame_stride=1)
>>> [win.push(np.zeros((6, 8, 3), np.uint8), t) is not None for t in range(4)]
[False, True, False, True]
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .pose_fusion import pose_block, pose_slots
from .preprocess import FramePreprocessor, PreprocessConfig
from .resample import FrameResampler
from .snippets import snippet_span

__all__ = ["FeatureRing", "Snippet", "SnippetPoses", "SnippetWindow"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snippet:
    """A snippet ready for the backbone."""

    array: np.ndarray  # (crops * C, S, H, W) float32, the model's input for one snippet (centre crop first)
    index: int  # snippet number in this window's stream, from 0 (since the last reset)
    first_ts: float  # timestamp of its first frame
    last_ts: float  # timestamp of its last (S-th kept) frame
    last_frame: np.ndarray  # that last frame as BGR uint8 (h, w, 3), as pushed (small from a capture)
    poses: np.ndarray | None = (
        None  # with a SnippetPoses: the snippet's pose block (edge_runtime.pose_fusion)
    )


class SnippetPoses:
    """The pose frames of the snippet being collected: ``model`` (a frame -> its poses, e.g.
    :class:`edge_runtime.pose_model.PoseModel`) on every ``every``-th contract frame of snippets spanning
    ``span`` contract frames."""

    def __init__(self, model: Callable[[np.ndarray], np.ndarray], every: int, span: int) -> None:
        if not 1 <= every <= span:
            raise ValueError(
                f"pose every must be in [1, {span}] (each snippet needs a pose frame), got {every}"
            )
        self.model, self.every, self.slots = model, every, pose_slots(span, every)
        self.reset()

    def reset(self) -> None:
        self._poses: list[np.ndarray] = []
        self._aspect = 1.0

    def take(self, sample: int, frame: np.ndarray) -> None:
        """The contract's frame number ``sample`` (since the reset): posed when it is a pose frame."""
        if sample % self.every == 0:
            self._poses.append(self.model(frame))
            self._aspect = frame.shape[1] / frame.shape[0]

    def block(self) -> np.ndarray:
        """The finished snippet's pose block; the next snippet starts empty."""
        block = pose_block(self._poses, self._aspect, self.slots)
        self._poses = []
        return block


class SnippetWindow:
    """Collects one camera's frames into non-overlapping snippets of ``snippet_length`` frames.

    Args:
        preprocess_cfg: the bundle's preprocessing contract.
        snippet_length: ``S``, frames per snippet.
        frame_stride: keep every ``frame_stride``-th frame (1 keeps all).
        crops: crop positions each snippet carries (:class:`~edge_runtime.preprocess.FramePreprocessor`; 3
            for a motion forest that scores the side crops too, the bundle's ``motion_crops``).
        poses: with a pose forest, its pose frames (:class:`SnippetPoses`); each snippet carries its block.
    """

    def __init__(
        self,
        preprocess_cfg: PreprocessConfig,
        snippet_length: int,
        frame_stride: int = 1,
        crops: int = 1,
        poses: SnippetPoses | None = None,
    ) -> None:
        self.span = snippet_span(snippet_length, frame_stride)  # frames of video per snippet (validates both)
        self.cfg = preprocess_cfg
        self.snippet_length = snippet_length
        self.frame_stride = frame_stride
        self._resampler = FrameResampler(preprocess_cfg.frame_rate)
        self._pre = FramePreprocessor(preprocess_cfg, crops)
        self._poses = poses
        self.reset()

    def reset(self) -> None:
        """Forget the partly filled snippet and restart the frame count (e.g. after a camera reconnect)."""
        self._resampler.reset()
        self._pre.reset()
        if self._poses is not None:
            self._poses.reset()
        self._frames_seen = 0  # frames taken (at the contract's rate) since the reset
        self._snippets = 0  # snippets handed out since the reset
        self._kept: list[np.ndarray] = []  # preprocessed frames of the current snippet, each (C, H, W)
        self._first_ts = 0.0
        self._last: tuple[np.ndarray, float, bool] | None = None  # the last frame taken, its time, resized
        self._last_model: np.ndarray | None = None  # flow: the last frame taken, preprocessed

    @property
    def frames_seen(self) -> int:
        """Frames taken (at the contract's rate, repeats included) since creation or the last :meth:`reset`."""
        return self._frames_seen

    @property
    def pending(self) -> int:
        """Frames of the next snippet collected so far (0 .. S-1)."""
        return len(self._kept)

    def push(
        self,
        frame_bgr: np.ndarray,
        timestamp: float,
        *,
        resized: bool = False,
        full: np.ndarray | None = None,
        samples: int | None = None,
    ) -> Snippet | None:
        """Add one BGR uint8 frame (any size; ``resized``: already through
        :func:`~edge_runtime.preprocess.resize_frame`, as the capture thread shrinks it; ``full``: then the
        frame as decoded, which the pose model needs); return the snippet it completes, else None.
        ``samples``: how many samples of the contract's rate the frame fills, when the caller resampled
        (a capture thread with ``frame_rate``: it skips the other frames before decoding them fully); None:
        the window's own resampler counts them from ``timestamp``. A window is fed one way or the other.

        A frame the resampler repeats (a source slower than the contract's rate) fills several samples; it
        completes at most one snippet unless it fills more than ``S * stride`` of them (a source below
        ``rate / (S * stride)`` fps, 2 fps for the surveillance recipe), and then only the newest snippet
        is returned.
        """
        pose_frame = frame_bgr if not resized else full
        if self._poses is not None and pose_frame is None:
            raise ValueError(
                "a window with a pose model needs the frame as decoded (full=) with a resized frame"
            )
        completed: Snippet | None = None
        for _ in range(self._resampler.count(timestamp) if samples is None else samples):
            if self._poses is not None:
                self._poses.take(self._frames_seen, pose_frame)
            snippet = self._take(frame_bgr, float(timestamp), resized)
            completed = snippet or completed
        return completed

    def flush(self) -> Snippet | None:
        """End of a video shorter than one snippet: its frames, padded with the last frame taken (as
        :func:`edge_runtime.snippets.snippet_frame_indices` clamps whole-clip scoring to the last frame: for
        flow, that frame's flow from its predecessor); None when a snippet was completed since the reset (the
        unfinished tail of a longer video is left out, :mod:`edge_runtime.snippets`) or nothing was taken. A
        live camera never calls this: it waits for more frames."""
        if not self._kept or self._last is None or self._snippets:
            return None
        frame, timestamp, resized = self._last
        pad = self._last_model if self._last_model is not None else self._model_frame(frame, resized)
        self._kept += [pad] * (self.snippet_length - len(self._kept))
        snippet = Snippet(
            np.stack(self._kept, axis=1), self._snippets, self._first_ts, timestamp, frame, self._pose_block()
        )
        self._snippets += 1
        self._kept = []
        return snippet

    def _pose_block(self) -> np.ndarray | None:
        return self._poses.block() if self._poses is not None else None

    def _model_frame(self, frame_bgr: np.ndarray, resized: bool) -> np.ndarray:
        return self._pre.from_resized(frame_bgr) if resized else self._pre(frame_bgr)

    def _take(self, frame_bgr: np.ndarray, timestamp: float, resized: bool) -> Snippet | None:
        position = self._frames_seen % self.span  # place of this frame inside its snippet's span
        self._frames_seen += 1
        self._last = (frame_bgr, timestamp, resized)
        if self._pre.cfg.modality == "rgb" and position % self.frame_stride:
            return None  # between sampled frames: never preprocessed
        model_frame = self._model_frame(frame_bgr, resized)  # flow: every frame, for the next one's flow
        self._last_model = model_frame if self._pre.cfg.modality != "rgb" else None
        if position % self.frame_stride:
            return None
        if not self._kept:
            self._first_ts = timestamp
        self._kept.append(model_frame)
        if len(self._kept) < self.snippet_length:
            return None
        snippet = Snippet(
            array=np.stack(self._kept, axis=1),  # (C, S, H, W)
            index=self._snippets,
            first_ts=self._first_ts,
            last_ts=timestamp,
            last_frame=frame_bgr,
            poses=self._pose_block(),
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
