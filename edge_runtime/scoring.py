"""Streaming scoring: one batched backbone call for the snippets ready now, the head over each camera's ring.

Each new snippet costs one backbone pass; its feature joins the camera's :class:`~edge_runtime.window.FeatureRing`
of the last ``K`` features, and the head scores that window. The camera's score is the head's score of its
newest snippet (``snippet_scores[0, -1]``). Snippets ready on several cameras at once share one backbone
call ``(N,3,S,H,W) -> (N,D)``, as DeepStream batches streams; heads of cameras whose rings hold the same
number of features share one call ``(n,K',D)``. The scorer counts its calls and the seconds spent in the
backbone and in the heads (one clock read around each call: cheap next to any inference).

Whole-clip scoring (:func:`score_clip`) gives the same numbers where the windows align: after snippet ``k``
(``k <= K``) the streaming score equals ``score_clip`` of the first ``k`` snippets' last score.

**The streaming rule** is written once, here: snippet ``i``'s score is the head's score of the newest snippet
of the window of the last ``K`` features ``max(0, i-K+1) .. i`` (:func:`newest_scores` over each window,
:func:`streaming_scores` over a whole video's features). Every caller passes the head as a function
``(n, K', D) -> (n, K')`` snippet scores: the device's backends through :func:`backend_head`, the
workstation's torch head through ``training.evaluate.torch_head``; the evaluation, the export's report and
accuracy control, the trainer's validation and the quality benchmark all score this way.

With a motion forest (:mod:`edge_runtime.motion_fusion`), every one of them composes the same way: each
snippet's row is ``[backbone feature | snippet motion stats]`` and the head function is
``(1 - w) * net_head + w * forest(window stats)`` (:func:`~edge_runtime.motion_fusion.fused_head`). The rule
reads only the newest score of each window, the fused score of that window.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from .backends.base import Backend
from .motion_fusion import MotionFusion, fused_features, fused_head, network_input
from .pose_fusion import pose_rows
from .preprocess import MODALITIES
from .window import FeatureRing

__all__ = [
    "HeadFn",
    "LatencyStats",
    "ScoringError",
    "StreamingScorer",
    "backbone_features",
    "backend_head",
    "newest_scores",
    "score_clip",
    "streaming_scores",
]

HeadFn = Callable[[np.ndarray], np.ndarray]  # windows (n, K', D) float32 -> snippet scores (n, K')

log = logging.getLogger(__name__)


class ScoringError(ValueError):
    """Snippets or model outputs of the wrong shape, or an unknown camera."""


@dataclass(frozen=True)
class LatencyStats:
    """Inference latency of the recent :meth:`StreamingScorer.score` calls (backbone + heads)."""

    count: int  # calls in the window the percentiles are taken over
    p50_ms: float  # NaN while there is none
    p95_ms: float


def _one_input(backend: Backend, role: str) -> str:
    names = backend.input_names
    if len(names) != 1:
        raise ScoringError(f"the {role} must have exactly one input, {backend.name} has {names}")
    return names[0]


def _head_output(head: Backend, wanted: str) -> str:
    if wanted in head.output_names:
        return wanted
    raise ScoringError(f"the head {head.name} has no output {wanted!r}; its outputs are {head.output_names}")


def backbone_features(backbone: Backend, snippets: np.ndarray, max_batch: int | None = None) -> np.ndarray:
    """Features ``(N, D)`` of snippets ``(N, C, S, H, W)``: the backend's one input, its first output, in calls
    of at most ``max_batch`` snippets (None: one call)."""
    return _backbone_features(backbone, _check_snippets(np.asarray(snippets), "snippets"), max_batch)[0]


def backend_head(head: Backend, output: str = "snippet_scores") -> HeadFn:
    """The head backend as the streaming rule's head function (its one input, the scores of ``output``)."""
    name_in, name_out = _one_input(head, "head"), _head_output(head, output)
    return lambda windows: head.infer({name_in: windows})[name_out]


def _head_scores(head: HeadFn, windows: np.ndarray) -> np.ndarray:
    out = np.asarray(head(np.ascontiguousarray(windows, np.float32)), np.float32)
    if out.shape != windows.shape[:2]:
        raise ScoringError(
            f"the head returned {out.shape} scores for windows {windows.shape}; expected (n, K')"
        )
    return out


def newest_scores(head: HeadFn, windows: np.ndarray) -> np.ndarray:
    """The rule for one batch of windows ``(n, K', D)``: the head's score of each window's newest snippet ``(n,)``."""
    return _head_scores(head, windows)[:, -1]


def streaming_scores(
    head: HeadFn,
    features: np.ndarray,
    num_snippets: int,
    *,
    causal: bool = False,
    batch_size: int | None = None,
) -> np.ndarray:
    """Streaming score of every snippet of a video's features ``(n, D)`` (or of videos ``(B, n, D)``): snippet
    ``i``'s is :func:`newest_scores` of the window ``max(0, i-K+1) .. i``, as the device's ring scores it.

    Windows shorter than ``K`` (the ring filling) take one head call per length; the full ones are batched,
    ``batch_size`` windows per call (None: one call). ``causal``: the head's output ``j`` depends on its
    inputs ``0..j`` only (the MTN is built so), so one call over the first ``K`` features gives every
    filling window's newest score at once: the same numbers, fewer calls.

    >>> head = lambda w: w.sum(-1).cumsum(-1)  # a causal toy head: score j = sum of the features 0..j
    >>> streaming_scores(head, np.ones((4, 1), np.float32), 2).tolist()
    [1.0, 2.0, 2.0, 2.0]
    """
    feats = np.asarray(features, np.float32)
    single = feats.ndim == 2
    feats = feats[None] if single else feats  # (B, n, D)
    if feats.ndim != 3 or feats.shape[1] == 0:
        raise ScoringError(
            f"features must have shape (n, D) or (B, n, D) with n >= 1, got {np.shape(features)}"
        )
    if num_snippets < 1:
        raise ScoringError(f"num_snippets must be >= 1, got {num_snippets}")
    b, n, d = feats.shape
    k = num_snippets
    scores = np.empty((b, n), np.float32)
    if causal:
        first_full = min(n, k)  # windows 0..i for i < K are prefixes of the first K features
        scores[:, :first_full] = _head_scores(head, feats[:, :first_full])
        first_full = k
    else:
        first_full = k - 1
        for i in range(min(n, first_full)):  # the ring is filling: one call per length
            scores[:, i] = newest_scores(head, feats[:, : i + 1])
    if n > first_full:  # windows ending at first_full .. n-1 all have length K
        ends = np.arange(first_full, n)
        windows = np.stack([feats[:, e - k + 1 : e + 1] for e in ends], 1).reshape(-1, k, d)  # (B*m, K, D)
        step = batch_size or len(windows)
        parts = [newest_scores(head, windows[lo : lo + step]) for lo in range(0, len(windows), step)]
        scores[:, first_full:] = np.concatenate(parts).reshape(b, len(ends))
    return scores[0] if single else scores


def _backbone_features(backbone: Backend, batch: np.ndarray, max_batch: int | None) -> tuple[np.ndarray, int]:
    """``(N,3,S,H,W) -> (N,D)`` in chunks of at most ``max_batch``; also returns the number of calls."""
    name_in, name_out = _one_input(backbone, "backbone"), backbone.output_names[0]
    step = max_batch or len(batch)
    parts = [backbone.infer({name_in: batch[i : i + step]})[name_out] for i in range(0, len(batch), step)]
    feats = np.concatenate(parts).astype(np.float32, copy=False)
    if feats.ndim != 2 or len(feats) != len(batch):
        raise ScoringError(
            f"the backbone {backbone.name} must return (N, D) features, got {feats.shape} for N={len(batch)}"
        )
    return feats, len(parts)


def _check_snippets(batch: np.ndarray, what: str) -> np.ndarray:
    if batch.ndim != 5 or batch.shape[1] not in MODALITIES.values():
        raise ScoringError(
            f"{what} must have shape (N, C, S, H, W) with C in {sorted(MODALITIES.values())}, got {batch.shape}"
        )
    return np.ascontiguousarray(batch, dtype=np.float32)


def score_clip(
    backbone: Backend,
    head: Backend,
    clip_snippets: np.ndarray,
    *,
    max_batch: int | None = None,
    head_output: str = "snippet_scores",
) -> np.ndarray:
    """Score a whole clip at once: snippets ``(K,3,S,H,W)`` -> snippet scores ``(K,)``."""
    batch = _check_snippets(np.asarray(clip_snippets), "clip snippets")
    if len(batch) == 0:
        raise ScoringError("cannot score a clip of 0 snippets")
    feats, _ = _backbone_features(backbone, batch, max_batch)  # (K, D)
    return _head_scores(backend_head(head, head_output), feats[None])[0]  # (K,)


class StreamingScorer:
    """Scores the newest snippet of each camera against that camera's last ``num_snippets`` features.

    >>> scorer = StreamingScorer(backbone, head, ["cam0", "cam1"], num_snippets=32)  # doctest: +SKIP
    >>> scorer.score({"cam0": snippet0.array, "cam1": snippet1.array})  # doctest: +SKIP
    {'cam0': 0.12, 'cam1': 0.87}

    Args:
        backbone: ``(N,3,S,H,W) -> (N,D)``, one input, features as its first output.
        head: ``(N,K,D) -> head_output (N,K)`` for any ``K >= 1``.
        cameras: the camera names this scorer keeps rings for.
        num_snippets: ``K``, features per ring (the bundle's window).
        max_batch: most snippets per backbone call (an engine's maximum batch); None for no limit.
        head_output: the head output holding per-snippet scores.
        latency_window: calls kept for the latency percentiles.
        motion: the bundle's motion forest: the ring holds ``[feature | motion stats]`` rows and the score is
            the fused one (:mod:`edge_runtime.motion_fusion`); None: the network's score. With its pose forest
            (``motion.pose``) each row also carries the snippet's pose block, given to :meth:`score`.
    """

    def __init__(
        self,
        backbone: Backend,
        head: Backend,
        cameras: Iterable[str],
        num_snippets: int,
        *,
        max_batch: int | None = None,
        head_output: str = "snippet_scores",
        latency_window: int = 512,
        motion: MotionFusion | None = None,
    ) -> None:
        self.backbone, self.head = backbone, head
        self.motion = motion
        self.cameras = tuple(cameras)
        if not self.cameras or len(set(self.cameras)) != len(self.cameras):
            raise ScoringError(f"cameras must be distinct names, at least one, got {list(self.cameras)}")
        if num_snippets < 1:
            raise ScoringError(f"num_snippets must be >= 1, got {num_snippets}")
        if max_batch is not None and max_batch < 1:
            raise ScoringError(f"max_batch must be >= 1 or None, got {max_batch}")
        self.num_snippets, self.max_batch = num_snippets, max_batch
        self._head = fused_head(backend_head(head, head_output), motion)
        _one_input(backbone, "backbone")
        self._rings: dict[str, FeatureRing] = {}  # created once the feature size is known
        self._latency_ms: deque[float] = deque(maxlen=latency_window)
        self.backbone_calls = 0
        self.head_calls = 0
        self.snippets_scored = 0
        self.backbone_s = (
            0.0  # seconds spent in backbone calls and motion statistics (wall clock, this thread)
        )
        self.head_s = 0.0  # seconds spent in head calls

    def ring(self, camera: str) -> FeatureRing | None:
        """The feature ring of ``camera`` (None before its first snippet)."""
        self._check_camera(camera)
        return self._rings.get(camera)

    def reset(self, camera: str | None = None) -> None:
        """Forget the features of ``camera`` (all cameras when None), e.g. after a gap in its frames."""
        for name in [camera] if camera is not None else list(self._rings):
            self._check_camera(name)
            if name in self._rings:
                self._rings[name].reset()

    def _check_camera(self, camera: str) -> None:
        if camera not in self.cameras:
            raise ScoringError(f"unknown camera {camera!r}; this scorer has {list(self.cameras)}")

    def score(
        self, snippets: Mapping[str, np.ndarray], poses: Mapping[str, np.ndarray] | None = None
    ) -> dict[str, float]:
        """Score the snippets ``{camera: (3,S,H,W)}`` ready now (with a pose forest, and their pose blocks
        ``{camera: block}``, :attr:`~edge_runtime.window.Snippet.poses`); returns ``{camera: newest snippet
        score}``."""
        if not snippets:
            return {}
        for camera in snippets:
            self._check_camera(camera)
        start = time.perf_counter()
        names = list(snippets)
        shapes = {tuple(np.shape(snippets[c])) for c in names}
        if len(shapes) != 1:
            raise ScoringError(
                f"snippets ready together must share one shape (3, S, H, W), got {sorted(shapes)}"
            )
        batch = np.stack([np.asarray(snippets[c]) for c in names])  # (N, crops*C, S, H, W)
        net_batch = _check_snippets(network_input(batch, self.motion), "snippets")  # (N, C, S, H, W)
        t_backbone = time.perf_counter()
        feats, calls = _backbone_features(self.backbone, net_batch, self.max_batch)  # (N, D)
        feats = fused_features(feats, batch, self.motion)  # (N, D + stats) with a motion forest
        pose = self.motion.pose if self.motion is not None else None
        if pose is not None:
            if poses is None or set(names) - set(poses):
                raise ScoringError(
                    "a pose forest scores snippets with their pose blocks: poses= names none here"
                )
            feats = pose_rows(feats, np.stack([poses[c] for c in names]), pose)  # (N, D + stats + block)
        self.backbone_s += time.perf_counter() - t_backbone
        self.backbone_calls += calls
        for camera, feature in zip(names, feats, strict=True):
            ring = self._rings.get(camera)
            if ring is None:
                ring = self._rings[camera] = FeatureRing(self.num_snippets, feats.shape[1])
            ring.append(feature)
        by_length: dict[int, list[str]] = {}
        for camera in names:
            by_length.setdefault(len(self._rings[camera]), []).append(camera)
        scores: dict[str, float] = {}
        for group in by_length.values():
            windows = np.stack([self._rings[c].window() for c in group])  # (n, K', D)
            t_head = time.perf_counter()
            newest = newest_scores(self._head, windows)  # (n,)
            self.head_s += time.perf_counter() - t_head
            self.head_calls += 1
            scores.update({c: float(newest[i]) for i, c in enumerate(group)})
        self.snippets_scored += len(names)
        self._latency_ms.append((time.perf_counter() - start) * 1000.0)
        return {c: scores[c] for c in names}

    def latency(self) -> LatencyStats:
        """p50 / p95 of the recent calls' inference time in milliseconds."""
        if not self._latency_ms:
            return LatencyStats(0, float("nan"), float("nan"))
        p50, p95 = np.percentile(np.asarray(self._latency_ms), [50, 95])
        return LatencyStats(len(self._latency_ms), float(p50), float(p95))

    def stats(self) -> dict[str, float | int | None]:
        """Counters, seconds in the backbone / heads so far, and latency as a flat JSON-able dict (for the
        ``/stats`` topic); latency None before any call."""
        lat = self.latency()
        return {
            "backbone_calls": self.backbone_calls,
            "head_calls": self.head_calls,
            "snippets_scored": self.snippets_scored,
            "backbone_s": round(self.backbone_s, 4),
            "head_s": round(self.head_s, 4),
            "latency_ms_p50": round(lat.p50_ms, 3) if lat.count else None,
            "latency_ms_p95": round(lat.p95_ms, 3) if lat.count else None,
        }
