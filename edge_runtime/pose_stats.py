"""Statistics of several people's poses over a window of frames (the pose forest's input).

A pose model (MoveNet MultiPose: :mod:`edge_runtime.pose_model`) gives each frame up to :data:`MAX_PEOPLE`
rows of :data:`POSE_SIZE` numbers: 17 keypoints as ``(y, x, score)`` in [0, 1] of the frame's height and
width (COCO order: nose, eyes, ears, shoulders 5/6, elbows 7/8, wrists 9/10, hips 11/12, knees 13/14, ankles
15/16), then the person's box ``(y0, x0, y1, x1)`` and score. :func:`window_pose_stats` turns the poses of a
window's frames ``(T, MAX_PEOPLE, POSE_SIZE)`` into :data:`POSE_STATS_SIZE` numbers. A person counts when
their score is at least ``PERSON_SCORE``, a keypoint when its score is at least ``KEYPOINT_SCORE``; distances
are in the person's box heights, with x scaled by the frame's aspect (width / height) so that they are
isotropic:

- people per frame: mean, max, spread, share of frames with one or more and with two or more;
- the people's scores (mean, max), box heights (mean, max), box aspects (mean, max) and keypoint confidence
  per frame (mean, min);
- the nearest two people of a frame: centre distance (mean, min), largest box overlap (IoU: mean, max);
- "contact": a wrist's distance to another person's box (mean, min, share under 0.1);
- each person's move from the frame before (nearest box centre, within one box height): speed (mean, max,
  90th percentile), change of size (mean, max); the speed of wrists, elbows, ankles and knees (mean, max,
  90th percentile) and how many such limb moves per frame;
- the arm's extension (wrist to shoulder: mean, max), the share of raised wrists, the torso's tilt (mean, max).

A statistic with nothing to measure (no person, no pair) is -1. The frames are those the pose model ran on,
in order: a move is measured between consecutive ones. The numbers are versioned
(:data:`POSE_STATS_VERSION`): a forest trained on one version is refused on another.

>>> poses = np.zeros((2, MAX_PEOPLE, POSE_SIZE), np.float32)
>>> poses[:, 0, 51:] = [0.2, 0.4, 0.6, 0.5, 0.9]  # one person, 0.4 of the frame high, in both frames
>>> s = window_pose_stats(poses, aspect=16 / 9)
>>> s.shape == (POSE_STATS_SIZE,), float(s[0]), round(float(s[7]), 3)  # people per frame, mean box height
(True, 1.0, 0.4)
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "KEYPOINTS",
    "MAX_PEOPLE",
    "POSE_SIZE",
    "POSE_STATS_SIZE",
    "POSE_STATS_VERSION",
    "PoseStatsError",
    "window_pose_stats",
]

POSE_STATS_VERSION = "pose-stats/1"
KEYPOINTS = 17
MAX_PEOPLE = 6  # MoveNet MultiPose's rows per frame
POSE_SIZE = 3 * KEYPOINTS + 5  # keypoints (y, x, score), box (y0, x0, y1, x1), score
PERSON_SCORE = 0.2  # 0.3 lost 0.04 of the cross-validated AUC (docs/real-video.md)
KEYPOINT_SCORE = 0.2
_CONTACT = 0.1  # a wrist this close to another person's box, in box heights, touches it
_MAX_MOVE = 1.0  # a box matched to one further than one box height away is another person
_SHOULDERS, _ELBOWS, _WRISTS, _HIPS, _KNEES, _ANKLES = (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)
_LIMBS = _WRISTS + _ELBOWS + _ANKLES + _KNEES
_BOX = slice(3 * KEYPOINTS, 3 * KEYPOINTS + 4)
_MISSING = -1.0


class PoseStatsError(ValueError):
    """Poses that are not ``(T, MAX_PEOPLE, POSE_SIZE)``."""


def _agg(values: list[float], fns: tuple[str, ...]) -> list[float]:
    if not values:
        return [_MISSING] * len(fns)
    v = np.asarray(values, np.float64)
    ops = {"mean": np.mean, "max": np.max, "min": np.min, "p90": lambda a: np.percentile(a, 90)}
    return [float(ops[f](v)) for f in fns]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """Overlap of two boxes ``(y0, x0, y1, x1)``."""
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area_a = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
    area_b = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
    return float(inter / (area_a + area_b - inter + 1e-9))


class _Window:
    """The measurements of a window's frames, frame by frame (:meth:`add`), before they are aggregated."""

    def __init__(self, aspect: float) -> None:
        self.aspect = float(aspect)
        self.counts: list[int] = []
        self.m: dict[str, list[float]] = {
            k: []
            for k in (
                "score height aspect kconf pair_d pair_iou contact speed dsize limb ext raised tilt".split()
            )
        }
        self.prev: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # keypoints, heights, centres

    def add(self, frame: np.ndarray) -> None:
        people = frame[frame[:, -1] >= PERSON_SCORE]
        self.counts.append(len(people))
        if not len(people):
            self.prev = None
            return
        box = people[:, _BOX].astype(np.float64)
        kp = people[:, : 3 * KEYPOINTS].reshape(-1, KEYPOINTS, 3).astype(np.float64)
        h = np.maximum(box[:, 2] - box[:, 0], 1e-3)
        centres = np.stack([(box[:, 0] + box[:, 2]) / 2, (box[:, 1] + box[:, 3]) / 2 * self.aspect], 1)
        m = self.m
        m["score"] += people[:, -1].tolist()
        m["height"] += h.tolist()
        m["aspect"] += ((box[:, 3] - box[:, 1]) * self.aspect / h).tolist()
        m["kconf"].append(float(kp[:, :, 2].mean()))
        for i in range(len(people)):
            self._person(kp[i], h[i], box, i)
        if len(people) >= 2:
            pairs = [(i, j) for i in range(len(people)) for j in range(i + 1, len(people))]
            m["pair_d"].append(
                min(np.hypot(*(centres[i] - centres[j])) / ((h[i] + h[j]) / 2) for i, j in pairs)
            )
            m["pair_iou"].append(max(_iou(box[i], box[j]) for i, j in pairs))
        if self.prev is not None:
            self._moves(kp, h, centres)
        self.prev = (kp, h, centres)

    def _dist(self, kp: np.ndarray, a: int, b: int, height: float) -> float:
        return float(np.hypot(kp[a, 0] - kp[b, 0], (kp[a, 1] - kp[b, 1]) * self.aspect) / height)

    def _person(self, kp: np.ndarray, height: float, boxes: np.ndarray, me: int) -> None:
        """One person's arms, torso and wrists against the others' boxes."""
        ok = kp[:, 2] >= KEYPOINT_SCORE
        m = self.m
        for wrist, shoulder in zip(_WRISTS, _SHOULDERS, strict=True):
            if ok[wrist] and ok[shoulder]:
                m["ext"].append(self._dist(kp, wrist, shoulder, height))
                m["raised"].append(float(kp[wrist, 0] < kp[shoulder, 0]))
        if ok[list(_SHOULDERS + _HIPS)].all():
            sy, sx = kp[list(_SHOULDERS), 0].mean(), kp[list(_SHOULDERS), 1].mean() * self.aspect
            hy, hx = kp[list(_HIPS), 0].mean(), kp[list(_HIPS), 1].mean() * self.aspect
            m["tilt"].append(float(abs(np.arctan2(sx - hx, hy - sy))))
        for j, b in enumerate(boxes):
            if j == me:
                continue
            for wrist in _WRISTS:
                if ok[wrist]:
                    y, x = kp[wrist, 0], kp[wrist, 1]
                    dy = max(b[0] - y, 0.0, y - b[2])
                    dx = max(b[1] - x, 0.0, x - b[3]) * self.aspect
                    m["contact"].append(float(np.hypot(dy, dx) / height))

    def _moves(self, kp: np.ndarray, h: np.ndarray, centres: np.ndarray) -> None:
        """Each person's move from the nearest person of the frame before."""
        pkp, ph, pcentres = self.prev
        m = self.m
        for i in range(len(h)):
            d = np.hypot(*(pcentres - centres[i]).T)
            j = int(np.argmin(d))
            if d[j] / h[i] > _MAX_MOVE:
                continue
            m["speed"].append(float(d[j] / h[i]))
            m["dsize"].append(float(abs(np.log(h[i] / ph[j]))))
            both = (kp[i, :, 2] >= KEYPOINT_SCORE) & (pkp[j, :, 2] >= KEYPOINT_SCORE)
            for limb in _LIMBS:
                if both[limb]:
                    dy, dx = (
                        kp[i, limb, 0] - pkp[j, limb, 0],
                        (kp[i, limb, 1] - pkp[j, limb, 1]) * self.aspect,
                    )
                    m["limb"].append(float(np.hypot(dy, dx) / h[i]))

    def stats(self) -> np.ndarray:
        c = np.asarray(self.counts, np.float64)
        m = self.m
        contact_share = [float(np.mean(np.asarray(m["contact"]) < _CONTACT))] if m["contact"] else [_MISSING]
        return np.array(
            [c.mean(), c.max(), float((c >= 2).mean()), float((c >= 1).mean()), c.std()]
            + _agg(m["score"], ("mean", "max"))
            + _agg(m["height"], ("mean", "max"))
            + _agg(m["aspect"], ("mean", "max"))
            + _agg(m["kconf"], ("mean", "min"))
            + _agg(m["pair_d"], ("mean", "min"))
            + _agg(m["pair_iou"], ("mean", "max"))
            + _agg(m["contact"], ("mean", "min"))
            + contact_share
            + _agg(m["speed"], ("mean", "max", "p90"))
            + _agg(m["dsize"], ("mean", "max"))
            + _agg(m["limb"], ("mean", "max", "p90"))
            + [len(m["limb"]) / len(c)]
            + _agg(m["ext"], ("mean", "max"))
            + _agg(m["raised"], ("mean",))
            + _agg(m["tilt"], ("mean", "max")),
            np.float32,
        )


POSE_STATS_SIZE = 34


def window_pose_stats(poses: np.ndarray, aspect: float) -> np.ndarray:
    """The :data:`POSE_STATS_SIZE` statistics (module docstring) of the poses ``(T, MAX_PEOPLE, POSE_SIZE)``
    of a window's ``T >= 1`` frames, in order, of frames ``aspect`` times as wide as high."""
    p = np.asarray(poses)
    if p.ndim != 3 or p.shape[1:] != (MAX_PEOPLE, POSE_SIZE) or not len(p):
        raise PoseStatsError(
            f"poses must be (T >= 1, {MAX_PEOPLE}, {POSE_SIZE}) (people x keypoints, box, score), got {p.shape}"
        )
    if not np.isfinite(aspect) or aspect <= 0:
        raise PoseStatsError(f"the frame's aspect (width / height) must be > 0, got {aspect!r}")
    window = _Window(aspect)
    for frame in p:
        window.add(frame)
    return window.stats()
