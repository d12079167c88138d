"""What the runtime benchmark runs: full-width I3D (random init) at 224 px as an OpenVINO INT8 bundle, and its
test videos (flat frames for that bundle; 640x360 moving shapes for an exported bundle, so flow has work to do).

The backbone is the real cost (I3D, ~1024-d features, NNCF INT8 IR). The head is a linear probe on those
features, calibrated on a dark and a bright snippet so that "bright" scores ~1 and "dark" ~0: a random-init
model gives no meaningful fight score, and the latency benchmark needs events that start and end on cue.
The head is tiny, so it stays FP32 (its IR is listed as the int8 head; the cost is all in the backbone).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edge_runtime.preprocess import PreprocessConfig, preprocess_clip
from export.bundle import BundleFileSpec, write_bundle

__all__ = [
    "CROP",
    "S",
    "K",
    "FPS",
    "DARK",
    "BRIGHT",
    "CAMERA_FRAME",
    "flat_frames",
    "moving_frames",
    "build_bundle",
]

log = logging.getLogger(__name__)

CROP, S, K, FPS = 224, 16, 32, 30.0
DARK, BRIGHT = 20, 230
FRAME = (240, 320)  # h, w of the benchmark videos (a small camera stream)


def flat_frames(value: int, count: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` BGR frames of a flat ``value`` with a little noise."""
    rng = np.random.default_rng(seed)
    return [np.clip(value + rng.integers(-3, 4, (*FRAME, 3)), 0, 255).astype(np.uint8) for _ in range(count)]


CAMERA_FRAME = (360, 640)  # h, w of the moving-shapes videos (a typical camera sub-stream)


def _texture(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Smooth random BGR texture ``(h, w, 3)``: noise on a ``cell``-pixel grid, upscaled (gives flow edges)."""
    coarse = rng.integers(0, 256, (max(2, h // cell), max(2, w // cell), 3), dtype=np.uint8)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)


def moving_frames(count: int, seed: int = 0, shapes: int = 6) -> Iterator[np.ndarray]:
    """``count`` BGR frames of :data:`CAMERA_FRAME`: textured patches (80-160 px) moving 2-8 px per frame over
    a textured background, bouncing at the borders, with a little sensor noise. The textures are coarse enough
    that a flow contract's small frames (72 px) still see the motion."""
    rng = np.random.default_rng(seed)
    h, w = CAMERA_FRAME
    background = _texture(rng, h, w, 48)
    sizes = rng.integers(80, 160, (shapes, 2))  # (h, w) per patch
    patches = [_texture(rng, int(ph), int(pw), 20) for ph, pw in sizes]
    room = np.array([h, w]) - sizes  # the top-left corner's range per patch
    pos = rng.uniform(0, 1, (shapes, 2)) * room  # top-left (y, x)
    vel = rng.uniform(2, 8, (shapes, 2)) * rng.choice([-1, 1], (shapes, 2))
    for _ in range(count):
        frame = background.copy()
        for (ph, pw), patch, (y, x) in zip(sizes, patches, pos.astype(int), strict=True):
            frame[y : y + ph, x : x + pw] = patch
        noise = rng.integers(-3, 4, frame.shape)
        yield np.clip(frame + noise, 0, 255).astype(np.uint8)
        pos += vel
        vel[(pos < 0) | (pos > room)] *= -1
        pos = np.clip(pos, 0, room)


def _export_backbone(path: Path) -> None:
    import torch

    from training.model import InceptionI3d

    torch.manual_seed(0)
    net = InceptionI3d(width_multiplier=1.0).eval()
    example = torch.zeros(1, 3, S, CROP, CROP)
    torch.onnx.export(
        net, (example,), str(path), input_names=["snippets"], output_names=["features"],
        dynamic_axes={"snippets": {0: "N"}, "features": {0: "N"}}, opset_version=17, dynamo=False,
    )  # fmt: skip


def _write_head(path: Path, w: np.ndarray, bias: float) -> None:
    """``features (N,K,D) -> snippet_scores = sigmoid(features @ w + bias)``, softmax attention, video score."""
    d = len(w)
    inits = [
        numpy_helper.from_array(w.reshape(d, 1).astype(np.float32), "w"),
        numpy_helper.from_array(np.array(bias, np.float32), "b"),
        numpy_helper.from_array(np.array([2], np.int64), "axis2"),
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
    ]
    nodes = [
        helper.make_node("MatMul", ["features", "w"], ["proj"]),  # (N, K, 1)
        helper.make_node("Squeeze", ["proj", "axis2"], ["p"]),  # (N, K)
        helper.make_node("Add", ["p", "b"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["snippet_scores"]),
        helper.make_node("Softmax", ["logits"], ["attention"], axis=1),
        helper.make_node("Mul", ["attention", "snippet_scores"], ["weighted"]),
        helper.make_node("ReduceSum", ["weighted", "axis1"], ["video_score"], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, "probe_head", [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", "K", d])],
        [helper.make_tensor_value_info("snippet_scores", TensorProto.FLOAT, ["N", "K"]),
         helper.make_tensor_value_info("attention", TensorProto.FLOAT, ["N", "K"]),
         helper.make_tensor_value_info("video_score", TensorProto.FLOAT, ["N"])], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def build_bundle(folder: Path, *, calibration_items: int = 4) -> Path:
    """Export, quantize and write the bundle at ``folder/bundle`` (reused when it is already there)."""
    out = folder / "bundle"
    if (out / "manifest.json").is_file():
        return out
    import openvino as ov

    from export.openvino_int8 import convert_ir, quantize_ir

    work = folder / "work"
    work.mkdir(parents=True, exist_ok=True)
    cfg = PreprocessConfig.square(CROP)
    backbone_onnx = work / "backbone_fp32.onnx"
    log.info("exporting full-width I3D to ONNX")
    _export_backbone(backbone_onnx)
    dark = preprocess_clip(np.stack(flat_frames(DARK, S)), cfg)[None]  # (1, 3, S, H, W)
    bright = preprocess_clip(np.stack(flat_frames(BRIGHT, S, seed=1)), cfg)[None]
    rng = np.random.default_rng(0)
    items = [dark, bright] + [
        preprocess_clip(rng.integers(0, 256, (S, *FRAME, 3), dtype=np.uint8), cfg)[None]
        for _ in range(max(0, calibration_items - 2))
    ]
    log.info("NNCF INT8 quantization of the backbone on %d snippets (minutes on a small CPU)", len(items))
    backbone_xml = work / "backbone_int8.xml"
    quantize_ir(backbone_onnx, backbone_xml, items, "snippets")
    compiled = ov.Core().compile_model(str(backbone_xml), "CPU")
    f_dark = np.asarray(compiled({"snippets": dark})[0])[0]
    f_bright = np.asarray(compiled({"snippets": bright})[0])[0]
    w = (f_bright - f_dark) / max(float(np.sum((f_bright - f_dark) ** 2)), 1e-12) * 20.0  # logit +-10
    bias = -float(w @ (f_bright + f_dark) / 2)
    head_onnx = work / "head_fp32.onnx"
    _write_head(head_onnx, w, bias)
    head_xml = convert_ir(head_onnx, work / "head_int8.xml")
    d = len(w)
    io = {
        "backbone": ([{"name": "snippets", "shape": ["N", 3, S, CROP, CROP]}], [{"name": "features", "shape": ["N", d]}]),
        "head": ([{"name": "features", "shape": ["N", "K", d]}],
                 [{"name": n, "shape": s} for n, s in (("snippet_scores", ["N", "K"]), ("attention", ["N", "K"]),
                                                      ("video_score", ["N"]))]),
    }  # fmt: skip
    files = [
        BundleFileSpec(backbone_onnx, "backbone", "fp32", "onnx", *io["backbone"]),
        BundleFileSpec(head_onnx, "head", "fp32", "onnx", *io["head"]),
        BundleFileSpec(backbone_xml, "backbone", "int8", "openvino", *io["backbone"],
                       companions=[backbone_xml.with_suffix(".bin")]),
        BundleFileSpec(head_xml, "head", "int8", "openvino", *io["head"], companions=[head_xml.with_suffix(".bin")]),
    ]  # fmt: skip
    manifest = {
        "model": {"name": "i3d-random-probe", "version": "bench"},
        "target": "openvino",
        "precision": "int8",
        "preprocess": cfg.to_dict(),
        "window": {"snippet_length": S, "num_snippets": K, "frame_stride": 1, "fps": FPS},
        "threshold": 0.5,
        "accuracy": {"gate": "not_checked"},
    }
    return write_bundle(out, manifest=manifest, files=files)
