"""Pose once: the poses of each video's pose frames, computed by the pose model once and kept on disk.

The pose model (:class:`edge_runtime.pose_model.PoseModel`, about 60 ms a frame at 384 px on one core) sees
the contract's frames ``0, every, 2 * every, ...`` (:func:`edge_runtime.pose_model.pose_frame`) of each video,
taken at the contract's frame rate by :func:`edge_runtime.resample.resample_indices`, as whole-clip scoring
and the device take them. :class:`PoseCache` stores them as float32 ``(ceil(T / every), MAX_PEOPLE,
POSE_SIZE)`` per video (:class:`~training.data.video_cache.VideoArrayCache`: keyed by the video's bytes, the
pose model's files and the parameters; resumable; unreadable videos skipped and counted). Folds of a
cross-validation and later runs share the entries.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_runtime.bundle import sha256_file
from edge_runtime.pose_model import PoseModel
from edge_runtime.resample import resample_indices
from edge_runtime.video import VideoReadError, iter_frames, probe_video
from training.data.video_cache import VideoArrayCache

__all__ = ["POSE_CACHE_VERSION", "PoseCache", "video_aspect"]

POSE_CACHE_VERSION = 1


def video_aspect(path: str | Path) -> float:
    """A video file's frame aspect, width / height (the pose statistics measure x in frame heights with it)."""
    info = probe_video(path, verify=False)
    return info.width / info.height


class PoseCache(VideoArrayCache):
    """Poses of videos' pose frames (see the module docstring), by the pose model ``model_path`` (OpenVINO
    IR) at ``height`` pixels, every ``every``-th frame at ``frame_rate`` fps."""

    what = "pose cache"

    def __init__(
        self, root: str | Path, model_path: str | Path, *, frame_rate: float, every: int, height: int
    ):
        xml = Path(model_path)
        weights = xml.with_suffix(".bin")
        model_key = sha256_file(xml)[:16] + (sha256_file(weights)[:16] if weights.is_file() else "")
        params = {"version": POSE_CACHE_VERSION, "model": model_key, "frame_rate": frame_rate,
                  "every": every, "height": height}  # fmt: skip
        super().__init__(root, params)
        self.model_path, self.frame_rate = xml, float(frame_rate)
        self.every, self.height = int(every), int(height)
        self._model: PoseModel | None = None

    def poses(self, path: Path) -> np.ndarray:
        """The poses ``(ceil(T / every), MAX_PEOPLE, POSE_SIZE)`` of the video ``path`` of ``T`` contract frames."""
        return self.load(Path(path))

    def compute(self, path: Path) -> np.ndarray:
        if self._model is None:
            self._model = PoseModel(self.model_path, self.height)
        info = probe_video(path, verify=False)
        taken = resample_indices(info.num_frames, info.fps, self.frame_rate)[:: self.every]  # source frames
        wanted = np.bincount(taken, minlength=info.num_frames)  # pose frames served by each source frame
        poses: list[np.ndarray] = []
        for i, frame in enumerate(iter_frames(path)):
            if i < len(wanted) and wanted[i]:
                poses += [self._model(frame)] * int(wanted[i])
            if len(poses) == len(taken):
                break
        if len(poses) != len(taken):
            raise VideoReadError(
                f"video {path} decoded {len(poses)} of the {len(taken)} pose frames it should give"
            )
        return np.stack(poses).astype(np.float32)
