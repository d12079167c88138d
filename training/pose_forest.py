"""The pose forest of a run: several people's poses beside the motion forest, on the workstation.

With ``pose_forest_trees > 0`` (beside a motion forest), :mod:`training.motion_forest` fits a second forest
when it fits the motion forest, on the same windows and labels: for snippet ``i`` of a training video, the
pose statistics (:mod:`edge_runtime.pose_stats`) of the pose frames of its window ``max(0, i-K+1) .. i``, as
the pose head forms them (:mod:`edge_runtime.pose_fusion`). The fused threshold, the validation AUCs and the
refit on train + val follow the motion forest's steps; the forest is written as ``pose_forest.npz`` beside
the checkpoints, which name it (file, SHA-256, statistics version, weight, every, height).

Poses come from the pose cache (:class:`training.data.pose_cache.PoseCache`, in ``cache_dir()/poses``: every
video is posed once, whatever run or fold scores it) by the pose model ``pose_model`` (default: the one
``i3dmtn pose fetch`` wrote; nothing is downloaded here).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.forest import TreeEnsemble
from edge_runtime.pose_fusion import PoseFusion, video_pose_blocks, window_poses
from edge_runtime.pose_stats import POSE_STATS_VERSION, window_pose_stats
from edge_runtime.resample import resample_indices
from edge_runtime.video import probe_video
from training.data import DatasetError
from training.data.pose_cache import PoseCache
from training.pose.model_store import PoseModelError, find_pose_model
from training.user_cache import cache_dir

__all__ = ["POSE_FOREST_FILE", "PoseSource", "pose_fusion", "pose_model_path", "pose_source"]

POSE_FOREST_FILE = "pose_forest.npz"


def pose_fusion(config: Mapping[str, Any], forest: TreeEnsemble, weight: float | None = None) -> PoseFusion:
    """``forest`` at the run's ``pose_weight`` (or ``weight``), posing as the config says."""
    return PoseFusion(
        forest,
        float(config["pose_weight"] if weight is None else weight),
        snippet_span=int(config["clip_length"]) * int(config["frame_stride"]),
        every=int(config["pose_every"]),
        height=int(config["pose_height"]),
    )


def _model_path(name: str) -> Path:
    """The pose model's IR: ``pose_model`` when set, else the one ``i3dmtn pose fetch`` wrote; one line if none."""
    if name:
        path = Path(name).expanduser()
        if not path.is_file():
            raise DatasetError(f"config key 'pose_model': {path} does not exist (an OpenVINO IR .xml)")
        return path
    try:
        found = find_pose_model()
    except PoseModelError as exc:
        raise DatasetError(f"the pose model: {exc}") from None
    if found is None:
        raise DatasetError(
            "pose_forest_trees needs the pose model: run `i3dmtn pose fetch` (or set pose_model)"
        )
    return found


class PoseSource:
    """Whole videos' pose blocks and pose windows from the pose cache in ``root`` (see the module docstring):
    the pose model ``model`` on every ``every``-th frame at ``frame_rate``, ``height`` pixels high, in snippets
    spanning ``span`` contract frames."""

    def __init__(
        self, root: Path, model: Path, *, frame_rate: float, every: int, height: int, span: int
    ) -> None:
        self.frame_rate, self.every, self.span = float(frame_rate), int(every), int(span)
        self.cache = PoseCache(root, model, frame_rate=frame_rate, every=every, height=height)

    def blocks(self, path: Path, num_snippets: int) -> np.ndarray:
        """The pose blocks ``(num_snippets, block)`` of the video ``path`` scored whole."""
        info = probe_video(path, verify=False)
        samples = len(resample_indices(info.num_frames, info.fps, self.frame_rate))
        return video_pose_blocks(
            self.cache.poses(path), samples, num_snippets, span=self.span, every=self.every,
            aspect=info.width / info.height,
        )  # fmt: skip

    def windows(self, path: Path, num_snippets: int, k: int) -> np.ndarray:
        """The pose statistics ``(num_snippets, POSE_STATS_SIZE)`` of each snippet's window of ``k``."""
        blocks = self.blocks(path, num_snippets)
        return np.stack(
            [window_pose_stats(*window_poses(blocks[max(0, i - k + 1) : i + 1])) for i in range(num_snippets)]
        )


@functools.cache
def _source(root: str, model: str, frame_rate: float, every: int, height: int, span: int) -> PoseSource:
    return PoseSource(Path(root), Path(model), frame_rate=frame_rate, every=every, height=height, span=span)


def pose_model_path(config: Mapping[str, Any]) -> Path:
    """The run's pose model (OpenVINO IR ``.xml``): ``pose_model``, else the one ``i3dmtn pose fetch`` wrote;
    raises :class:`~training.data.DatasetError` (one line) when there is none."""
    return _model_path(str(config["pose_model"]))


def pose_source(config: Mapping[str, Any]) -> PoseSource:
    """The run's pose source (one per model and parameters in a process, so its cache's keys are hashed once)."""
    model = pose_model_path(config)
    span = int(config["clip_length"]) * int(config["frame_stride"])
    every, height = int(config["pose_every"]), int(config["pose_height"])
    return _source(str(cache_dir() / "poses"), str(model), float(config["frame_rate"]), every, height, span)


def fit_pose_forest(x: np.ndarray, y: np.ndarray, config: Mapping[str, Any]) -> TreeEnsemble:
    """The run's pose forest on windows ``(X, y)``: ``pose_forest_trees`` trees seeded by ``seed``, leaves of at
    least ``pose_forest_leaf`` windows, as plain arrays."""
    from sklearn.ensemble import RandomForestClassifier

    from training.motion_forest import forest_arrays

    trees, seed, leaf = (int(config[k]) for k in ("pose_forest_trees", "seed", "pose_forest_leaf"))
    model = RandomForestClassifier(trees, min_samples_leaf=leaf, random_state=seed, n_jobs=1)
    return forest_arrays(model.fit(x, y), POSE_STATS_VERSION)
