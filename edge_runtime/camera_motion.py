"""A moving camera's motion taken out of the flow (the contract's ``flow_camera_motion``).

A panning, zooming, shaking or hand-held camera moves the whole frame, which is not what people do; people
cover less than half of a surveillance frame. Two ways to take the camera's motion out:

- ``"median"``: subtract the flow's median vector (:func:`camera_shift`), a camera's pan. DIS follows a large
  motion less exactly than a small one, so what is left of a moving camera on a still scene is DIS's error on
  that motion, several times the noise of a still camera; a zoom or a turn is not a single vector and stays;
- ``"align"``: fit the camera's motion as a similarity (shift, zoom and turn: :func:`camera_similarity`) to the
  half of the flow it fits best, move the frame back by it so that its background lines up with the previous
  frame, compute the flow again between the two and subtract that flow's median (what the fit missed). On the
  reference clips re-made as a hand-held camera films them, a still scene's residue falls to a third of the
  median's, and a zooming camera's motion goes too; it costs a second DIS pass, the fit and a warp
  (docs/real-video.md, "Aligned before the flow").

``"keep"`` leaves the flow as computed. numpy + OpenCV only: this runs on the edge device.

>>> flow = np.zeros((4, 4, 2), np.float32)
>>> flow[..., 0] = 2.0  # the whole frame 2 px to the right
>>> float(abs(without_camera_motion("median", None, None, None, flow)).max())
0.0
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

__all__ = ["camera_shift", "camera_similarity", "without_camera_motion"]

FIT_STEP = 4  # pixels between the flow vectors the similarity is fitted to (1/16 of them)
FIT_ROUNDS = 2  # least-squares fits, each to the half of the vectors the previous one fits best


def camera_shift(flow: np.ndarray) -> np.ndarray:
    """The camera's pan in a flow frame ``(h, w, 2)``: its median vector ``(dx, dy)``."""
    return np.median(flow.reshape(-1, 2), axis=0)


def camera_similarity(flow: np.ndarray) -> np.ndarray:
    """The camera's motion in a flow frame ``(h, w, 2)`` as a 2 x 3 map ``M``: a pixel at ``(x, y)`` moved to
    ``M @ (x, y, 1)``, with ``M`` a similarity (shift ``a, b``, zoom ``1 + s``, turn ``r``).

    Started from the median vector, fitted by least squares :data:`FIT_ROUNDS` times, each time to the half of
    the vectors (every :data:`FIT_STEP`-th pixel) that the previous fit left the smallest residue on: what
    people do, the larger part of the residue, drops out.

    >>> ys, xs = np.mgrid[0:32, 0:48].astype(np.float32)
    >>> zoom = np.stack([0.1 * (xs - 24), 0.1 * (ys - 16)], axis=-1)  # 10 % in, about the centre
    >>> (np.round(camera_similarity(zoom), 3) + 0.0).tolist()
    [[1.1, 0.0, -2.4], [0.0, 1.1, -1.6]]
    """
    h, w = flow.shape[:2]
    cx, cy = (w - 1) / 2, (h - 1) / 2  # centred coordinates keep the normal equations well conditioned
    ys, xs = np.mgrid[0:h:FIT_STEP, 0:w:FIT_STEP]
    x, y = (xs.ravel() - cx).astype(np.float64), (ys.ravel() - cy).astype(np.float64)
    one, zero = np.ones_like(x), np.zeros_like(x)
    # unknowns (a, b, s, r): u = a + s x - r y, v = b + r x + s y; u's rows, then v's
    design = np.concatenate([np.stack([one, zero, x, -y], 1), np.stack([zero, one, y, x], 1)])
    sampled = flow[::FIT_STEP, ::FIT_STEP].reshape(-1, 2).astype(np.float64)
    target = np.concatenate([sampled[:, 0], sampled[:, 1]])
    n, half = len(sampled), len(sampled) // 2
    params = np.array([*np.median(sampled, axis=0), 0.0, 0.0])
    for _ in range(FIT_ROUNDS):
        residue = target - design @ params
        squared = residue[:n] ** 2 + residue[n:] ** 2
        best = np.tile(squared <= np.partition(squared, half)[half], 2)
        params = np.linalg.solve(design[best].T @ design[best], design[best].T @ target[best])
    a, b, s, r = params
    return np.array([[1 + s, -r, a - s * cx + r * cy], [r, 1 + s, b - r * cx - s * cy]])


def without_camera_motion(
    mode: str, dis: Any, prev: np.ndarray | None, grey: np.ndarray | None, flow: np.ndarray
) -> np.ndarray:
    """``flow`` (``dis``'s flow from the grey frame ``prev`` to ``grey``) with the camera's motion taken out as
    ``mode`` says (``"keep"``, ``"median"`` or ``"align"``; ``PreprocessConfig`` checked it)."""
    if mode == "keep":
        return flow
    if mode == "median":
        return flow - camera_shift(flow)
    back = camera_similarity(flow).astype(np.float32)  # moved(x) = grey(M x): the camera's motion undone
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    moved = cv2.warpAffine(grey, back, grey.shape[::-1], flags=flags, borderMode=cv2.BORDER_REPLICATE)
    residue = dis.calc(prev, moved, None)
    return residue - camera_shift(residue)
