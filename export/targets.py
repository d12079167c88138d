"""Per-target model files of a bundle: FP32 always, INT8 through the target's quantizer, and the head choice.

| target | FP32 files | INT8 backbone | INT8 head | runtime backend used for the report |
|---|---|---|---|---|
| ``openvino`` | OpenVINO IR | NNCF (:mod:`export.openvino_int8`) | NNCF, if it keeps accuracy | openvino (CPU, f32) |
| ``onnx`` | ONNX | ORT QDQ (:mod:`export.ort_int8`) | ORT QDQ, if it keeps accuracy | onnxruntime |
| ``jetson`` | ONNX | symmetric Q/DQ (:mod:`export.jetson_qdq`) | the same, if it keeps accuracy | onnxruntime (CPU) |

The head is tiny next to the backbone, so its INT8 version is kept only when the measurement says it costs
nothing: held-out video AUC with the INT8 head within ``HEAD_AUC_TOLERANCE`` of the same INT8 backbone with
the FP32 head. Otherwise the head's INT8 slot holds the FP32 head and the report says why.
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from export.bundle import BundleFileSpec
from export.onnx import OnnxExport, backbone_specs, head_specs

__all__ = ["HEAD_AUC_TOLERANCE", "TARGETS", "Target", "TargetFiles", "quantize_target", "runtime_backend"]

log = logging.getLogger(__name__)

HEAD_AUC_TOLERANCE = 0.002


@dataclass
class TargetFiles:
    """Model files per precision: ``paths[precision][role] = (path, format)``."""

    onnx: OnnxExport
    shape: tuple[int, tuple[int, ...], int]  # the backbone's input: (snippet length, crop (h, w), channels)
    paths: dict[str, dict[str, tuple[Path, str]]]
    settings: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Path] = field(default_factory=dict)
    head_candidates: list[tuple[Path, str]] = field(default_factory=list)  # INT8 slot: [int8 head, fp32 head]
    _open: list[Any] = field(default_factory=list)

    def open_backends(self, kind: str) -> dict[str, tuple[Any, list[Any]]]:
        from edge_runtime.backends import create_backend

        def make(path: Path, fmt: str) -> Any:
            backend = create_backend(kind, path, fmt=fmt, device="CPU")
            self._open.append(backend)
            return backend

        fp32 = self.paths["fp32"]
        out = {"fp32": (make(*fp32["backbone"]), [make(*fp32["head"])])}
        if "int8" in self.paths:
            out["int8"] = (make(*self.paths["int8"]["backbone"]), [make(*c) for c in self.head_candidates])
        return out

    def choose_head(self, candidates: list[Any], fp32: Any, report: dict[str, Any]) -> Any:
        """Keep the INT8 head if it keeps accuracy (see module docstring); returns the chosen scores."""
        from training.metrics import video_metrics

        def auc(scores: Any) -> float:
            return video_metrics(np.asarray(scores.labels), scores.video_scores)["auc_roc"]

        def diff(scores: Any) -> float:
            return float(np.mean(np.abs(scores.video_scores - fp32.video_scores)))

        with_int8, with_fp32 = candidates
        a8, a32 = auc(with_int8), auc(with_fp32)
        if math.isfinite(a8) and math.isfinite(a32):
            keep = a8 >= a32 - HEAD_AUC_TOLERANCE
            why = f"held-out video AUC {a8:.4f} with the INT8 head vs {a32:.4f} with the FP32 head (tolerance {HEAD_AUC_TOLERANCE})"
        else:
            keep = diff(with_int8) <= diff(with_fp32) * 1.5 + 1e-3
            why = f"AUC undefined; mean |score - FP32| {diff(with_int8):.4f} with the INT8 head vs {diff(with_fp32):.4f}"
        chosen = self.head_candidates[0 if keep else 1]
        self.paths["int8"]["head"] = chosen
        report["head_quantization"] = {"quantized": keep, "reason": why}
        log.info("head: %s (%s)", "INT8 kept" if keep else "FP32 kept in the INT8 slot", why)
        return with_int8 if keep else with_fp32

    @property
    def specs(self) -> list[BundleFileSpec]:
        """Bundle entries named ``{role}_{precision}.{xml|onnx}`` (a FP32 head in the INT8 slot is copied)."""
        d = self.onnx.feature_dim
        s, crop, channels = self.shape
        io = {"backbone": backbone_specs(s, crop, d, channels), "head": head_specs(d)}
        out = []
        for precision, roles in self.paths.items():
            for role, (path, fmt) in roles.items():
                name = f"{role}_{precision}{'.xml' if fmt == 'openvino' else '.onnx'}"
                if path.name != name:
                    path = _copy_as(path, path.parent / "slot" / name)
                comps = [path.with_suffix(".bin")] if fmt == "openvino" else []
                out.append(BundleFileSpec(path, role, precision, fmt, *io[role], companions=comps, name=name))
        return out

    def sizes(self) -> dict[str, int]:
        return {
            f"{role}_{p}": path.stat().st_size
            + (path.with_suffix(".bin").stat().st_size if fmt == "openvino" else 0)
            for p, roles in self.paths.items()
            for role, (path, fmt) in roles.items()
        }

    def close(self) -> None:
        for backend in self._open:
            backend.close()
        self._open.clear()


def _copy_as(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    if src.suffix == ".xml":
        shutil.copyfile(src.with_suffix(".bin"), dst.with_suffix(".bin"))
    return dst


def _ac_validate(
    onnx_files: OnnxExport, val: list, preprocess: Any, config: dict, fusion: Any = None
) -> tuple[list, Any]:
    """NNCF accuracy-control validation items (one per val video) and the metric: video AUC, FP32 head (fused
    with the motion forest when the run has one, as the device scores)."""
    from sklearn.metrics import roc_auc_score

    from edge_runtime.backends import create_backend
    from edge_runtime.motion_fusion import fused_features, fused_head, motion_crops, network_input
    from edge_runtime.pose_fusion import pose_rows
    from edge_runtime.scoring import backend_head, streaming_scores
    from training.data import iter_snippet_batches

    s, stride, k = int(config["clip_length"]), int(config["frame_stride"]), int(config["num_snippets"])
    pose = fusion.pose if fusion is not None else None
    items = [
        (
            np.concatenate(
                list(iter_snippet_batches(r.path, s, preprocess, stride, 8, motion_crops(fusion)))
            ),
            r,
        )
        for r in val
    ]
    if pose is not None:  # each video's pose blocks (training.pose_forest), as export's scoring adds them
        from training.pose_forest import pose_source

        blocks = pose_source(config).blocks
        items = [(snippets, (r.label, blocks(r.path, len(snippets)))) for snippets, r in items]
    else:
        items = [(snippets, (r.label, None)) for snippets, r in items]
    head = fused_head(backend_head(create_backend("onnxruntime", onnx_files.head, device="CPU")), fusion)

    def validate(compiled: Any, data: Any) -> float:
        scores, labels = [], []
        for snippets, (label, poses) in data:
            net = np.ascontiguousarray(network_input(snippets, fusion))  # the centre crop
            feats = fused_features(
                np.concatenate([compiled(net[i : i + 8])[compiled.output(0)] for i in range(0, len(net), 8)]),
                snippets,
                fusion,
            )
            feats = pose_rows(feats, poses, pose)
            scores.append(float(streaming_scores(head, np.asarray(feats, np.float32), k).max()))
            labels.append(label)
        if len(set(labels)) < 2:  # NNCF ranks layers on small subsets: a one-class subset has no AUC
            return -float(np.mean(np.abs(np.asarray(scores) - np.asarray(labels))))
        return float(roc_auc_score(labels, scores))

    return items, validate


def _refuse_unquantized(settings: dict[str, Any], max_drop: float) -> None:
    """NNCF's accuracy control may revert every layer to FP32: such a backbone is not INT8, so no bundle may
    say it is (``AccuracyGateError``: the export writes nothing and exits 1)."""
    from export.report import AccuracyGateError

    if settings["fake_quantize_nodes"] == 0:
        raise AccuracyGateError(
            f"accuracy control: NNCF reverted every quantized layer of the backbone to FP32 to keep the "
            f"validation AUC drop within --max-auc-drop {max_drop}, so there is no INT8 backbone; check the "
            f"calibration data, allow a larger --max-auc-drop, or export --precision fp32"
        )


@dataclass(frozen=True)
class Int8Inputs:
    """What a target's INT8 quantizer reads: the FP32 ONNX files, the calibration data, a work folder."""

    opts: Any  # the export's options: precision, preset, accuracy control and its --max-auc-drop
    onnx: OnnxExport
    snippets: list[np.ndarray]  # calibration batches for the backbone
    windows: list[np.ndarray]  # calibration feature windows for the head
    work: Path
    val: list  # validation videos (accuracy control)
    preprocess: Any
    config: dict
    fusion: Any = None


@dataclass
class Int8Files:
    """A target's INT8 output: the backbone, the INT8 head (a candidate, see ``choose_head``), the
    quantizers' settings per role and any extra bundle files."""

    backbone: tuple[Path, str]
    head: tuple[Path, str]
    settings: dict[str, Any]
    extras: dict[str, Path] = field(default_factory=dict)


def _onnx_fp32(onnx_files: OnnxExport, work: Path) -> dict[str, tuple[Path, str]]:
    return {"backbone": (onnx_files.backbone, "onnx"), "head": (onnx_files.head, "onnx")}


def _openvino_fp32(onnx_files: OnnxExport, work: Path) -> dict[str, tuple[Path, str]]:
    from export.openvino_int8 import convert_ir

    return {
        r: (convert_ir(p, work / f"{r}_fp32.xml"), "openvino")
        for r, p in (("backbone", onnx_files.backbone), ("head", onnx_files.head))
    }


def _openvino_int8(job: Int8Inputs) -> Int8Files:
    from export.openvino_int8 import quantize_ir, quantize_ir_with_accuracy_control

    opts, bb, hd = job.opts, job.work / "backbone_int8.xml", job.work / "head_int8.xml"
    if opts.accuracy_control:  # the pipeline checked that val holds both classes
        items, validate = _ac_validate(job.onnx, job.val, job.preprocess, job.config, job.fusion)
        backbone = quantize_ir_with_accuracy_control(
            job.onnx.backbone, bb, job.snippets, "snippets", items, validate,
            max_drop=opts.max_auc_drop, preset=opts.preset,
        )  # fmt: skip
        _refuse_unquantized(backbone, opts.max_auc_drop)
    else:
        backbone = quantize_ir(job.onnx.backbone, bb, job.snippets, "snippets", preset=opts.preset)
    head = quantize_ir(job.onnx.head, hd, job.windows, "features", preset=opts.preset)
    return Int8Files((bb, "openvino"), (hd, "openvino"), {"backbone": backbone, "head": head})


def _ort_int8(job: Int8Inputs) -> Int8Files:
    from export.ort_int8 import quantize_backbone, quantize_ort

    bb, hd = job.work / "backbone_int8.onnx", job.work / "head_int8.onnx"
    backbone = quantize_backbone(job.onnx.backbone, bb, job.snippets)
    head = quantize_ort(job.onnx.head, hd, job.windows, "features")
    return Int8Files((bb, "onnx"), (hd, "onnx"), {"backbone": backbone, "head": head})


def _jetson_int8(job: Int8Inputs) -> Int8Files:
    """Q/DQ ONNX for TensorRT, with the calibration arrays TensorRT's own calibrator can read on the device."""
    from calibration.adapters import write_npz
    from export.jetson_qdq import quantize_jetson

    bb, hd = job.work / "backbone_int8.onnx", job.work / "head_int8.onnx"
    backbone = quantize_jetson(job.onnx.backbone, bb, job.snippets, "snippets")
    head = quantize_jetson(job.onnx.head, hd, job.windows, "features")
    out = Int8Files((bb, "onnx-qdq"), (hd, "onnx-qdq"), {"backbone": backbone, "head": head})
    longest = max((w.shape[1] for w in job.windows), default=0)
    full = [w for w in job.windows if w.shape[1] == longest]
    npz = {"snippets": np.concatenate(job.snippets[:16])}
    out.extras["calibration_backbone.npz"] = write_npz(job.work / "calibration_backbone.npz", npz)
    if full:
        npz = {"features": np.concatenate(full)}
        out.extras["calibration_head.npz"] = write_npz(job.work / "calibration_head.npz", npz)
    return out


@dataclass(frozen=True)
class Target:
    """One export target: the runtime backend that scores its report here, how its FP32 files are made from
    the ONNX export, and its INT8 quantizer."""

    backend: str
    fp32: Callable[[OnnxExport, Path], dict[str, tuple[Path, str]]]
    int8: Callable[[Int8Inputs], Int8Files]


TARGETS: dict[str, Target] = {
    "openvino": Target("openvino", _openvino_fp32, _openvino_int8),
    "onnx": Target("onnxruntime", _onnx_fp32, _ort_int8),
    "jetson": Target("onnxruntime", _onnx_fp32, _jetson_int8),  # TensorRT's Q/DQ ONNX runs in ORT on CPU
}


def runtime_backend(target: str) -> str:
    """The backend that runs the report's evaluation here (TensorRT's Q/DQ ONNX runs in ONNX Runtime on CPU)."""
    return TARGETS[target].backend


def quantize_target(
    opts: Any, onnx_files: OnnxExport, snippets: list[np.ndarray], windows: list[np.ndarray], work: Path, *,
    val: list, preprocess: Any, config: dict, fusion: Any = None,
) -> TargetFiles:  # fmt: skip
    """FP32 files for ``opts.target`` and, for precision int8, the quantized ones (INT8 head as a candidate)."""
    target = TARGETS[opts.target]
    shape = (int(config["clip_length"]), tuple(preprocess.crop_size), preprocess.channels)
    fp32 = target.fp32(onnx_files, work)
    files = TargetFiles(onnx_files, shape, {"fp32": fp32})
    if opts.precision == "fp32":
        return files
    int8 = target.int8(Int8Inputs(opts, onnx_files, snippets, windows, work, val, preprocess, config, fusion))
    files.settings.update(int8.settings)
    files.extras.update(int8.extras)
    files.head_candidates = [int8.head, fp32["head"]]
    files.paths["int8"] = {"backbone": int8.backbone}
    return files
