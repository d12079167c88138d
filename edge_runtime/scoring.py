"""Streaming scoring: one batched backbone call for the snippets ready now, the head over each camera's ring.

Each new snippet costs one backbone pass; its feature joins the camera's :class:`~edge_runtime.window.FeatureRing`
of the last ``K`` features, and the head scores that window. The camera's score is the head's score of its
newest snippet (``snippet_scores[0, -1]``). Snippets ready on several cameras at once share one backbone
call ``(N,3,S,H,W) -> (N,D)``, as DeepStream batches streams; heads of cameras whose rings hold the same
number of features share one call ``(n,K',D)``. The scorer counts its calls and the seconds spent in the
backbone and in the heads (one clock read around each call: cheap next to any inference).

Whole-clip scoring (:func:`score_clip`) gives the same numbers where the windows align: after snippet ``k``
(``k <= K``) the streaming score equals ``score_clip`` of the first ``k`` snippets' last score.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from .backends.base import Backend
from .preprocess import MODALITIES
from .window import FeatureRing

__all__ = ["LatencyStats", "ScoringError", "StreamingScorer", "score_clip"]

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
    out = head.infer({_one_input(head, "head"): feats[None]})[_head_output(head, head_output)]  # (1, K)
    return np.asarray(out, np.float32).reshape(len(batch))


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
    ) -> None:
        self.backbone, self.head = backbone, head
        self.cameras = tuple(cameras)
        if not self.cameras or len(set(self.cameras)) != len(self.cameras):
            raise ScoringError(f"cameras must be distinct names, at least one, got {list(self.cameras)}")
        if num_snippets < 1:
            raise ScoringError(f"num_snippets must be >= 1, got {num_snippets}")
        if max_batch is not None and max_batch < 1:
            raise ScoringError(f"max_batch must be >= 1 or None, got {max_batch}")
        self.num_snippets, self.max_batch = num_snippets, max_batch
        self._head_in = _one_input(head, "head")
        self._head_out = _head_output(head, head_output)
        _one_input(backbone, "backbone")
        self._rings: dict[str, FeatureRing] = {}  # created once the feature size is known
        self._latency_ms: deque[float] = deque(maxlen=latency_window)
        self.backbone_calls = 0
        self.head_calls = 0
        self.snippets_scored = 0
        self.backbone_s = 0.0  # seconds spent in backbone calls (wall clock, this thread)
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

    def score(self, snippets: Mapping[str, np.ndarray]) -> dict[str, float]:
        """Score the snippets ``{camera: (3,S,H,W)}`` ready now; returns ``{camera: newest snippet score}``."""
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
        batch = _check_snippets(np.stack([np.asarray(snippets[c]) for c in names]), "snippets")  # (N,3,S,H,W)
        t_backbone = time.perf_counter()
        feats, calls = _backbone_features(self.backbone, batch, self.max_batch)  # (N, D)
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
            out = np.asarray(self.head.infer({self._head_in: windows})[self._head_out])  # (n, K')
            self.head_s += time.perf_counter() - t_head
            self.head_calls += 1
            if out.shape != windows.shape[:2]:
                raise ScoringError(
                    f"the head {self.head.name} returned {out.shape} scores for windows {windows.shape}"
                )
            scores.update({c: float(out[i, -1]) for i, c in enumerate(group)})
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
