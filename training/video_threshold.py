"""The operating threshold of a run, chosen on whole validation videos.

Every epoch the trainer validates on items of ``K`` snippets of each video: enough to rank epochs, and cheap.
``evaluate`` and the device score every snippet of a video and keep the highest, so a threshold chosen on the
items' scores is applied to other scores (on long videos an item can miss the snippets where something
happens). After training, ``train`` scores each validation video whole, as ``evaluate`` scores it
(:func:`training.evaluate.score_video`; a head-only run's videos from their cached features, all of them), and
writes Youden's threshold on those scores into ``best.pt`` and ``last.pt``. With a motion forest the scores are
fused (:mod:`training.motion_forest`), and the network-only and forest-only AUCs come with them.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.motion_fusion import MotionFusion
from edge_runtime.scoring import streaming_scores
from edge_runtime.video import VideoReadError
from training.checkpoint import copy_checkpoint, load_model_state, read_checkpoint, save_checkpoint
from training.data import DatasetError
from training.evaluate import score_video, torch_head
from training.feature_dataset import FeatureDataset
from training.metrics import video_metrics

__all__ = [
    "checkpoints_at_video_thresholds",
    "save_checkpoints",
    "validation_video_scores",
    "write_video_thresholds",
]

logger = logging.getLogger(__name__)


def validation_video_scores(
    trainer: Any, val_set: Any, fusion: MotionFusion | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(labels, scores)`` of the validation videos, each scored whole: ``scores["network"]`` (with ``fusion``,
    ``"fused"`` and each of its parts, ``"network"``, ``"forest"`` and with a pose forest ``"pose"``), one video
    score each. Unreadable videos are warned and skipped."""
    if isinstance(val_set, FeatureDataset):
        if fusion is not None:
            raise ValueError("the motion forest needs the videos' flow; head-only runs hold features")
        return _head_only_scores(trainer, val_set)
    names = ("fused", *fusion.parts) if fusion is not None else ("network",)
    labels: list[int] = []
    scores: dict[str, list[float]] = {name: [] for name in names}
    for record in val_set.records:
        try:
            result = score_video(trainer.model.eval(), record, trainer.config, trainer.device, fusion=fusion)
        except VideoReadError as exc:
            logger.warning("skipping validation video %s: %s", record.path, exc)
            continue
        labels.append(int(record.label))
        scores[names[0]].append(result.video_score)
        for name, part in result.parts.items():  # with a forest: the network-only and forest-only scores
            scores[name].append(float(part.max()))
    if not labels:
        raise DatasetError("no validation video could be scored whole (every one was unreadable)")
    return np.asarray(labels, np.int64), {name: np.asarray(s) for name, s in scores.items()}


def _head_only_scores(trainer: Any, val_set: FeatureDataset) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A head-only run's validation videos scored whole from their cached features (every snippet's)."""
    head, k = torch_head(trainer.model.eval().head, trainer.device), int(trainer.config["num_snippets"])
    scores = [streaming_scores(head, val_set.load(i)[0], k).max() for i in range(len(val_set))]
    return np.asarray(val_set.labels, np.int64), {"network": np.asarray(scores, np.float64)}


def _threshold_and_aucs(
    trainer: Any, val_set: Any, fusion: MotionFusion | None
) -> tuple[float | None, dict[str, float]]:
    """Youden's threshold on the validation videos' scores (fused with ``fusion``) and each score's AUC."""
    labels, scores = validation_video_scores(trainer, val_set, fusion)
    metrics = {name: video_metrics(labels, s) for name, s in scores.items()}
    thr = metrics["fused" if fusion is not None else "network"]["optimal_threshold"]
    return (float(thr) if math.isfinite(thr) else None), {n: float(m["auc_roc"]) for n, m in metrics.items()}


def checkpoints_at_video_thresholds(
    trainer: Any, val_set: Any, fusion: MotionFusion | None = None
) -> tuple[dict[str, tuple[dict[str, Any], dict[str, float]]], bool]:
    """``best.pt`` and ``last.pt`` of the run, read, with the threshold of whole validation videos set, and
    their validation AUCs: ``({name: (checkpoint, aucs)}, same)``; ``same`` when ``best.pt`` is ``last.pt``
    (then only ``last.pt`` is read). Nothing is written. The model ends with ``last.pt``'s weights."""
    out = trainer.output_dir
    best, last = out / "best.pt", out / "last.pt"
    same = best.is_file() and os.path.samefile(best, last)
    checkpoints = {}
    for name in ("last.pt",) if same else ("best.pt", "last.pt"):  # last.pt last: the model ends as trained
        ckpt = read_checkpoint(out / name, map_location=trainer.device)
        load_model_state(trainer.model, ckpt["model"], out / name)
        ckpt["threshold"], aucs = _threshold_and_aucs(trainer, val_set, fusion)
        checkpoints[name] = ckpt, aucs
    return checkpoints, same


def write_video_thresholds(trainer: Any, val_set: Any) -> None:
    """Set the threshold of ``best.pt`` and ``last.pt`` to the one of whole validation videos (a run without
    a motion forest; with one, :func:`training.motion_forest.fit_motion_forest` does it, fused). Rank 0 writes."""
    checkpoints, same = checkpoints_at_video_thresholds(trainer, val_set)
    for name, (ckpt, aucs) in checkpoints.items():
        logger.info("%s: threshold %s on the whole validation videos (video AUC %.4f)",
                    name, ckpt["threshold"], aucs["network"])  # fmt: skip
    if trainer.dist.is_main:
        save_checkpoints(trainer.output_dir, {name: ckpt for name, (ckpt, _) in checkpoints.items()}, same)


def save_checkpoints(out: Path, checkpoints: dict[str, dict[str, Any]], same: bool) -> None:
    """Write the checkpoints of :func:`checkpoints_at_video_thresholds` back into the run folder ``out``
    (``best.pt`` again as a link to ``last.pt`` when ``same``)."""
    for name, ckpt in checkpoints.items():
        save_checkpoint(out / name, ckpt)
    if same:
        copy_checkpoint(out / "last.pt", out / "best.pt")
