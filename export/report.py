"""The FP32-vs-INT8 report of an export: metrics on held-out videos, plots, and the accuracy gate.

On the held-out (test split) videos, scored through the runtime backends (:mod:`export.scoring`):
video AUC / AP and frame AUC of FP32 and INT8, per-video score differences, agreement of alert decisions at
the operating threshold, and the **events** each would raise on the device: every video's snippet scores are
replayed through the runtime's event state machine (hysteresis, minimum duration, cool-down) at the video's
frame rate, under the bundle's event policy (:mod:`export.event_policy`). Video-level AUC only sees each
video's peak; an INT8 backbone can keep the peak and still pull a fight's neighbouring snippets under the off
threshold, so that the device never opens the event. Plus file sizes, batch-1 backbone latency, the
calibration summary and the quantization settings. Plots: FP32 vs INT8 video-score scatter and both ROC curves.

**The gates** build the manifest's ``accuracy`` object; each raises :class:`AccuracyGateError` (one line)
unless its loss is allowed, and is then recorded as ``"overridden"``:

- :func:`gate`: INT8 video AUC may be at most ``max_auc_drop`` below FP32's (``--allow-accuracy-drop``);
- :func:`event_gate`: INT8 must alert as many held-out fights as FP32 (``--allow-event-loss``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.events import EventPolicy, EventStateMachine
from edge_runtime.logging_setup import quiet_logger
from export.scoring import VideoScores
from training.metrics import frame_metrics, json_safe, video_metrics

__all__ = ["AccuracyGateError", "compare", "count_events", "event_gate", "gate", "write_plots", "latency_ms"]

log = logging.getLogger(__name__)


class AccuracyGateError(RuntimeError):
    """INT8 lost more than allowed (video AUC, or fights alerted); the message is one line."""


def _metrics(scores: VideoScores, threshold: float) -> dict[str, Any]:
    v = video_metrics(np.asarray(scores.labels), scores.video_scores, threshold)
    f = frame_metrics(scores.frame_labels, scores.frame_scores, threshold)
    return {
        "video_auc": v["auc_roc"],
        "video_ap": v["auc_pr"],
        "frame_auc": f["frame_auc"],
        "accuracy_at_threshold": v["accuracy_at_threshold"],
        "reasons": {**v["reasons"], **f["reasons"]},
    }


def count_events(scores: VideoScores, snippet_frames: int, policy: EventPolicy) -> list[int]:
    """Events (``start`` messages) the device would raise on each video: snippet ``i``'s score arrives when
    its last frame does, at ``(i + 1) * snippet_frames / fps`` seconds; only the snippets the device scores
    (``scores.complete``: the padded snippet of a file shorter than one snippet never reaches the device's
    event rules)."""
    counts = []
    whole = scores.complete or [len(s) for s in scores.snippet_scores]
    # the state machine's per-event INFO lines would read like a live camera's
    with quiet_logger("edge_runtime.events", logging.WARNING):
        for all_snippets, fps, n in zip(scores.snippet_scores, scores.fps, whole, strict=True):
            snippets = all_snippets[:n]
            machine = EventStateMachine("export", "replay", policy, {}, clock=lambda: 0.0)
            period = snippet_frames / (fps if fps > 0 else 25.0)
            messages = [
                m for i, x in enumerate(snippets) for m in machine.observe(float(x), (i + 1) * period)
            ]
            counts.append(sum(m["type"] == "start" for m in messages))
    return counts


def _events(fp32: VideoScores, int8: VideoScores, snippet_frames: int, policy: EventPolicy) -> dict[str, Any]:
    a, b = count_events(fp32, snippet_frames, policy), count_events(int8, snippet_frames, policy)
    labels = fp32.labels

    def alerted(counts: list[int], label: int) -> int:
        return sum(c > 0 for c, y in zip(counts, labels, strict=True) if y == label)

    return {
        "policy": {
            k: getattr(policy, k) for k in ("on_threshold", "off_threshold", "min_duration_s", "cooldown_s")
        },
        "fp32": int(sum(a)),
        "int8": int(sum(b)),
        "agreement": float(np.mean([x == y for x, y in zip(a, b, strict=True)])) if a else math.nan,
        "fights": sum(y == 1 for y in labels),
        "fights_alerted": {"fp32": alerted(a, 1), "int8": alerted(b, 1)},
        "false_alarms": {"fp32": alerted(a, 0), "int8": alerted(b, 0)},
        "per_video": {k: {"fp32": x, "int8": y} for k, x, y in zip(fp32.keys, a, b, strict=True)},
    }


def compare(
    fp32: VideoScores,
    int8: VideoScores,
    threshold: float,
    *,
    snippet_frames: int | None = None,
    policy: EventPolicy | None = None,
) -> dict[str, Any]:
    """Metrics of both and their differences on the same videos (same order); with ``snippet_frames``
    (frames per snippet: ``S * frame_stride``) also the device's events under ``policy`` (default: the
    runtime's defaults at ``threshold``)."""
    policy = policy or EventPolicy(on_threshold=threshold)
    if fp32.keys != int8.keys:
        raise ValueError("FP32 and INT8 were scored on different videos")
    a, b = fp32.video_scores, int8.video_scores
    snip = np.concatenate(
        [np.abs(x - y) for x, y in zip(fp32.snippet_scores, int8.snippet_scores, strict=True)]
    )
    alerts_a, alerts_b = a >= threshold, b >= threshold
    m32, m8 = _metrics(fp32, threshold), _metrics(int8, threshold)
    return {
        "videos": len(a),
        "threshold": threshold,
        "fp32": m32,
        "int8": m8,
        "auc_drop": m32["video_auc"] - m8["video_auc"],
        "video_score_abs_diff": {"max": float(np.max(np.abs(a - b))), "mean": float(np.mean(np.abs(a - b)))},
        "snippet_score_abs_diff": {"max": float(snip.max()), "mean": float(snip.mean())},
        "alert_agreement": float(np.mean(alerts_a == alerts_b)),
        "alerts": {"fp32": int(alerts_a.sum()), "int8": int(alerts_b.sum())},
        "per_video": [
            {"video": k, "label": lab, "fp32": float(x), "int8": float(y)}
            for k, lab, x, y in zip(fp32.keys, fp32.labels, a, b, strict=True)
        ],
        **({"events": _events(fp32, int8, snippet_frames, policy)} if snippet_frames else {}),
    }


def gate(comparison: Mapping[str, Any], max_auc_drop: float, allow_drop: bool) -> dict[str, Any]:
    """The manifest's ``accuracy`` object; raises :class:`AccuracyGateError` when INT8 loses too much AUC."""
    auc32, auc8 = comparison["fp32"]["video_auc"], comparison["int8"]["video_auc"]
    base = {
        "metric": "video_auc",
        "max_auc_drop": max_auc_drop,
        "fp32_video_auc": auc32,
        "int8_video_auc": auc8,
    }
    if not (math.isfinite(auc32) and math.isfinite(auc8)):
        why = comparison["fp32"]["reasons"].get("auc_roc", "video AUC is undefined")
        return json_safe({**base, "gate": "not_checked", "reason": why})
    drop = auc32 - auc8
    base["auc_drop"] = drop
    if drop <= max_auc_drop + 1e-12:
        return json_safe({**base, "gate": "passed"})
    message = (
        f"accuracy gate: INT8 video AUC {auc8:.4f} is {drop:.4f} below FP32 {auc32:.4f} "
        f"(allowed --max-auc-drop {max_auc_drop}); check the calibration data, or pass --allow-accuracy-drop"
    )
    if not allow_drop:
        raise AccuracyGateError(message)
    log.warning("%s: overridden by --allow-accuracy-drop", message)
    return json_safe({**base, "gate": "overridden"})


def event_gate(comparison: Mapping[str, Any], allow_loss: bool) -> dict[str, Any]:
    """The event part of the manifest's ``accuracy`` object; raises :class:`AccuracyGateError` when INT8
    alerts fewer held-out fights than FP32 under the bundle's event policy (a fight alerts when it raises at
    least one event), unless ``allow_loss``."""
    events = comparison.get("events")
    if not events or not events["fights"]:
        why = "no event replay" if not events else "no anomalous held-out videos"
        return {"event_gate": "not_checked", "event_gate_reason": why}
    a, b = events["fights_alerted"]["fp32"], events["fights_alerted"]["int8"]
    base = {"fights": events["fights"], "fp32_fights_alerted": a, "int8_fights_alerted": b}
    alarms = events["false_alarms"]
    if alarms["int8"] > alarms["fp32"]:  # not a gate: the policy was chosen for no false alarm on val/
        log.warning(
            "INT8 raises false alarms on %d calm held-out videos, FP32 on %d", alarms["int8"], alarms["fp32"]
        )
    if b >= a:
        return {**base, "event_gate": "passed"}
    fights = {row["video"] for row in comparison["per_video"] if row["label"] == 1}
    lost = [k for k, v in events["per_video"].items() if k in fights and v["fp32"] > 0 and v["int8"] == 0]
    p = events["policy"]
    message = (
        f"event gate: INT8 alerts {b} of {events['fights']} held-out fights, FP32 {a} (no INT8 event on "
        f"{', '.join(lost[:3])}{', ...' if len(lost) > 3 else ''}; event policy on {p['on_threshold']:.3f}, "
        f"off {p['off_threshold']:.3f}, min duration {p['min_duration_s']:g} s); check the calibration data, "
        "or pass --allow-event-loss"
    )
    if not allow_loss:
        raise AccuracyGateError(message)
    log.warning("%s: overridden by --allow-event-loss", message)
    return {**base, "event_gate": "overridden"}


def latency_ms(backend: Any, snippet: np.ndarray, repeats: int = 5, warmup: int = 2) -> float:
    """Median batch-1 backbone latency in ms through a runtime backend."""
    from export.ort_int8 import median_latency_ms

    name = backend.input_names[0]
    return median_latency_ms(lambda x: backend.infer({name: x}), snippet[:1], repeats, warmup)


def write_plots(fp32: VideoScores, int8: VideoScores, threshold: float, out_dir: Path) -> list[str]:
    """``score_scatter.png`` and ``roc.png`` in ``out_dir``; returns the file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    out_dir.mkdir(parents=True, exist_ok=True)
    a, b, y = fp32.video_scores, int8.video_scores, np.asarray(fp32.labels)
    fig, ax = plt.subplots(figsize=(5, 5))
    for label, colour, name in ((0, "tab:blue", "normal"), (1, "tab:red", "anomalous")):
        ax.scatter(a[y == label], b[y == label], c=colour, s=18, label=name)
    lo, hi = float(min(a.min(), b.min(), threshold)), float(max(a.max(), b.max(), threshold))
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="INT8 = FP32")
    ax.axvline(threshold, color="grey", lw=0.6)
    ax.axhline(threshold, color="grey", lw=0.6)
    ax.set(xlabel="FP32 video score", ylabel="INT8 video score", title="FP32 vs INT8 (held-out videos)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "score_scatter.png", dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 5))
    if len(set(y.tolist())) == 2:
        for scores, name in ((a, "FP32"), (b, "INT8")):
            fpr, tpr, _ = roc_curve(y, scores)
            ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="Video ROC (held-out videos)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out_dir / "roc.png", dpi=100)
    plt.close(fig)
    return ["score_scatter.png", "roc.png"]
