"""Scoring whole videos with the runtime backends, as the device scores a camera.

Each snippet of a video goes through the backbone backend (batched), and snippet ``i``'s score follows the
device's streaming rule (:func:`edge_runtime.scoring.streaming_scores`: the head over the last ``K`` features,
the newest snippet's score). A video's score is its **max snippet score** (what the device's
events fire on, and the trainer's validation score); frame scores are the snippet scores spread over their
frames. Videos are decoded once and every model variant scores the same preprocessed snippets. With the
run's motion forest (``fusion``) every variant's score is the fused one (:mod:`edge_runtime.motion_fusion`):
the forest is the same for FP32 and INT8, so the gate compares fused with fused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edge_runtime.backends.base import Backend
from edge_runtime.motion_fusion import MotionFusion, fused_features, fused_head, motion_crops, network_input
from edge_runtime.pose_fusion import pose_rows
from edge_runtime.preprocess import PreprocessConfig
from edge_runtime.scoring import backbone_features, backend_head, streaming_scores
from edge_runtime.snippets import complete_snippets, frame_to_snippet
from training.data import VideoRecord, iter_snippet_batches

__all__ = ["VideoScores", "score_with_backends"]

log = logging.getLogger(__name__)


@dataclass
class VideoScores:
    """Per-video scores of one model variant over a list of videos."""

    keys: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    snippet_scores: list[np.ndarray] = field(default_factory=list)  # (n_i,) per video
    frame_scores: list[np.ndarray] = field(default_factory=list)  # (frames_i,) per video
    frame_labels: list[np.ndarray | None] = field(default_factory=list)
    # per video: frames (samples at the contract's frame rate, if it has one) per second, which says when each
    # snippet's score is due
    fps: list[float] = field(default_factory=list)
    # per video: the snippets the device scores when it plays the file, the whole ones
    # (:func:`edge_runtime.snippets.complete_snippets`); the padded last snippet counts in the video's score
    # but the device never sees it. Empty: every snippet (scores made by hand)
    complete: list[int] = field(default_factory=list)

    @property
    def video_scores(self) -> np.ndarray:
        return np.array([float(s.max()) for s in self.snippet_scores])


def score_with_backends(
    models: Mapping[str, tuple[Backend, Sequence[Backend]]],
    records: Sequence[VideoRecord],
    *,
    preprocess: PreprocessConfig,
    snippet_length: int,
    frame_stride: int,
    window: int,
    batch_size: int = 8,
    desc: str = "scoring",
    fusion: MotionFusion | None = None,
    poses: Callable[[Path, int], np.ndarray] | None = None,
    progress: bool = True,
) -> dict[str, list[VideoScores]]:
    """Score ``records`` with each ``name -> (backbone, [head, ...])``; returns ``name -> [VideoScores per head]``.
    ``poses``: with a pose forest, a whole video's pose blocks ``(path, num_snippets) -> blocks``
    (``training.pose_forest.PoseSource.blocks``). ``progress``: a bar on a terminal."""
    results = {name: [VideoScores() for _ in heads] for name, (_, heads) in models.items()}
    for rec in tqdm(records, desc=desc, unit="video", leave=False, disable=None if progress else True):
        batches = list(
            iter_snippet_batches(
                rec.path, snippet_length, preprocess, frame_stride, batch_size, motion_crops(fusion)
            )
        )
        spread = frame_to_snippet(
            rec.num_frames, snippet_length, frame_stride, fps=rec.fps, rate=preprocess.frame_rate
        )
        whole = complete_snippets(
            rec.num_frames, snippet_length, frame_stride, fps=rec.fps, rate=preprocess.frame_rate
        )
        for name, (backbone, heads) in models.items():
            feats = np.concatenate(
                [
                    fused_features(backbone_features(backbone, network_input(b, fusion)), b, fusion)
                    for b in batches
                ]
            )
            if fusion is not None and fusion.pose is not None:
                if poses is None:
                    raise ValueError("a pose forest scores videos with their pose blocks: poses= is None")
                feats = pose_rows(feats, poses(rec.path, len(feats)), fusion.pose)
            for out, head in zip(results[name], heads, strict=True):
                snip = streaming_scores(fused_head(backend_head(head), fusion), feats, window)
                out.keys.append(rec.key)
                out.labels.append(rec.label)
                out.snippet_scores.append(snip)
                out.frame_scores.append(snip[np.minimum(spread, len(snip) - 1)])
                out.frame_labels.append(rec.frame_labels)
                out.fps.append(preprocess.frame_rate or rec.fps)
                out.complete.append(whole)
    return results
