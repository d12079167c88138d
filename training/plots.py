"""Plots for training and evaluation reports, and score-annotated videos.

Figures are drawn with matplotlib's object API on an Agg canvas (``Figure`` + ``FigureCanvasAgg``): no pyplot,
no global backend switch, no figure registry to leak, and it works on a headless machine. Every function
takes the seed's arguments (``plot_training_curves(train_losses, val_losses, save_path=...)``), creates the
parent folder of ``save_path``, writes via a temporary file (a crash never leaves half a file) and returns
the written :class:`~pathlib.Path`; without a ``save_path`` a plot returns its ``Figure`` (shown in a notebook).

The annotated video is read with :mod:`edge_runtime.video` and written with OpenCV's ``mp4v`` writer: per frame
a score bar (green below the threshold, orange at or above), a white tick at the threshold, the numeric score,
a yellow ``GT`` tag where the frame is annotated anomalous, and a red ``ALERT`` banner across the top when the
score is ``>= threshold`` (the device's alert rule).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve
from tqdm import tqdm

from edge_runtime.video import iter_frames, probe_video, write_video
from training.metrics import segments

__all__ = [
    "save_figure",
    "plot_training_curves",
    "plot_roc_pr",
    "plot_anomaly_scores_timeline",
    "visualize_attention_weights",
    "create_video_with_annotations",
]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

_METRIC_TOKENS = {"auc", "ap", "eer", "iou", "acc", "accuracy", "precision", "recall", "f1"}
_LR_TOKENS = {"lr", "learning"}
_SKIP = {"epoch", "step", "time", "seconds", "duration"}

ALERT_BGR = (0, 0, 255)  # the banner's colour (pure red in BGR)


def save_figure(fig: Figure, out_path: PathLike | None) -> Path | Figure:
    """Write ``fig`` to ``out_path`` through a temporary file (its folder made) and return the path; without a
    path, give it an Agg canvas and return it (a notebook shows it)."""
    if out_path is None:
        FigureCanvasAgg(fig)
        return fig
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix or '.png'}")
    FigureCanvasAgg(fig)
    fig.savefig(tmp, dpi=100, bbox_inches="tight")
    fig.clear()  # frees the artists now rather than at garbage collection
    os.replace(tmp, path)
    logger.debug("wrote %s", path)
    return path


def _history_columns(
    history: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
) -> dict[str, np.ndarray]:
    """A history as float columns of equal length (missing / None -> NaN); non-numeric columns dropped."""
    if isinstance(history, Mapping):
        rows_n = max((len(v) for v in history.values()), default=0)
        raw = {k: list(v) + [None] * (rows_n - len(v)) for k, v in history.items()}
    else:
        keys = list(dict.fromkeys(k for row in history for k in row))
        raw = {k: [row.get(k) for row in history] for k in keys}
    columns = {}
    for key, values in raw.items():
        try:
            columns[key] = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
        except (TypeError, ValueError):
            continue  # e.g. a timestamp string: not plotted
    return columns


def plot_training_curves(
    history: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]] | Sequence[float],
    val_losses: Sequence[float] | None = None,
    save_path: PathLike | None = None,
) -> Path | Figure:
    """Loss parts (left, log scale when all positive) and validation metrics such as AUC (right) per epoch.

    ``history`` is one dict per epoch or a dict of per-epoch lists, or the seed's list of training losses
    with ``val_losses`` its list of validation losses. ``epoch`` (if present) is the x axis;
    columns whose ``_``-separated name has a token like ``auc``, ``ap``, ``eer``, ``iou``, ``acc`` go to the
    metrics panel, ``lr`` / ``learning_rate`` to a third panel, everything else numeric to the loss panel.
    """
    if val_losses is not None or (
        len(history) and not isinstance(history, Mapping) and _is_number(history[0])
    ):
        history = {
            "train_loss": list(history),
            **({"val_loss": list(val_losses)} if val_losses is not None else {}),
        }
    cols = _history_columns(history)
    n = max((len(v) for v in cols.values()), default=0)
    x = cols.pop("epoch", np.arange(1, n + 1, dtype=np.float64))
    groups: dict[str, dict[str, np.ndarray]] = {"loss": {}, "metric": {}, "lr": {}}
    for key, values in cols.items():
        tokens = set(key.lower().split("_"))
        if tokens & _SKIP:
            continue
        group = "metric" if tokens & _METRIC_TOKENS else "lr" if tokens & _LR_TOKENS else "loss"
        groups[group][key] = values
    panels = ["loss", "metric"] + (["lr"] if groups["lr"] else [])
    fig = Figure(figsize=(5.5 * len(panels), 4))
    titles = {"loss": "losses", "metric": "validation metrics", "lr": "learning rate"}
    for i, name in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        for key, values in groups[name].items():
            ok = np.isfinite(values)
            ax.plot(x[ok], values[ok], marker="o", markersize=3, label=key)
        finite = np.concatenate([v[np.isfinite(v)] for v in groups[name].values()] or [np.zeros(0)])
        if name != "metric" and finite.size and (finite > 0).all():
            ax.set_yscale("log")
        if name == "metric" and finite.size and finite.min() >= 0 and finite.max() <= 1:
            ax.set_ylim(0, 1.02)
        if not groups[name]:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        else:
            ax.legend(fontsize=8)
        ax.set_xlabel("epoch")
        ax.set_title(titles[name])
        ax.grid(alpha=0.3)
    return save_figure(fig, save_path)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool)


def plot_roc_pr(labels: Any, scores: Any, out_path: PathLike, *, threshold: float | None = None) -> Path:
    """ROC (left) and precision-recall (right) curves, with AUC / AP in the legends.

    ``threshold`` (optional) marks the operating point on both curves. With one class only the panels say so
    instead of drawing a curve.
    """
    y = np.asarray(labels, dtype=np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {y.size} labels, {s.size} scores")
    fig = Figure(figsize=(11, 4.5))
    roc_ax, pr_ax = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    if y.size and 0 < y.sum() < y.size:
        fpr, tpr, _ = roc_curve(y, s)
        roc_ax.plot(fpr, tpr, label=f"AUC = {roc_auc_score(y, s):.3f}")
        precision, recall, _ = precision_recall_curve(y, s)
        pr_ax.plot(recall, precision, label=f"AP = {average_precision_score(y, s):.3f}")
        pr_ax.axhline(y.mean(), color="grey", linestyle=":", label=f"chance = {y.mean():.2f}")
        if threshold is not None and math.isfinite(threshold):
            pred = s >= threshold
            tp = (pred & (y == 1)).sum()
            op_fpr, op_tpr = (pred & (y == 0)).sum() / (y == 0).sum(), tp / (y == 1).sum()
            roc_ax.plot(op_fpr, op_tpr, "ro", label=f"threshold {threshold:.3f}")
            if pred.any():
                pr_ax.plot(op_tpr, tp / pred.sum(), "ro", label=f"threshold {threshold:.3f}")
    else:
        for ax in (roc_ax, pr_ax):
            ax.text(
                0.5, 0.5, "undefined: needs both classes", ha="center", va="center", transform=ax.transAxes
            )
    roc_ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    roc_ax.set(
        xlabel="false positive rate", ylabel="true positive rate", title="ROC", xlim=(0, 1), ylim=(0, 1.02)
    )
    pr_ax.set(xlabel="recall", ylabel="precision", title="precision-recall", xlim=(0, 1), ylim=(0, 1.02))
    for ax in (roc_ax, pr_ax):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower right" if ax is roc_ax else "lower left", fontsize=9)
    return save_figure(fig, out_path)


def plot_anomaly_scores_timeline(
    frame_scores: Any,
    save_path: PathLike | None = None,
    *,
    threshold: float = 0.5,
    frame_labels: Any = None,
    title: str | None = None,
) -> Path | Figure:
    """Per-frame anomaly score over time, the threshold line, and annotated anomalous frames shaded."""
    s = np.asarray(frame_scores, dtype=np.float64).ravel()
    fig = Figure(figsize=(10, 3.5))
    ax = fig.add_subplot(1, 1, 1)
    if frame_labels is not None:
        labels = np.asarray(frame_labels).ravel()
        for i, (start, end) in enumerate(segments(labels > 0.5)):
            ax.axvspan(
                start - 0.5,
                end - 0.5,
                color="tab:red",
                alpha=0.2,
                label="annotated anomaly" if i == 0 else None,
            )
    ax.plot(np.arange(s.size), s, color="tab:blue", label="anomaly score")
    ax.axhline(threshold, color="tab:red", linestyle="--", label=f"threshold {threshold:.3f}")
    if s.size and np.isfinite(s).all() and s.min() >= 0 and s.max() <= 1:
        ax.set_ylim(0, 1.02)
    ax.set(xlabel="frame", ylabel="score", title=title or "anomaly score per frame")
    ax.set_xlim(-0.5, max(s.size - 0.5, 0.5))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    return save_figure(fig, save_path)


def visualize_attention_weights(
    attention: Any, snippet_scores: Any = None, save_path: PathLike | None = None
) -> Path | Figure:
    """MIL attention over snippets: bars for one video ``(K,)``, a heat map for many ``(N, K)``.

    ``snippet_scores`` is drawn as a line on a second axis for one video, or as a second heat map (same shape)
    for many. For one video it may also be the frame scores ``(T,)`` (the seed's ``frame_scores``): they are
    drawn across the snippets they cover.
    """
    att = np.asarray(attention, dtype=np.float64)
    if att.ndim not in (1, 2) or att.size == 0:
        raise ValueError(f"attention must have shape (K,) or (N, K) with K > 0, got {att.shape}")
    scores = None if snippet_scores is None else np.asarray(snippet_scores, dtype=np.float64)
    if (
        scores is not None
        and scores.shape != att.shape
        and not (att.ndim == scores.ndim == 1 and scores.size)
    ):
        raise ValueError(f"snippet_scores must have the attention's shape {att.shape}, got {scores.shape}")
    if att.ndim == 1:
        fig = Figure(figsize=(8, 3.5))
        ax = fig.add_subplot(1, 1, 1)
        k = np.arange(att.size)
        ax.bar(k, att, color="tab:purple", alpha=0.7, label="attention")
        ax.set(xlabel="snippet", ylabel="attention weight", title="MIL attention over snippets")
        if scores is not None:
            ax2 = ax.twinx()
            # T frame scores over K snippets: frame i sits at (i + 0.5) * K / T - 0.5 on the snippet axis
            x = (
                k
                if scores.size == att.size
                else (np.arange(scores.size) + 0.5) * att.size / scores.size - 0.5
            )
            label = "snippet score" if scores.size == att.size else "frame score"
            ax2.plot(x, scores, color="tab:red", marker="o", markersize=3, label=label)
            ax2.set_ylabel("snippet score")
            ax2.set_ylim(0, max(1.0, float(np.nanmax(scores))) * 1.02)
            ax2.legend(loc="upper right", fontsize=8)
        ax.legend(loc="upper left", fontsize=8)
    else:
        maps = [("attention", att)] + ([("snippet score", scores)] if scores is not None else [])
        fig = Figure(figsize=(6 * len(maps), 1.5 + 0.25 * min(att.shape[0], 40)))
        for i, (name, data) in enumerate(maps):
            ax = fig.add_subplot(1, len(maps), i + 1)
            image = ax.imshow(data, aspect="auto", interpolation="nearest", cmap="viridis")
            fig.colorbar(image, ax=ax)
            ax.set(xlabel="snippet", ylabel="video", title=name)
    return save_figure(fig, save_path)


def _draw_overlay(frame: np.ndarray, score: float | None, threshold: float, anomalous_gt: bool) -> np.ndarray:
    """The frame with the score bar, the numeric score, the GT tag and (score >= threshold) the ALERT banner."""
    out = frame.copy()
    h, w = out.shape[:2]
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, max(0.3, h / 480)
    thick = max(1, round(scale * 2))
    bar_h = max(4, h // 12)
    cv2.rectangle(out, (0, h - bar_h), (w - 1, h - 1), (40, 40, 40), -1)
    if score is not None:
        fill = round(w * min(max(score, 0.0), 1.0))
        colour = (0, 165, 255) if score >= threshold else (0, 200, 0)
        if fill > 0:
            cv2.rectangle(out, (0, h - bar_h), (fill - 1, h - 1), colour, -1)
    tick = min(w - 1, max(0, round(w * threshold))) if math.isfinite(threshold) else None
    if tick is not None:
        cv2.line(out, (tick, h - bar_h), (tick, h - 1), (255, 255, 255), 1)
    text = "score n/a" if score is None else f"score {score:.2f}"
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    org = (2, h - bar_h - base - 2)
    cv2.putText(out, text, org, font, scale, (0, 0, 0), thick + 1, cv2.LINE_AA)
    cv2.putText(out, text, org, font, scale, (255, 255, 255), thick, cv2.LINE_AA)
    if anomalous_gt:
        (gw, gh), _ = cv2.getTextSize("GT", font, scale, thick)
        x0, y1 = w - gw - 6, h - bar_h - 2
        cv2.rectangle(out, (x0, y1 - gh - 4), (w - 1, y1), (0, 255, 255), -1)
        cv2.putText(out, "GT", (x0 + 3, y1 - 2), font, scale, (0, 0, 0), thick, cv2.LINE_AA)
    if score is not None and score >= threshold:
        banner_h = max(12, h // 6)
        cv2.rectangle(out, (0, 0), (w - 1, banner_h - 1), ALERT_BGR, -1)
        (aw, ah), _ = cv2.getTextSize("ALERT", font, scale, thick)
        cv2.putText(
            out,
            "ALERT",
            ((w - aw) // 2, (banner_h + ah) // 2),
            font,
            scale,
            (255, 255, 255),
            thick,
            cv2.LINE_AA,
        )
    return out


def create_video_with_annotations(
    video_path: PathLike,
    frame_scores: Any,
    output_path: PathLike,
    *,
    threshold: float = 0.5,
    frame_labels: Any = None,
    progress: bool | None = None,
) -> Path:
    """Write ``video_path`` with the per-frame score overlaid (see the module docstring) to ``output_path``
    (mp4v).

    ``progress``: a bar per frame (None: only on a terminal).

    The output has exactly the input's frames and fps. Scores beyond the video's end (a padded last snippet)
    are ignored; frames beyond the scores' end are written with ``score n/a`` and no banner.
    """
    info = probe_video(video_path)
    s = np.asarray(frame_scores, dtype=np.float64).ravel()
    gt = None if frame_labels is None else np.asarray(frame_labels).ravel() > 0.5
    if s.size < info.num_frames:
        logger.warning(
            "%s: %d frames but %d scores; the rest is written without a score",
            video_path,
            info.num_frames,
            s.size,
        )

    def annotated() -> Iterator[np.ndarray]:
        frames = tqdm(
            iter_frames(video_path),
            total=info.num_frames,
            desc="annotating video",
            unit="frame",
            disable=None if progress is None else not progress,
        )
        for i, frame in enumerate(frames):
            score = float(s[i]) if i < s.size else None
            yield _draw_overlay(
                frame, score, float(threshold), gt is not None and i < gt.size and bool(gt[i])
            )

    path = Path(output_path)
    tmp = path.with_name(f".{path.stem}.tmp.mp4")
    try:
        write_video(tmp, annotated(), fps=info.fps if info.fps > 0 else 25.0, fourcc="mp4v")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("wrote annotated video %s", path)
    return path
