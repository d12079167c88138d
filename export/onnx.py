"""torch -> ONNX: the backbone and the head as two files, checked against torch on real inputs.

- backbone: ``snippets (N, 3, S, H, W) -> features (N, D)``, dynamic ``N``;
- head: ``features (N, K, D) -> snippet_scores (N, K), attention (N, K), video_score (N,)``, dynamic ``N`` and
  ``K`` (the device runs it over a ring that holds ``K' <= K`` features until it is full).

Exporter: the TorchScript exporter (``torch.onnx.export(..., dynamo=False)``), opset 17. torch 2.13's default
is the dynamo exporter, which needs ``onnxscript`` (not a dependency here), wants opset 18 and writes the
weights to an external ``.onnx.data`` file beside the model; a bundle file that is one self-contained
``.onnx`` is simpler to hash, copy and feed to ONNX Runtime, NNCF/OpenVINO and TensorRT alike, and opset 17
is what TensorRT 8.6+ and the OpenVINO / ONNX Runtime versions on devices read.

After export, ``onnx.checker.check_model`` runs and ONNX Runtime's outputs are compared with torch's on real
inputs (calibration snippets and windows of their features): the max abs difference must be within
``rtol * max(1, |torch output|.max())``; the differences go into the report.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from edge_runtime.bundle_files import TensorSpec
from edge_runtime.bundle_manifest import HEAD_OUTPUTS

__all__ = [
    "OPSET",
    "OnnxExport",
    "OnnxExportError",
    "export_onnx",
    "onnx_session",
    "backbone_specs",
    "head_specs",
]

log = logging.getLogger(__name__)

OPSET = 17
DEFAULT_RTOL = 1e-4  # of the output scale: float32 reassociation differences stay around 1e-6


class OnnxExportError(RuntimeError):
    """The exported model is invalid or does not reproduce torch's numbers."""


@dataclass
class OnnxExport:
    """The two exported files and how closely ONNX Runtime reproduces torch on them."""

    backbone: Path
    head: Path
    feature_dim: int
    max_abs_diff: dict[str, float] = field(default_factory=dict)  # per output name
    tolerance: dict[str, float] = field(default_factory=dict)  # the bound each was checked against

    def report(self) -> dict[str, Any]:
        return {
            "opset": OPSET,
            "exporter": "torchscript",
            "max_abs_diff": self.max_abs_diff,
            "tolerance": self.tolerance,
        }


class _Head(nn.Module):
    """The head with a plain tuple output named as the bundle names it."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.head(features)
        return out.snippet_scores, out.attention_weights, out.video_score


def backbone_specs(
    snippet_length: int, crop: tuple[int, int], feature_dim: int, channels: int = 3
) -> tuple[list, list]:
    """Manifest input / output specs of the backbone."""
    return (
        [TensorSpec("snippets", ("N", channels, snippet_length, *crop))],
        [TensorSpec("features", ("N", feature_dim))],
    )


def head_specs(feature_dim: int) -> tuple[list, list]:
    """Manifest input / output specs of the head (``K`` dynamic)."""
    return (
        [TensorSpec("features", ("N", "K", feature_dim))],
        [
            TensorSpec(HEAD_OUTPUTS[0], ("N", "K")),
            TensorSpec(HEAD_OUTPUTS[1], ("N", "K")),
            TensorSpec(HEAD_OUTPUTS[2], ("N",)),
        ],
    )


def onnx_session(path: Path, threads: int = 0) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


def _compare(
    path: Path, torch_out: dict[str, np.ndarray], inputs: dict[str, np.ndarray], rtol: float, into: OnnxExport
) -> None:
    session = onnx_session(path)
    names = [o.name for o in session.get_outputs()]
    got = dict(zip(names, session.run(None, inputs), strict=True))
    for name, ref in torch_out.items():
        diff = float(np.max(np.abs(got[name] - ref))) if ref.size else 0.0
        bound = rtol * max(1.0, float(np.max(np.abs(ref))) if ref.size else 1.0)
        into.max_abs_diff[name] = max(diff, into.max_abs_diff.get(name, 0.0))
        into.tolerance[name] = bound
        if not diff <= bound:
            raise OnnxExportError(
                f"{path.name}: ONNX Runtime output {name!r} differs from torch by {diff:.3g} (allowed {bound:.3g})"
            )


def export_onnx(
    model: nn.Module,
    out_dir: str | Path,
    *,
    snippets: np.ndarray,
    windows: list[np.ndarray],
    rtol: float = DEFAULT_RTOL,
) -> OnnxExport:
    """Export ``model.backbone`` and ``model.head`` (eval mode) to ``out_dir/backbone_fp32.onnx`` and
    ``head_fp32.onnx`` and check them on ``snippets (N, 3, S, H, W)`` and head ``windows`` ``[(1, K', D)]``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    backbone, head = model.backbone, _Head(model.head).eval()
    snippets = np.ascontiguousarray(snippets[: max(1, min(4, len(snippets)))], np.float32)
    example = torch.from_numpy(snippets[:1])
    with torch.no_grad():
        feature_dim = int(backbone(example).shape[1])
    result = OnnxExport(out_dir / "backbone_fp32.onnx", out_dir / "head_fp32.onnx", feature_dim)
    _write(backbone, head, example, result)
    _check_against_torch(backbone, head, snippets, windows, rtol, result)
    log.info("exported ONNX opset %d: %s, %s (max abs diff vs torch %s)", OPSET, result.backbone.name, result.head.name,
             {k: f"{v:.2e}" for k, v in result.max_abs_diff.items()})  # fmt: skip
    return result


def _write(backbone: nn.Module, head: nn.Module, example: torch.Tensor, result: OnnxExport) -> None:
    """Both files, with dynamic batch (and head window) axes, each passing ``onnx.checker``."""
    common = {"opset_version": OPSET, "dynamo": False, "do_constant_folding": True}
    warnings.filterwarnings("ignore", message="Constant folding - Only steps=1", category=UserWarning)
    torch.onnx.export(
        backbone, (example,), result.backbone, input_names=["snippets"], output_names=["features"],
        dynamic_axes={"snippets": {0: "N"}, "features": {0: "N"}}, **common,
    )  # fmt: skip
    k_example = torch.zeros(1, 2, result.feature_dim)
    torch.onnx.export(
        head, (k_example,), result.head, input_names=["features"], output_names=list(HEAD_OUTPUTS),
        dynamic_axes={"features": {0: "N", 1: "K"}, "snippet_scores": {0: "N", 1: "K"},
                      "attention": {0: "N", 1: "K"}, "video_score": {0: "N"}}, **common,
    )  # fmt: skip
    for path in (result.backbone, result.head):
        try:
            onnx.checker.check_model(str(path), full_check=True)
        except Exception as exc:  # onnx raises ValidationError / InferenceError
            raise OnnxExportError(f"{path.name} fails onnx.checker: {str(exc).splitlines()[0]}") from None


@torch.no_grad()
def _check_against_torch(
    backbone: nn.Module, head: nn.Module, snippets: np.ndarray, windows: list[np.ndarray], rtol: float,
    result: OnnxExport,
) -> None:  # fmt: skip
    """ONNX Runtime reproduces torch on each snippet (batch 1, as the device runs it), on one batch of all,
    and on up to 8 head windows; the differences go into ``result``."""
    for i in range(len(snippets)):
        batch = snippets[i : i + 1]
        features = {"features": backbone(torch.from_numpy(batch)).numpy()}
        _compare(result.backbone, features, {"snippets": batch}, rtol, result)
    features = {"features": backbone(torch.from_numpy(snippets)).numpy()}
    _compare(result.backbone, features, {"snippets": snippets}, rtol, result)
    for w in windows[:8]:
        out = dict(zip(HEAD_OUTPUTS, (t.numpy() for t in head(torch.from_numpy(w))), strict=True))
        _compare(result.head, out, {"features": w}, rtol, result)
