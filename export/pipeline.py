"""The export pipeline: checkpoint -> ONNX -> calibrated INT8 for a target -> FP32-vs-INT8 report -> bundle.

Stages (each logged as ``export stage i/6: ...``): 1 calibrate (choose and read the clips), 2 export (ONNX,
checked against torch), 3 quantize (per target), 4 threshold (the checkpoint's, else FP32 on validation videos;
and the event policy, chosen on the validation videos: :mod:`export.event_policy`), 5 evaluate (held-out test
videos through the runtime backends, the accuracy and event gates), 6 write (the bundle, atomically).

A checkpoint with a motion forest (:mod:`training.motion_forest`) is scored fused at every stage, FP32 and
INT8 alike (the forest is the same in both), and the forest goes into the bundle as ``motion_forest.npz``,
listed in the manifest's ``motion_forest`` entry (file, SHA-256, statistics version, weight).

Work files live in ``.<out name>.tmp-<pid>-work*`` beside ``--out``: a killed export leaves no bundle at
``--out``, and the next export to that folder removes the leftover (:func:`export.bundle.clean_stale_temp_dirs`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from calibration.select import (
    CalibrationSet,
    read_snippets,
    save_calibration_set,
    select_calibration_set,
)
from edge_runtime.bundle import sha256_file
from export.manifest import build_manifest, pose_extras
from export.scoring import VideoScores
from export.targets import TargetFiles, quantize_target, runtime_backend
from training.data import DatasetError, VideoRecord, find_splits, scan_videos

__all__ = ["ExportError", "ExportOptions", "ExportResult", "run_export"]

log = logging.getLogger(__name__)

STAGES = ("calibrate", "export", "quantize", "threshold", "evaluate", "write")


class ExportError(ValueError):
    """Bad export input (missing split, overlapping data, existing output); one line naming the option."""


@dataclass
class ExportOptions:
    """What ``i3dmtn export`` was asked to do (see ``export.command`` for each option's meaning)."""

    checkpoint: Path
    calib_data: Path
    out: Path
    target: str = "onnx"
    precision: str = "int8"
    eval_data: Path | None = None
    calib_snippets: int = 300
    max_auc_drop: float = 0.01
    allow_accuracy_drop: bool = False
    allow_event_loss: bool = False
    accuracy_control: bool = False
    overwrite: bool = False
    seed: int = 0
    preset: str = "mixed"
    head_windows: int = 64
    profile: str | None = None
    baseline: Path | None = None  # an older bundle to compare with on the held-out videos (export.baseline)
    progress: bool = True  # progress bars (its own and NNCF's) where the output is a terminal; False: none


@dataclass
class ExportResult:
    bundle: Path
    report: dict[str, Any]


def _stage(i: int, text: str) -> None:
    log.info("export stage %d/%d: %s: %s", i + 1, len(STAGES), STAGES[i], text)


def _split(roots: list[Path | None], name: str) -> Path | None:
    """The ``name`` split folder of the first root that has one."""
    for root in roots:
        if root is None:
            continue
        try:
            splits = find_splits(root)
        except DatasetError as exc:
            raise ExportError(str(exc)) from None
        if name in splits:
            return splits[name]
    return None


def _records(folder: Path) -> list[VideoRecord]:
    try:
        return scan_videos(folder)[0]
    except DatasetError as exc:
        raise ExportError(str(exc)) from None


def check_disjoint(cal: CalibrationSet, calib_root: Path, test: list[VideoRecord]) -> None:
    """Refuse held-out videos that are calibration videos (same file, or same content by SHA-256)."""
    paths = {(calib_root / v).resolve() for v in cal.videos}
    hashes = {c.sha256 for c in cal.clips}
    for rec in test:
        if rec.path.resolve() in paths or sha256_file(rec.path) in hashes:
            raise ExportError(
                f"held-out video {rec.path} is also a calibration video: the report would not be held out"
            )


def _threshold(ckpt: dict, val: VideoScores | None) -> tuple[float, str]:
    """Operating threshold: the checkpoint's (chosen on validation during training, as ``i3dmtn evaluate``
    uses it), else Youden's on the validation videos' scores ``val`` (FP32, scored like the device; None when
    there are no validation videos of both classes)."""
    from training.metrics import video_metrics

    thr = ckpt.get("threshold")
    if thr is not None and np.isfinite(thr):
        return float(thr), "checkpoint threshold (chosen on validation videos during training)"
    if val is not None:
        m = video_metrics(np.asarray(val.labels), val.video_scores)
        if np.isfinite(m["optimal_threshold"]):
            return float(
                m["optimal_threshold"]
            ), f"optimal_threshold of {len(val.labels)} validation videos, FP32 runtime scoring"
    raise ExportError(
        "no operating threshold: the checkpoint records none and neither --eval-data nor --calib-data has a val/ "
        "split with both normal and anomalous videos"
    )


def _open_baseline(opts: ExportOptions, pre: Any, s: int, stride: int) -> Any:
    """The ``--baseline`` bundle (checked before any work is done), or None."""
    if opts.baseline is None:
        return None
    from export.baseline import BaselineError, open_baseline

    try:
        return open_baseline(opts.baseline, pre, s, stride)
    except BaselineError as exc:
        raise ExportError(str(exc)) from None


def _work_dir(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-work", dir=out.parent))


@dataclass
class _Inputs:
    """What the stages share: the checkpoint's model and contract, and the videos of the data folders."""

    opts: ExportOptions
    model: Any
    config: dict
    ckpt: dict
    fusion: Any  # the checkpoint's motion forest fusion; None: the network's scores alone
    pre: Any  # the preprocessing contract (``PreprocessConfig``)
    test: list[VideoRecord]
    val: list[VideoRecord]
    baseline: Any  # the ``--baseline`` bundle, opened, or None

    @property
    def s(self) -> int:
        return int(self.config["clip_length"])

    @property
    def k(self) -> int:
        return int(self.config["num_snippets"])

    @property
    def stride(self) -> int:
        return int(self.config["frame_stride"])

    @property
    def poses(self) -> Any:
        """With a pose forest, the pose blocks of a whole video, ``(path, num_snippets) -> blocks``; else None."""
        if self.fusion is None or self.fusion.pose is None:
            return None
        from training.pose_forest import pose_source

        return pose_source(self.config).blocks

    @property
    def scoring(self) -> dict[str, Any]:
        """The keyword arguments of :func:`export.scoring.score_with_backends`: the device's streaming rule."""
        return {"preprocess": self.pre, "snippet_length": self.s, "frame_stride": self.stride,
                "window": self.k, "fusion": self.fusion, "poses": self.poses,
                "progress": self.opts.progress}  # fmt: skip


def _prepare(opts: ExportOptions) -> _Inputs:
    """Load the checkpoint and list the held-out and validation videos; refuse what cannot be exported."""
    from training.checkpoint import load_checkpoint
    from training.configs import to_preprocess_config
    from training.motion_forest import load_checkpoint_fusion

    model, config, ckpt = load_checkpoint(opts.checkpoint)
    fusion = load_checkpoint_fusion(opts.checkpoint, ckpt)  # None: the network's scores alone
    model.eval()
    pre = to_preprocess_config(config)
    test_dir = _split([opts.eval_data, opts.calib_data], "test")
    if test_dir is None:
        raise ExportError("no held-out videos: neither --eval-data nor --calib-data has a test/ split")
    test = _records(test_dir)
    baseline = _open_baseline(opts, pre, int(config["clip_length"]), int(config["frame_stride"]))
    val_dir = _split([opts.eval_data, opts.calib_data], "val")
    val = _records(val_dir) if val_dir else []
    if opts.accuracy_control and len({r.label for r in val}) < 2:
        raise ExportError(
            "--accuracy-control measures video AUC on validation videos: neither --eval-data nor --calib-data "
            "has a val/ split with both normal/ and anomaly/ videos"
        )
    return _Inputs(opts, model, config, ckpt, fusion, pre, test, val, baseline)


def _calibrate(run: _Inputs, work: Path) -> tuple[CalibrationSet, np.ndarray, list[np.ndarray]]:
    """Stage 1: the calibration set (saved in ``work``), its snippets and the head's feature windows."""
    import torch

    from calibration.adapters import head_windows

    opts = run.opts
    _stage(0, f"choosing {opts.calib_snippets} snippets from {opts.calib_data} (seed {opts.seed})")
    cal = select_calibration_set(opts.calib_data, count=opts.calib_snippets, preprocess=run.pre,
                                 snippet_length=run.s, frame_stride=run.stride, seed=opts.seed,
                                 progress=opts.progress)  # fmt: skip
    check_disjoint(cal, Path(opts.calib_data), run.test)
    save_calibration_set(cal, work / "calibration_set.json")
    snippets = read_snippets(cal, opts.calib_data, progress=opts.progress)

    def torch_features(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return run.model.backbone(torch.from_numpy(x)).numpy()

    windows = head_windows(cal, opts.calib_data, torch_features, window=run.k, max_windows=opts.head_windows,
                           progress=opts.progress)  # fmt: skip
    return cal, snippets, windows


def _threshold_and_policy(run: _Inputs, variants: dict) -> tuple[float, str, tuple]:
    """Stage 4: the operating threshold and the event policy (``export_event_policy``'s three results)."""
    from export.event_policy import export_event_policy
    from export.scoring import score_with_backends

    _stage(3, "operating threshold (checkpoint, else validation videos), event policy (validation videos)")
    val_fp32 = None
    if len({r.label for r in run.val}) == 2:
        val_fp32 = score_with_backends(
            {"fp32": variants["fp32"]}, run.val, desc="validation videos", **run.scoring
        )
        val_fp32 = val_fp32["fp32"][0]
    thr, thr_source = _threshold(run.ckpt, val_fp32)
    return thr, thr_source, export_event_policy(val_fp32, run.s * run.stride, thr)


def _gates(
    run: _Inputs, files: TargetFiles, scored: dict, thr: float, policy: Any, report: dict, work: Path
) -> tuple[dict, dict, VideoScores]:
    """FP32 vs the shipped precision: the comparison, the accuracy and event gates, and the shipped scores
    (an INT8 export chooses its head here and draws the plots into ``work/plots``)."""
    from export.report import compare, event_gate, gate, write_plots

    opts, fp32, frames = run.opts, scored["fp32"][0], run.s * run.stride
    if opts.precision == "fp32":
        comparison = compare(fp32, fp32, thr, snippet_frames=frames, policy=policy)
        accuracy = {
            "gate": "not_checked",
            "reason": "fp32 export: nothing quantized",
            "fp32_video_auc": comparison["fp32"]["video_auc"],
            "event_gate": "not_checked",
        }
        return comparison, accuracy, fp32
    int8 = files.choose_head(scored["int8"], fp32, report)
    report["head_quantization"]["int8_head_bytes"] = files.head_candidates[0][0].stat().st_size
    comparison = compare(fp32, int8, thr, snippet_frames=frames, policy=policy)
    write_plots(fp32, int8, thr, work / "plots")
    accuracy = gate(comparison, opts.max_auc_drop, opts.allow_accuracy_drop)
    accuracy.update(event_gate(comparison, opts.allow_event_loss))
    return comparison, accuracy, int8


@dataclass
class _Evaluation:
    """What stages 4 and 5 give the bundle: the report, the threshold, the accuracy and event policy entries
    of the manifest, and the files besides the models."""

    report: dict[str, Any]
    threshold: float
    accuracy: dict[str, Any]
    policy: dict | None
    extras: dict[str, Path]


def _evaluate(
    run: _Inputs, cal: CalibrationSet, onnx_files: Any, files: TargetFiles, snippets: np.ndarray, work: Path
) -> _Evaluation:
    """Stages 4 and 5: threshold and event policy on the validation videos, then FP32 vs the shipped
    precision on the held-out videos through the runtime's backend, the gates and the report."""
    from export.report import latency_ms
    from export.scoring import score_with_backends
    from training.motion_forest import FOREST_FILE

    opts, backend = run.opts, runtime_backend(run.opts.target)
    variants = files.open_backends(backend)
    thr, thr_source, (policy, policy_report, policy_manifest) = _threshold_and_policy(run, variants)
    _stage(4, f"FP32 vs {opts.precision.upper()} on {len(run.test)} held-out videos via {backend}")
    scored = score_with_backends(variants, run.test, desc="held-out videos", **run.scoring)
    report: dict[str, Any] = {"target": opts.target, "precision": opts.precision, "backend": backend,
                              "threshold": thr, "threshold_source": thr_source, "event_policy": policy_report,
                              "onnx_export": onnx_files.report(), "calibration": cal.summary(),
                              "quantization": files.settings}  # fmt: skip
    lat = {"fp32": latency_ms(variants["fp32"][0], snippets)}
    extras = {"report.json": work / "report.json", "calibration_set.json": work / "calibration_set.json"}
    if run.fusion is not None:
        extras[FOREST_FILE] = Path(opts.checkpoint).parent / run.ckpt["motion_forest"]["file"]
        report["motion_forest"] = {"weight": run.fusion.weight, "trees": run.fusion.forest.n_trees,
                                   "scores": "fused (network and forest) for FP32 and INT8 alike"}  # fmt: skip
    if run.fusion is not None and run.fusion.pose is not None:
        extras.update(pose_extras(run.ckpt, run.config, Path(opts.checkpoint)))
        report["pose_forest"] = {"weight": run.fusion.pose.weight, "trees": run.fusion.pose.forest.n_trees,
                                 "every": run.fusion.pose.every, "height": run.fusion.pose.height}  # fmt: skip
    comparison, accuracy, shipped = _gates(run, files, scored, thr, policy, report, work)
    if opts.precision != "fp32":
        lat["int8"] = latency_ms(variants["int8"][0], snippets)
        extras["plots"] = work / "plots"
    if run.baseline is not None:
        from export.baseline import baseline_report

        report["baseline"] = baseline_report(
            run.baseline, run.test, shipped, policy, run.s * run.stride, progress=run.opts.progress
        )
    report.update({"file_sizes_bytes": files.sizes(), "comparison": comparison, "accuracy": accuracy,
                   "backbone_latency_ms_batch1": {**lat, "machine": "this export machine, median of 5"}})  # fmt: skip
    return _Evaluation(report, thr, accuracy, policy_manifest, extras)


def run_export(opts: ExportOptions) -> ExportResult:
    """Run every stage; raises :class:`ExportError`, ``AccuracyGateError`` or the bundle writer's errors."""
    from calibration.adapters import snippet_batches
    from export.bundle import write_bundle
    from export.onnx import export_onnx
    from export.openvino_int8 import nncf_bars
    from training.metrics import json_safe

    out = Path(opts.out).absolute()
    if out.exists() and not opts.overwrite:
        raise ExportError(f"--out {out} already exists; pass --overwrite to replace it")
    run = _prepare(opts)
    work = _work_dir(out)
    try:
        cal, snippets, windows = _calibrate(run, work)
        _stage(1, "backbone and head to ONNX (opset 17), checked against torch")
        onnx_files = export_onnx(run.model, work, snippets=snippets, windows=windows)
        _stage(2, f"target {opts.target}, precision {opts.precision}")
        with nncf_bars(opts.progress):
            files = quantize_target(
                opts, onnx_files, snippet_batches(snippets), windows, work, val=run.val, preprocess=run.pre,
                config=run.config, fusion=run.fusion,
            )  # fmt: skip
        result = _evaluate(run, cal, onnx_files, files, snippets, work)
        files.close()
        report_json = json.dumps(json_safe(result.report), indent=2, allow_nan=False)
        (work / "report.json").write_text(report_json + "\n")
        fps = float(np.median([r.fps for r in run.test])) if run.test else 25.0
        _stage(5, f"bundle {out}")
        manifest = build_manifest(run.config, run.ckpt, opts.checkpoint, target=opts.target,
                                  precision=opts.precision, threshold=result.threshold, accuracy=result.accuracy,
                                  fps=fps if fps > 0 else 25.0, events=result.policy)  # fmt: skip
        bundle = write_bundle(out, manifest=json_safe(manifest), files=files.specs,
                              extras={**result.extras, **files.extras}, overwrite=opts.overwrite,
                              progress=opts.progress)  # fmt: skip
        return ExportResult(bundle, result.report)
    finally:
        shutil.rmtree(work, ignore_errors=True)
