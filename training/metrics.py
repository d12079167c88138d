"""Evaluation metrics for video anomaly detection (numpy + scikit-learn).

Video level (one score per video): ROC AUC, average precision (PR AUC), equal error rate, and the operating
threshold. Frame level (one score per frame, where frame annotations exist): pooled frame AUC, temporal IoU of
the thresholded segments, precision at k.

**The operating threshold** maximises Youden's J = TPR - FPR on the ROC of the validation videos; a score
``>= threshold`` is an anomaly (scikit-learn's ROC convention, and the device's alert rule). Of the observed
scores with the best J the highest wins (fewest false alarms); the threshold is then the midpoint between it
and the next lower observed score. Every validation video is classified the same as at the observed score,
but the margin is shared: a well-trained model whose fights score 0.99 and calm scenes 0.05 gets 0.52, not
0.99, so a new fight that scores 0.98 still alerts. The export writes this value into the bundle manifest.

Undefined values (one class only, no annotations, no input) are NaN, with the reason in ``result["reasons"]``
(metric name -> one line), never an exception; :func:`json_safe` turns NaN / inf into ``None`` for JSON.

>>> m = video_metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
>>> m["auc_roc"], m["eer"], round(m["optimal_threshold"], 6)
(0.75, 0.5, 0.6)
>>> segments(np.array([0, 1, 1, 0, 1]))
[(1, 3), (4, 5)]
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

__all__ = ["video_metrics", "frame_metrics", "segments", "equal_error_rate", "youden_threshold", "json_safe"]

logger = logging.getLogger(__name__)

NAN = float("nan")


def _as_1d(name: str, values: Any, dtype: Any = np.float64) -> np.ndarray:
    arr = np.asarray(values, dtype=dtype)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _check_pair(labels: Any, scores: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    y = _as_1d(f"{what} labels", labels)
    s = _as_1d(f"{what} scores", scores)
    if y.shape != s.shape:
        raise ValueError(f"{what} labels and scores differ in length: {y.size} labels, {s.size} scores")
    if not np.isfinite(s).all():
        raise ValueError(
            f"{what} scores contain NaN or inf (at index {int(np.flatnonzero(~np.isfinite(s))[0])})"
        )
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"{what} labels must be 0 or 1, got {sorted(set(np.unique(y)) - {0.0, 1.0})[:3]}")
    return y.astype(np.int64), s


def _one_class_reason(y: np.ndarray, what: str) -> str | None:
    if y.size == 0:
        return f"no {what}"
    if y.min() == y.max():
        kind = "anomalous" if y[0] == 1 else "normal"
        return f"all {y.size} {what} are {kind}: needs both classes"
    return None


def segments(mask: Any) -> list[tuple[int, int]]:
    """Runs of True in a 1-D mask as half-open ``(start, end)`` frame ranges, in order."""
    m = _as_1d("mask", mask, dtype=bool).astype(np.int8)
    edges = np.diff(np.concatenate(([0], m, [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


def equal_error_rate(labels: Any, scores: Any) -> tuple[float, float]:
    """``(eer, threshold)``: where the miss rate equals the false-alarm rate on the ROC.

    Between the two ROC points that bracket the crossing the rates are interpolated linearly; the threshold is
    the score of the first point at which the miss rate is <= the false-alarm rate. Needs both classes.
    """
    y, s = _check_pair(labels, scores, "video")
    fpr, tpr, thresholds = roc_curve(y, s, drop_intermediate=False)
    fnr = 1.0 - tpr
    diff = fnr - fpr  # decreasing from 1 to -1 along the curve
    i = int(np.flatnonzero(diff <= 0)[0])
    if diff[i] == 0 or i == 0:
        eer = float(fpr[i])
    else:
        t = diff[i - 1] / (diff[i - 1] - diff[i])  # fraction of the way from point i-1 to i
        eer = float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))
    return eer, float(thresholds[max(i, 1)])


def youden_threshold(labels: Any, scores: Any) -> float:
    """Midway between the observed score maximising TPR - FPR (the highest on ties) and the next lower
    observed score (none: the score itself). Needs both classes."""
    y, s = _check_pair(labels, scores, "video")
    # one point per distinct score, descending
    fpr, tpr, thresholds = roc_curve(y, s, drop_intermediate=False)
    j = tpr[1:] - fpr[1:]  # point 0 is "nothing is anomalous" (threshold above every score)
    best = 1 + int(np.argmax(j))
    if best + 1 < len(thresholds):
        return float((thresholds[best] + thresholds[best + 1]) / 2)
    return float(thresholds[best])


def video_metrics(labels: Any, scores: Any, threshold: float | None = None) -> dict[str, Any]:
    """Video-level metrics of binary ``labels`` (1 = anomalous) and ``scores`` (higher = more anomalous).

    ``threshold`` (e.g. the one chosen on validation data) is used for the accuracy / precision / recall at
    threshold; None uses this data's ``optimal_threshold``. Returns ``auc_roc, auc_pr, eer, eer_threshold,
    optimal_threshold, threshold, accuracy_at_threshold, precision_at_threshold, recall_at_threshold,
    n_videos, n_positive, n_negative, reasons``.
    """
    y, s = _check_pair(labels, scores, "video")
    n_pos = int(y.sum())
    result: dict[str, Any] = {"n_videos": int(y.size), "n_positive": n_pos, "n_negative": int(y.size - n_pos)}
    reasons: dict[str, str] = {}
    why = _one_class_reason(y, "videos")
    if why is None:
        result["auc_roc"] = float(roc_auc_score(y, s))
        result["auc_pr"] = float(average_precision_score(y, s))
        result["eer"], result["eer_threshold"] = equal_error_rate(y, s)
        result["optimal_threshold"] = youden_threshold(y, s)
    else:
        for key in ("auc_roc", "auc_pr", "eer", "eer_threshold", "optimal_threshold"):
            result[key] = NAN
            reasons[key] = why
    thr = result["optimal_threshold"] if threshold is None else float(threshold)
    result["threshold"] = thr
    at = ("accuracy_at_threshold", "precision_at_threshold", "recall_at_threshold")
    if y.size == 0 or math.isnan(thr):
        for key in at:
            result[key] = NAN
            reasons[key] = "no videos" if y.size == 0 else f"no threshold ({reasons['optimal_threshold']})"
    else:
        pred = s >= thr
        tp = int((pred & (y == 1)).sum())
        result["accuracy_at_threshold"] = float((pred == (y == 1)).mean())
        result["precision_at_threshold"] = tp / int(pred.sum()) if pred.any() else NAN
        result["recall_at_threshold"] = tp / n_pos if n_pos else NAN
        if not pred.any():
            reasons["precision_at_threshold"] = "no video scores at or above the threshold"
        if not n_pos:
            reasons["recall_at_threshold"] = "no anomalous videos"
    result["reasons"] = reasons
    return result


def _pool(frame_labels: Sequence[Any], frame_scores: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, int]:
    """Concatenate the frames of the videos that have annotations (label array not None)."""
    if len(frame_labels) != len(frame_scores):
        raise ValueError(
            f"frame labels are given for {len(frame_labels)} videos but frame scores for {len(frame_scores)}"
        )
    ys, ss = [], []
    for i, (lab, sc) in enumerate(zip(frame_labels, frame_scores, strict=True)):
        if lab is None:
            continue
        y, s = _check_pair(lab, sc, f"video {i} frame")
        ys.append(y)
        ss.append(s)
    if not ys:
        return np.zeros(0, np.int64), np.zeros(0), 0
    return np.concatenate(ys), np.concatenate(ss), len(ys)


def frame_metrics(
    frame_labels: Sequence[np.ndarray | None],
    frame_scores: Sequence[np.ndarray],
    threshold: float,
    *,
    k: int | None = None,
) -> dict[str, Any]:
    """Frame-level metrics pooled over all frames of the videos with annotations (a None label array means
    "not annotated": that video is left out).

    - ``frame_auc`` / ``frame_ap``: ROC AUC / average precision over the pooled frames;
    - ``temporal_iou``: |predicted ∩ annotated| / |predicted ∪ annotated| in frames, predicted = score >=
      ``threshold``, pooled (sums over all videos, not a mean of per-video IoUs, so long videos weigh more);
      NaN without annotated anomalous frames (as when only the normal videos of trimmed clips are annotated);
    - ``precision_at_k``: share of anomalous frames among the ``k`` highest-scored frames; ``k`` defaults to
      the number of anomalous frames (R-precision: 1.0 exactly when the ranking puts every anomalous frame
      first). Ties are broken by frame order.
    """
    y, s, n_annotated = _pool(frame_labels, frame_scores)
    n_pos = int(y.sum())
    result: dict[str, Any] = {
        "n_frames": int(y.size),
        "n_positive_frames": n_pos,
        "n_annotated_videos": n_annotated,
    }
    reasons: dict[str, str] = {}
    why = "no video has frame annotations" if y.size == 0 else _one_class_reason(y, "annotated frames")
    if why is None:
        result["frame_auc"] = float(roc_auc_score(y, s))
        result["frame_ap"] = float(average_precision_score(y, s))
    else:
        result["frame_auc"] = result["frame_ap"] = NAN
        reasons["frame_auc"] = reasons["frame_ap"] = why

    result["temporal_iou"], why = _temporal_iou(y, s, float(threshold))
    if why is not None:
        reasons["temporal_iou"] = why
    result["k"] = n_pos if k is None else int(k)
    result["precision_at_k"], why = _precision_at_k(y, s, result["k"], k is None)
    if why is not None:
        reasons["precision_at_k"] = why
    result["reasons"] = reasons
    return result


def _temporal_iou(y: np.ndarray, s: np.ndarray, thr: float) -> tuple[float, str | None]:
    """Pooled temporal IoU of the frames at or above ``thr`` with the anomalous ones, or NaN and why."""
    if y.size == 0:
        return NAN, "no video has frame annotations"
    if math.isnan(thr):
        return NAN, "threshold is NaN"
    pred, gt = s >= thr, y == 1
    if not gt.any():  # every false alarm would give 0 and none NaN: the overlap of nothing measures nothing
        return NAN, f"all {y.size} annotated frames are normal: needs annotated anomalous frames"
    return int((pred & gt).sum()) / int((pred | gt).sum()), None


def _precision_at_k(y: np.ndarray, s: np.ndarray, top_k: int, default_k: bool) -> tuple[float, str | None]:
    """Share of anomalous frames among the ``top_k`` highest-scored (ties by frame order), or NaN and why."""
    if y.size == 0:
        return NAN, "no video has frame annotations"
    if top_k <= 0:
        return NAN, "no anomalous frames (k = 0)" if default_k else f"k must be positive, got {top_k}"
    order = np.argsort(-s, kind="stable")[:top_k]
    return float(y[order].sum()) / min(top_k, y.size), None


def json_safe(value: Any) -> Any:
    """A copy with NaN / inf replaced by None and numpy scalars / arrays turned into Python values."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
