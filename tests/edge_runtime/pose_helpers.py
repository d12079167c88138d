"""For the pose tests: people placed by hand in MoveNet MultiPose's layout, and a real pose-shaped model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_runtime.pose_stats import KEYPOINTS, MAX_PEOPLE, POSE_SIZE


def person(y0: float, x0: float, y1: float, x1: float, score: float = 0.9, *, wrist=None) -> np.ndarray:
    """One person's row: a box, its keypoints spread down its middle (all seen), optionally both wrists at
    ``wrist = (y, x)``."""
    row = np.zeros(POSE_SIZE, np.float32)
    kp = row[: 3 * KEYPOINTS].reshape(KEYPOINTS, 3)
    kp[:, 0] = np.linspace(y0, y1, KEYPOINTS)
    kp[:, 1] = (x0 + x1) / 2
    kp[:, 2] = 0.8
    if wrist is not None:
        kp[[9, 10], :2] = wrist
    row[3 * KEYPOINTS :] = [y0, x0, y1, x1, score]
    return row


def frame(*people: np.ndarray) -> np.ndarray:
    """A frame's poses ``(MAX_PEOPLE, POSE_SIZE)``: the given people, then empty rows."""
    out = np.zeros((MAX_PEOPLE, POSE_SIZE), np.float32)
    for i, p in enumerate(people):
        out[i] = p
    return out


def write_echo_pose_model(path: Path) -> Path:
    """A real OpenVINO IR at ``path`` in the pose model's layout (int32 ``(1, H, W, 3)`` in, ``(1, MAX_PEOPLE,
    POSE_SIZE)`` out) whose first numbers are the input's mean per channel and its shape ``(1, H, W, 3)``."""
    import openvino as ov
    from openvino import opset13 as ops

    image = ops.parameter([1, -1, -1, 3], np.int32, name="input")
    means = ops.reduce_mean(ops.convert(image, np.float32), np.array([1, 2]), keep_dims=False)  # (1, 3)
    shape = ops.unsqueeze(ops.convert(ops.shape_of(image), np.float32), np.array([0]))  # (1, 4)
    rest = ops.constant(np.zeros((1, MAX_PEOPLE * POSE_SIZE - 7), np.float32))
    out = ops.reshape(ops.concat([means, shape, rest], 1), np.array([1, MAX_PEOPLE, POSE_SIZE]), False)
    ov.save_model(ov.Model([out], [image], "echo"), path)
    return path
