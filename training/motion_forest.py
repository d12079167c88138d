"""The motion forest of a run: fitted after the network trains, written next to its checkpoints.

``i3dmtn train`` with ``motion_forest_trees > 0`` (flow input only), once the epochs are done:

1. every window of every *training* video: its snippets taken by the validation path (the frame cache or the
   decoder, :class:`~edge_runtime.preprocess.FramePreprocessor`, the centre crop, no augmentation), the motion
   statistics of each (:mod:`edge_runtime.motion_stats`), and for snippet ``i`` the window of snippets
   ``max(0, i-K+1) .. i`` as the streaming rule forms it (:func:`edge_runtime.motion_fusion.video_window_stats`);
   a window is labelled with its video's label, or, where the video has frame annotations, 1 when a frame of
   its newest snippet is annotated anomalous;
2. a scikit-learn ``RandomForestClassifier(motion_forest_trees, min_samples_leaf=motion_forest_leaf)`` fitted
   on them (seeded by the config's ``seed``), flattened into plain arrays (:func:`forest_arrays`) and written as
   ``motion_forest.npz`` (:class:`edge_runtime.forest.TreeEnsemble`, no pickles);
3. the operating threshold of ``best.pt`` and ``last.pt`` chosen on the validation videos with the *fused*
   score of that forest, each video scored whole as ``evaluate`` and the device score it
   (:mod:`training.video_threshold`), and the validation AUC of the fused, network-only and forest-only scores;
4. with ``motion_forest_data = "train+val"`` (the default), the forest fitted again, as in steps 1-2, on the
   windows of the training *and* validation videos: the shipped forest has seen more scenes, and the threshold
   and validation AUCs stay those of step 3, measured on videos its predecessor never saw. Then
   ``best.pt`` and ``last.pt`` rewritten with the threshold, the AUCs and a reference to the file (name,
   SHA-256, statistics version, weight).

With ``pose_forest_trees > 0`` a pose forest is fitted in steps 2 and 4 on the same windows' pose statistics
and fused in step 3 (:mod:`training.pose_forest`), written as ``pose_forest.npz`` and named by the checkpoints.

:func:`load_checkpoint_fusion` reads them back for ``evaluate`` and ``export``: each file must be next to the
checkpoint with the SHA-256 the checkpoint names.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from edge_runtime.bundle import sha256_file
from edge_runtime.forest import ForestError, TreeEnsemble, load_forest
from edge_runtime.motion_fusion import (
    MotionFusion,
    MotionFusionError,
    crops_motion_stats,
    load_motion_fusion,
    video_window_stats,
)
from edge_runtime.motion_stats import STATS_VERSION
from edge_runtime.pose_fusion import PoseFusion, PoseFusionError
from edge_runtime.pose_stats import POSE_STATS_VERSION
from edge_runtime.video import VideoReadError
from training.checkpoint import CheckpointError
from training.data import DatasetError
from training.pose_forest import POSE_FOREST_FILE, PoseSource, fit_pose_forest, pose_fusion, pose_source
from training.video_threshold import checkpoints_at_video_thresholds, save_checkpoints

__all__ = [
    "FOREST_FILE",
    "fit_forest",
    "fit_motion_forest",
    "forest_arrays",
    "load_checkpoint_fusion",
    "training_windows",
    "video_windows",
]

logger = logging.getLogger(__name__)

FOREST_FILE = "motion_forest.npz"


def forest_arrays(model: Any, stats_version: str = STATS_VERSION) -> TreeEnsemble:
    """A fitted scikit-learn forest classifier (labels 0 / 1) as a :class:`TreeEnsemble` whose ``predict``
    equals ``model.predict_proba(X)[:, 1]``."""
    classes = list(model.classes_)
    column = classes.index(1) if 1 in classes else None
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("feature", "threshold", "left", "right", "value")}
    roots, offset = [], 0
    for est in model.estimators_:
        tree = est.tree_
        leaf = tree.children_left < 0
        counts = tree.value[:, 0, :]  # (nodes, classes): class fractions or weighted counts
        prob = counts[:, column] / counts.sum(axis=1) if column is not None else np.zeros(tree.node_count)
        parts["feature"].append(np.where(leaf, -1, tree.feature))
        parts["threshold"].append(np.where(leaf, 0.0, tree.threshold))
        parts["left"].append(np.where(leaf, -1, tree.children_left + offset))
        parts["right"].append(np.where(leaf, -1, tree.children_right + offset))
        parts["value"].append(np.where(leaf, prob, 0.0))
        roots.append(offset)
        offset += tree.node_count
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    return TreeEnsemble(
        feature=cat["feature"].astype(np.int32),
        threshold=cat["threshold"].astype(np.float64),
        left=cat["left"].astype(np.int32),
        right=cat["right"].astype(np.int32),
        value=cat["value"].astype(np.float64),
        roots=np.asarray(roots, np.int32),
        n_features=int(model.n_features_in_),
        stats_version=stats_version,
    )


def video_windows(
    dataset: Any, index: int, num_snippets: int, crops: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` of video ``index`` of ``dataset``: the window statistics of each of its snippets (``(n, crops
    * WINDOW_STATS_SIZE)``, the centre crop's first, :func:`~edge_runtime.motion_fusion.crops_forest` scores
    them) and their labels (see the module docstring); raises :class:`~edge_runtime.video.VideoReadError`."""
    record = dataset.records[index]
    snippets, frames = dataset.video_snippets(index, crops)  # (n, crops*2, S, H, W), (n, S) source frames
    x = video_window_stats(crops_motion_stats(snippets, crops), num_snippets)
    if record.frame_labels is not None:
        newest = np.asarray(record.frame_labels)[np.minimum(frames, len(record.frame_labels) - 1)]
        return x, (newest.max(axis=1) > 0.5).astype(np.int64)
    return x, np.full(len(snippets), int(record.label), np.int64)


@dataclass
class Windows:
    """The training windows of some videos: motion statistics ``x``, labels ``y`` and, with a pose forest, the
    same windows' pose statistics ``pose``."""

    x: np.ndarray
    y: np.ndarray
    pose: np.ndarray | None = None


def window_sets(
    dataset: Any, num_snippets: int, poses: PoseSource | None = None, *, progress: bool = True
) -> Windows:
    """:func:`video_windows` of every video of ``dataset`` (an :class:`~training.data.AnomalyVideoDataset`)
    and, with ``poses``, their pose statistics; unreadable videos skipped with a warning."""
    xs, ys, ps, skipped = [], [], [], 0
    for index in tqdm(range(len(dataset)), desc="motion statistics", unit="video", disable=not progress):
        path = dataset.records[index].path
        try:
            x, y = video_windows(dataset, index, num_snippets)
            if poses is not None:
                ps.append(poses.windows(path, len(x), num_snippets))
        except VideoReadError as exc:
            logger.warning("motion forest: skipping video %s: %s", path, exc)
            skipped += 1
            continue
        xs.append(x)
        ys.append(y)
    if skipped:
        logger.warning("motion forest: %d video(s) skipped (unreadable)", skipped)
    if not xs:
        raise DatasetError("motion_forest_trees: no training video could be read for the motion statistics")
    return Windows(np.concatenate(xs), np.concatenate(ys), np.concatenate(ps) if poses is not None else None)


def training_windows(
    dataset: Any, num_snippets: int, *, progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)``: :func:`video_windows` of every video of ``dataset``, unreadable videos skipped."""
    windows = window_sets(dataset, num_snippets, progress=progress)
    return windows.x, windows.y


def fit_forest(x: np.ndarray, y: np.ndarray, config: Mapping[str, Any]) -> TreeEnsemble:
    """The run's forest on windows ``(X, y)``: ``motion_forest_trees`` trees seeded by ``seed``, leaves of at
    least ``motion_forest_leaf`` windows, as plain arrays."""
    from sklearn.ensemble import RandomForestClassifier

    trees, seed, leaf = (int(config[k]) for k in ("motion_forest_trees", "seed", "motion_forest_leaf"))
    model = RandomForestClassifier(trees, min_samples_leaf=leaf, random_state=seed, n_jobs=1)
    return forest_arrays(model.fit(x, y))


def _reference(path: Path, config: Mapping[str, Any], val: Mapping[str, float]) -> dict[str, Any]:
    return {
        "file": path.name,
        "sha256": sha256_file(path),
        "stats_version": STATS_VERSION,
        "weight": float(config["motion_weight"]),
        "crops": int(config["motion_crops"]),  # the crop positions it scores (edge_runtime.motion_fusion)
        "trees": int(config["motion_forest_trees"]),
        "val_auc": dict(val),
    }


def _pose_reference(path: Path, pose: PoseFusion, config: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "file": path.name,
        "sha256": sha256_file(path),
        "stats_version": POSE_STATS_VERSION,
        "weight": pose.weight,
        "every": pose.every,
        "height": pose.height,
        "trees": int(config["pose_forest_trees"]),
    }


def _training_forests(
    config: Mapping[str, Any], datasets: list[Any], progress: bool
) -> tuple[TreeEnsemble, PoseFusion | None]:
    """The seeded motion forest of the windows of ``datasets`` and, with ``pose_forest_trees``, the pose
    forest of the same windows (step 2 of the module docstring)."""
    posing = pose_source(config) if config["pose_forest_trees"] else None
    parts = [window_sets(d, int(config["num_snippets"]), posing, progress=progress) for d in datasets]
    y = np.concatenate([p.y for p in parts])
    if len(set(y.tolist())) < 2:
        raise DatasetError(
            f"motion_forest_trees: the training windows hold one class only ({len(y)} windows)"
        )
    logger.info("fitting the motion forest: %d trees on %d windows (%d anomalous)",
                config["motion_forest_trees"], len(y), int(y.sum()))  # fmt: skip
    forest = fit_forest(np.concatenate([p.x for p in parts]), y, config)
    if posing is None:
        return forest, None
    logger.info("fitting the pose forest: %d trees", config["pose_forest_trees"])
    return forest, pose_fusion(config, fit_pose_forest(np.concatenate([p.pose for p in parts]), y, config))


def _write(forest: TreeEnsemble, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    forest.save(tmp)
    os.replace(tmp, path)
    return path


def fit_motion_forest(trainer: Any, train_set: Any, val_set: Any, *, progress: bool = True) -> Path:
    """Fit the run's forests and attach them to ``best.pt`` and ``last.pt`` (steps 1-4 of the module
    docstring; the pose forest beside the motion forest, :mod:`training.pose_forest`). Every rank fits the same
    seeded forests (the validation is shared); rank 0 writes."""
    config, out = trainer.config, trainer.output_dir
    forest, pose = _training_forests(config, [train_set], progress)  # fitted on centre crops
    fusion = MotionFusion(forest, float(config["motion_weight"]), int(config["motion_crops"]), pose)
    checkpoints, same = checkpoints_at_video_thresholds(trainer, val_set, fusion)
    for name, (_, val) in checkpoints.items():
        logger.info("%s with the forests: validation AUC %s", name,
                    ", ".join(f"{part} {auc:.4f}" for part, auc in val.items()))  # fmt: skip
    if config["motion_forest_data"] == "train+val" and len(val_set):
        forest, pose = _training_forests(config, [train_set, val_set], progress)
    path = out / FOREST_FILE
    if trainer.dist.is_main:
        _write(forest, path)
        pose_ref = (
            _pose_reference(_write(pose.forest, out / POSE_FOREST_FILE), pose, config) if pose else None
        )
        for ckpt, val in checkpoints.values():
            ckpt["motion_forest"] = _reference(path, config, val)
            if pose_ref is not None:
                ckpt["pose_forest"] = pose_ref
        save_checkpoints(out, {name: ckpt for name, (ckpt, _) in checkpoints.items()}, same)
    return path


def _named_file(checkpoint: str | Path, ref: Mapping[str, Any], default: str, what: str) -> Path:
    """The file a checkpoint's reference ``ref`` names beside it, checked against its SHA-256."""
    path = Path(checkpoint).parent / str(ref.get("file", default))
    if not path.is_file():
        raise CheckpointError(f"checkpoint {checkpoint} names the {what} {path}, which is missing")
    if sha256_file(path) != ref.get("sha256"):
        raise CheckpointError(f"{path} changed since checkpoint {checkpoint} was written (SHA-256 differs)")
    return path


def load_checkpoint_fusion(checkpoint: str | Path, ckpt: Mapping[str, Any]) -> MotionFusion | None:
    """The forests a checkpoint names (None when it names no motion forest; its pose forest, if any, as the
    fusion's ``pose``), each checked against its SHA-256; raises :class:`~training.checkpoint.CheckpointError`
    naming the file."""
    ref = ckpt.get("motion_forest")
    if not ref:
        return None
    path = _named_file(checkpoint, ref, FOREST_FILE, "motion forest")
    pose_ref = ckpt.get("pose_forest")
    try:
        weight = float(ref.get("weight", ckpt["config"]["motion_weight"]))
        fusion = load_motion_fusion(path, weight, int(ref.get("crops", 1)))
        if not pose_ref:
            return fusion
        pose_path = _named_file(checkpoint, pose_ref, POSE_FOREST_FILE, "pose forest")
        pose = pose_fusion(ckpt["config"], load_forest(pose_path), float(pose_ref["weight"]))
    except (ForestError, MotionFusionError, PoseFusionError) as exc:
        raise CheckpointError(str(exc)) from None
    return dataclasses.replace(fusion, pose=pose)
