"""Score a test set the way the device does, and report video and frame metrics (+ plots).

Scoring is the edge runtime's streaming rule (:func:`edge_runtime.scoring.streaming_scores`, with the torch
head as its head function, :func:`torch_head`): the backbone runs once over every snippet of the whole video
(its complete snippets, a video shorter than one snippet padded: :mod:`edge_runtime.snippets`), then for each snippet ``i`` the head scores the
window of the last ``K`` features ``[i-K+1, i]`` (fewer at the start, as the device's ring before it fills)
and the snippet's score is the window's **newest** snippet score. A frame's
score is its snippet's score; a video's score is the **max** over its snippets, which is exactly whether the
device would raise an event at a threshold. The attention weights plotted are the head's over the whole video
in one call (for a picture of where it looks; they play no part in the scores).

With the run's motion forest (:mod:`training.motion_forest`), each snippet's row is ``[feature | motion stats]``
and the head is fused with the forest (:mod:`edge_runtime.motion_fusion`), as on the device; the report then
also gives the network-only (weight 0) and forest-only (weight 1) video AUC next to the fused one, so a
cross-validation can choose ``motion_weight``. With the run's pose forest (:mod:`training.pose_forest`) each
row also carries the snippet's pose block, the fused score is ``(1 - pose_weight) * that + pose_weight *
pose forest`` (:mod:`edge_runtime.pose_fusion`), and the pose forest's own AUC comes with the others.

The threshold is the one chosen on validation data and stored in the checkpoint (``threshold``); a checkpoint
without one falls back to the test set's own Youden-optimal threshold, and the report says which was used.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from edge_runtime.motion_fusion import (
    MotionFusion,
    fused_features,
    fused_head,
    motion_crops,
    network_features,
    network_input,
)
from edge_runtime.pose_fusion import pose_rows
from edge_runtime.scoring import HeadFn, streaming_scores
from edge_runtime.snippets import frame_to_snippet
from edge_runtime.video import VideoReadError
from training.configs import to_preprocess_config
from training.data import SkippedVideo, VideoRecord, iter_snippet_batches, scan_videos
from training.metrics import frame_metrics, json_safe, video_metrics
from training.pose_forest import pose_source

__all__ = [
    "SCORING",
    "VideoResult",
    "torch_head",
    "video_features",
    "score_video",
    "score_videos",
    "evaluate",
    "format_summary",
]

logger = logging.getLogger(__name__)

SCORING = (
    "streaming: backbone over every snippet, head over the last K features, newest snippet's score; "
    "frame score = its snippet's score; video score = max snippet score"
)


@dataclass
class VideoResult:
    """The scores of one video."""

    record: VideoRecord
    snippet_scores: np.ndarray  # (n,) streaming score of each snippet
    frame_scores: np.ndarray  # (num_frames,) each frame's snippet score
    attention: np.ndarray  # (n,) the head's attention over the whole video (for plots)
    # with a motion forest: the network-only and forest-only streaming scores (n,) of each snippet
    parts: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def video_score(self) -> float:
        return float(self.snippet_scores.max())


@torch.no_grad()
def video_features(
    backbone: nn.Module,
    path: str | Path,
    config: Mapping[str, Any],
    device: torch.device,
    batch_size: int = 16,
    fusion: MotionFusion | None = None,
) -> np.ndarray:
    """Features ``(n, D)`` float32 of every snippet of a video, by the torch backbone on ``device`` (with a
    motion forest: rows ``(n, D + stats)``, :func:`edge_runtime.motion_fusion.fused_features`)."""
    cfg = to_preprocess_config(config)
    s, stride = int(config["clip_length"]), int(config["frame_stride"])
    feats = [
        fused_features(_features(backbone, network_input(batch, fusion), device), batch, fusion)
        for batch in iter_snippet_batches(path, s, cfg, stride, batch_size, motion_crops(fusion))
    ]
    return np.concatenate(feats)


def _features(backbone: nn.Module, batch: np.ndarray, device: torch.device) -> np.ndarray:
    return backbone(torch.from_numpy(np.ascontiguousarray(batch)).to(device)).float().cpu().numpy()


def torch_head(head: nn.Module, device: torch.device | str = "cpu") -> HeadFn:
    """The torch head (``(N, K, D) -> snippet_scores (N, K)``) as the streaming rule's head function."""

    @torch.no_grad()
    def scores(windows: np.ndarray) -> np.ndarray:
        return head(torch.from_numpy(windows).to(device)).snippet_scores.float().cpu().numpy()

    return scores


@torch.no_grad()
def score_video(
    model: nn.Module,
    record: VideoRecord,
    config: Mapping[str, Any],
    device: torch.device,
    batch_size: int = 16,
    fusion: MotionFusion | None = None,
) -> VideoResult:
    """Streaming scores of one video (see the module docstring)."""
    rows = video_features(model.backbone, record.path, config, device, batch_size, fusion)  # (n, D[+stats])
    if (
        fusion is not None and fusion.pose is not None
    ):  # each snippet's pose block last (edge_runtime.pose_fusion)
        rows = pose_rows(rows, pose_source(config).blocks(record.path, len(rows)), fusion.pose)
    k, net = int(config["num_snippets"]), torch_head(model.head, device)
    snippet_scores = streaming_scores(fused_head(net, fusion), rows, k, batch_size=64)
    parts = {}
    if fusion is not None:
        parts = {
            name: streaming_scores(fused_head(net, fusion.part(name)), rows, k, batch_size=64)
            for name in fusion.parts
        }
    feats = network_features(rows, fusion)
    whole = torch.from_numpy(np.ascontiguousarray(feats[None])).to(device)  # (1, n, D)
    attention = model.head(whole).attention_weights[0].float().cpu().numpy()  # (n,)
    owner = frame_to_snippet(
        record.num_frames,
        int(config["clip_length"]),
        int(config["frame_stride"]),
        fps=record.fps,
        rate=float(config["frame_rate"]),
    )
    return VideoResult(
        record, snippet_scores, snippet_scores[np.minimum(owner, len(snippet_scores) - 1)], attention, parts
    )


def score_videos(
    model: nn.Module,
    config: Mapping[str, Any],
    test_path: str | Path,
    *,
    device: str | torch.device | None = None,
    batch_size: int = 16,
    progress: bool = True,
    fusion: MotionFusion | None = None,
) -> tuple[list[VideoResult], list[SkippedVideo]]:
    """Score every readable video of a split folder; unreadable ones are skipped (warned, returned)."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = model.to(device).eval()
    records, skipped = scan_videos(test_path)
    results = []
    for record in tqdm(records, desc="scoring", unit="video", disable=not progress):
        try:
            results.append(score_video(model, record, config, device, batch_size, fusion))
        except VideoReadError as exc:
            logger.warning("skipping video %s: %s", record.path, exc)
            skipped.append(SkippedVideo(record.path, str(exc)))
    return results, skipped


def _plots(
    results: list[VideoResult],
    report: dict[str, Any],
    out: Path,
    history: Path | None,
    annotate: int,
    progress: bool,
) -> None:
    from training.plots import (
        create_video_with_annotations,
        plot_anomaly_scores_timeline,
        plot_roc_pr,
        plot_training_curves,
        visualize_attention_weights,
    )

    thr = report["threshold"]
    labels = [r.record.label for r in results]
    if len(set(labels)) == 2:
        plot_roc_pr(labels, [r.video_score for r in results], out / "roc_pr.png", threshold=thr)
    for r in tqdm(results, desc="plots", unit="video", leave=False, disable=not progress):
        name = r.record.key.replace("/", "__")
        title = f"{r.record.key} (label {r.record.label}, score {r.video_score:.3f})"
        plot_anomaly_scores_timeline(
            r.frame_scores,
            out / "timelines" / f"{name}.png",
            threshold=thr,
            frame_labels=r.record.frame_labels,
            title=title,
        )
        visualize_attention_weights(
            r.attention, r.snippet_scores, save_path=out / "attention" / f"{name}.png"
        )
    if history is not None and history.is_file():
        plot_training_curves(
            json.loads(history.read_text(encoding="utf-8")), save_path=out / "training_curves.png"
        )
    # a few videos with the score drawn in: the highest-scored anomalous ones and the highest-scored normal one
    ranked = sorted(results, key=lambda r: -r.video_score)
    chosen = [r for r in ranked if r.record.label == 1][: max(annotate - 1, 0)] + [
        r for r in ranked if r.record.label == 0
    ][:1]
    for r in chosen[:annotate]:
        name = r.record.key.replace("/", "__")
        create_video_with_annotations(
            r.record.path,
            r.frame_scores,
            out / "videos" / name,
            threshold=thr,
            frame_labels=r.record.frame_labels,
            progress=progress,
        )


def evaluate(
    model: nn.Module,
    config: Mapping[str, Any],
    test_path: str | Path,
    output_dir: str | Path,
    *,
    threshold: float | None = None,
    visualize: bool = False,
    history_path: str | Path | None = None,
    annotate_videos: int = 3,
    device: str | torch.device | None = None,
    progress: bool = True,
    fusion: MotionFusion | None = None,
) -> dict[str, Any]:
    """Score ``test_path``, write ``report.json`` (and plots with ``visualize``) into ``output_dir``; with
    ``fusion`` (the run's motion forest) the fused scores, and the parts' video AUCs in ``motion_forest``."""
    out = Path(output_dir)
    results, skipped = score_videos(model, config, test_path, device=device, progress=progress, fusion=fusion)
    if not results:
        raise VideoReadError(f"no video of {test_path} could be scored")
    report = _report(results, skipped, config, test_path, threshold, fusion)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".report.json.tmp"
    tmp.write_text(json.dumps(json_safe(report), indent=2) + "\n", encoding="utf-8")
    tmp.replace(out / "report.json")
    if visualize:
        history = Path(history_path) if history_path else None
        _plots(results, report, out, history, annotate_videos, progress)
    return report


def _report(
    results: list[VideoResult], skipped: list[SkippedVideo], config: Mapping[str, Any], test_path: str | Path,
    threshold: float | None, fusion: MotionFusion | None,
) -> dict[str, Any]:  # fmt: skip
    """``report.json``: video and frame metrics at ``threshold`` (None or not finite: the test set's own
    Youden-optimal one), each video's scores, the skipped videos, and with ``fusion`` the parts' AUCs."""
    labels = np.array([r.record.label for r in results])
    scores = np.array([r.video_score for r in results])
    source = "checkpoint (chosen on validation)"
    if threshold is None or not math.isfinite(threshold):
        threshold = video_metrics(labels, scores)["optimal_threshold"]
        source = "test set's own Youden-optimal threshold (the checkpoint has none)"
    video = video_metrics(labels, scores, threshold)
    frame = frame_metrics(
        [r.record.frame_labels for r in results], [r.frame_scores for r in results], threshold
    )
    report = {
        "test_path": str(test_path),
        "scoring": SCORING,
        "threshold": float(threshold),
        "threshold_source": source,
        "config": dict(config),
        "video_metrics": video,
        "frame_metrics": frame,
        "videos": [
            {
                "video": r.record.key,
                "label": r.record.label,
                "score": r.video_score,
                "num_snippets": len(r.snippet_scores),
                "snippet_scores": r.snippet_scores.tolist(),
                # with a motion forest, each snippet's network-only and forest-only (and pose-only) scores: the
                # fused one is (1 - p) * ((1 - motion_weight) * network + motion_weight * forest) + p * pose
                # (p: pose_weight, 0 without a pose forest), so any weights can be scored again
                **({"parts": {name: p.tolist() for name, p in r.parts.items()}} if r.parts else {}),
            }
            for r in results
        ],
        "skipped": [{"video": str(s.path), "reason": s.reason} for s in skipped],
    }
    if fusion is not None:
        parts = {
            name: video_metrics(labels, np.array([r.parts[name].max() for r in results]))["auc_roc"]
            for name in fusion.parts
        }
        report["motion_forest"] = {"weight": fusion.weight, "video_auc": {"fused": video["auc_roc"], **parts}}
        if fusion.pose is not None:
            report["motion_forest"]["pose_weight"] = fusion.pose.weight
    return report


def _fmt(value: Any) -> str:
    return (
        "n/a" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.4f}"
    )


def format_summary(report: Mapping[str, Any]) -> str:
    """A short table of the headline numbers."""
    v, f = report["video_metrics"], report["frame_metrics"]
    rows = [
        ("videos", f"{v['n_videos']} ({v['n_positive']} anomalous)", "frames", f"{f['n_frames']} annotated"),
        ("video AUC", _fmt(v["auc_roc"]), "frame AUC", _fmt(f["frame_auc"])),
        ("video AP", _fmt(v["auc_pr"]), "frame AP", _fmt(f["frame_ap"])),
        ("EER", _fmt(v["eer"]), "temporal IoU", _fmt(f["temporal_iou"])),
        ("accuracy", _fmt(v["accuracy_at_threshold"]), "precision@k", _fmt(f["precision_at_k"])),
        ("threshold", _fmt(report["threshold"]), "skipped", str(len(report["skipped"]))),
    ]
    if "motion_forest" in report:
        m = report["motion_forest"]
        auc = m["video_auc"]
        rows.append(("network AUC", _fmt(auc["network"]), "forest AUC", _fmt(auc["forest"])))
        if "pose" in auc:
            rows.append(("pose AUC", _fmt(auc["pose"]), "pose share", f"{m['pose_weight']:g}"))
        rows.append(("fused with", f"forest share {m['weight']:g}", "", ""))
    return "\n".join(f"{a:<12}{b:>18}    {c:<14}{d:>14}" for a, b, c, d in rows)
