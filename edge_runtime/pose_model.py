"""Several people's poses in a frame: MoveNet MultiPose (OpenVINO IR) and the frames it runs on.

The model (Google's MoveNet MultiPose Lightning, Apache-2.0; ``i3dmtn pose fetch`` writes it as OpenVINO IR)
takes one RGB frame as int32 ``(1, H, W, 3)`` with ``H`` and ``W`` multiples of 32 and gives ``(1, 6, 56)``:
up to six people, each 17 keypoints ``(y, x, score)`` in [0, 1] of the frame, a box and a score (the layout
of :mod:`edge_runtime.pose_stats`). :class:`PoseModel` resizes a BGR frame of any size to ``height`` pixels
high (the width keeping the aspect, rounded to a multiple of 32), so the same frame gives the same poses in
training, in the export's report and on the device.

The model runs on every ``every``-th frame of the contract's frame rate (:func:`pose_frame`): at 15 fps and
``every = 3``, five frames a second, a wrist's move over 0.2 s (every frame gained less on the
cross-validation and cost three times as much: docs/real-video.md).

OpenVINO is imported when a model is loaded (``pip install i3d-mtn-edge[openvino]``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from .backends.base import import_toolkit
from .pose_stats import MAX_PEOPLE, POSE_SIZE

__all__ = ["PoseModel", "PoseModelError", "pose_frame", "pose_input_size"]

_ALIGN = 32  # MoveNet's input sides are multiples of 32


class PoseModelError(ValueError):
    """A pose model file or frame that cannot be used; one line naming it."""


def pose_frame(index: int, every: int) -> bool:
    """Whether the contract's frame ``index`` (0 = a video's or a camera's first) is one the pose model sees."""
    return index % every == 0


def pose_input_size(width: int, height: int, pose_height: int) -> tuple[int, int]:
    """``(W, H)`` the pose model sees a ``width x height`` frame at: ``pose_height`` high, the width keeping the
    aspect, rounded to a multiple of 32 (at least 32)."""
    if pose_height < _ALIGN or pose_height % _ALIGN:
        raise PoseModelError(f"pose_height must be a multiple of {_ALIGN}, >= {_ALIGN}, got {pose_height!r}")
    w = max(_ALIGN, int(round(width * pose_height / height / _ALIGN)) * _ALIGN)
    return w, pose_height


class PoseModel:
    """The pose model of ``path`` (OpenVINO IR ``.xml`` with its ``.bin``) at ``height`` pixels, on the CPU."""

    def __init__(self, path: str | Path, height: int = 384, *, threads: int = 1) -> None:
        self.path = Path(path)
        pose_input_size(32, 32, height)  # checks the height
        self.height = int(height)
        if not self.path.is_file():
            raise PoseModelError(f"pose model {self.path} does not exist (`i3dmtn pose fetch` writes one)")
        ov = import_toolkit("openvino", backend="pose", extra="openvino")
        config = {"INFERENCE_NUM_THREADS": str(int(threads)), "INFERENCE_PRECISION_HINT": "f32"}
        try:
            self._model = ov.Core().compile_model(str(self.path), "CPU", config)
        except Exception as exc:  # OpenVINO raises its own RuntimeError subclasses
            raise PoseModelError(f"pose model {self.path} cannot be loaded: {exc}".splitlines()[0]) from None
        self._request = self._model.create_infer_request()

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """The poses ``(MAX_PEOPLE, POSE_SIZE)`` float32 of one BGR uint8 frame ``(h, w, 3)``."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise PoseModelError(f"a pose frame must be uint8 (h, w, 3) BGR, got {frame.dtype} {frame.shape}")
        h, w = frame.shape[:2]
        size = pose_input_size(w, h, self.height)
        if size != (w, h):
            interpolation = cv2.INTER_AREA if h > self.height else cv2.INTER_LINEAR
            frame = cv2.resize(frame, size, interpolation=interpolation)
        rgb = np.ascontiguousarray(frame[None, :, :, ::-1], dtype=np.int32)  # (1, H, W, 3)
        out = np.asarray(self._request.infer([rgb])[0], np.float32)
        if out.shape != (1, MAX_PEOPLE, POSE_SIZE):
            raise PoseModelError(
                f"pose model {self.path} gave {out.shape}, expected (1, {MAX_PEOPLE}, {POSE_SIZE})"
            )
        return out[0]

    def video(self, frames: Iterable[np.ndarray], every: int) -> np.ndarray:
        """The poses ``(ceil(T / every), MAX_PEOPLE, POSE_SIZE)`` of the frames the model sees
        (:func:`pose_frame`) of a video's ``T`` frames at the contract's rate (BGR, any size, read one by one)."""
        return np.stack([self(f) for i, f in enumerate(frames) if pose_frame(i, every)])
