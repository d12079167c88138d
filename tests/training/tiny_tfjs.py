"""Test helpers: tiny TF.js graph models written as TF.js's converter writes them, and their numpy reference."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

_TF_TYPES = {np.dtype(np.float32): "DT_FLOAT", np.dtype(np.int32): "DT_INT32"}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def tf_node(name: str, op: str, inputs: Sequence[str] = (), **attr: Any) -> dict[str, Any]:
    """One node as in a TF.js ``modelTopology`` (attributes in their JSON form)."""
    node: dict[str, Any] = {"name": name, "op": op, "attr": attr}
    if inputs:
        node["input"] = list(inputs)
    return node


def ints(*values: int) -> dict[str, Any]:
    return {"list": {"i": [str(v) for v in values]}}


def strings(*values: str) -> dict[str, Any]:
    return {"list": {"s": [_b64(v) for v in values]}}


def text(value: str) -> dict[str, Any]:
    return {"s": _b64(value)}


FLOAT = {"type": "DT_FLOAT"}


def fused(name: str, op: str, inputs: Sequence[str], fused_ops: Sequence[str], **attr: Any) -> dict[str, Any]:
    """A ``_FusedConv2D`` / ``FusedDepthwiseConv2dNative`` / ``_FusedMatMul`` node as TF.js spells it."""
    return tf_node(
        name,
        op,
        inputs,
        T=FLOAT,
        fused_ops=strings(*fused_ops),
        num_args={"i": "1"},
        epsilon={"f": 0},
        **attr,
    )


def conv_attrs(stride: int, padding: str = "SAME") -> dict[str, Any]:
    return {
        "strides": ints(1, stride, stride, 1),
        "padding": text(padding),
        "data_format": text("NHWC"),
        "dilations": ints(1, 1, 1, 1),
        "explicit_paddings": {"list": {}},
    }


def write_tfjs_model(
    folder: Path,
    nodes: list[dict[str, Any]],
    weights: list[tuple[str, np.ndarray, str | None]],
    *,
    name: str = "tiny",
    shards: int = 1,
) -> dict[str, np.ndarray]:
    """Write ``folder/{name}.json`` and its weight shards ``{name}.{i}.bin``; a Const node is added for each
    weight ``(name, values, quantisation)`` (quantisation None, "uint8", "uint16" or "float16").
    Returns each weight as the converter must dequantise it."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest, stored, values = [], [], {}
    for weight_name, array, quantisation in weights:
        data, entry, values[weight_name] = _encode(array, quantisation)
        manifest.append({"name": weight_name, "shape": list(array.shape), **entry})
        stored.append(data)
        dtype = _TF_TYPES[array.dtype]
        shape = {"dim": [{"size": str(s)} for s in array.shape]}
        const = tf_node(
            weight_name,
            "Const",
            value={"tensor": {"dtype": dtype, "tensorShape": shape}},
            dtype={"type": dtype},
        )
        nodes = [const, *nodes]
    blob = b"".join(stored)
    cut = [len(blob) * i // shards for i in range(shards + 1)]
    paths = [f"{name}.{i}.bin" for i in range(shards)]
    for i, path in enumerate(paths):
        (folder / path).write_bytes(blob[cut[i] : cut[i + 1]])
    document = {
        "format": "graph-model",
        "generatedBy": "tests",
        "convertedBy": "tests",
        "modelTopology": {"node": nodes, "library": {}, "versions": {"producer": 808}},
        "weightsManifest": [{"paths": paths, "weights": manifest}],
    }
    (folder / f"{name}.json").write_text(json.dumps(document))
    return values


def _encode(array: np.ndarray, quantisation: str | None) -> tuple[bytes, dict[str, Any], np.ndarray]:
    dtype = "int32" if array.dtype == np.int32 else "float32"
    if quantisation is None:
        return array.tobytes(), {"dtype": dtype}, array
    if quantisation == "float16":
        half = array.astype(np.float16)
        entry = {"dtype": dtype, "quantization": {"dtype": "float16", "original_dtype": dtype}}
        return half.tobytes(), entry, half.astype(np.float32)
    qtype = {"uint8": np.uint8, "uint16": np.uint16}[quantisation]
    low, high = float(array.min()), float(array.max())
    scale = (high - low) / np.iinfo(qtype).max
    q = np.round((array - low) / scale).astype(qtype)
    entry = {"dtype": dtype, "quantization": {"dtype": quantisation, "min": low, "scale": scale}}
    return q.tobytes(), entry, q.astype(np.float32) * np.float32(scale) + np.float32(low)


def _same_windows(x: np.ndarray, k: int, stride: int) -> np.ndarray:
    """(H, W, C) -> (OH, OW, C, k, k): TF's SAME padding (the extra row and column after)."""
    pads = []
    for size in x.shape[:2]:
        out = -(-size // stride)
        total = max((out - 1) * stride + k - size, 0)
        pads.append((total // 2, total - total // 2))
    padded = np.pad(x, [*pads, (0, 0)])
    return np.lib.stride_tricks.sliding_window_view(padded, (k, k), axis=(0, 1))[::stride, ::stride]


@dataclass
class TinyPoseModel:
    """int32 RGB (1, H, W, 3) -> Cast -> conv 3x3 + bias + Relu -> depthwise 3x3 stride 2 + bias -> output."""

    folder: Path
    values: dict[str, np.ndarray]

    def reference(self, frame: np.ndarray) -> np.ndarray:
        v = self.values
        x = frame[0].astype(np.float32)
        conv = np.einsum("ijcab,abco->ijo", _same_windows(x, 3, 1), v["conv/weights"]) + v["conv/bias"]
        relu = np.maximum(conv, 0)
        depthwise = np.einsum("ijcab,abcm->ijcm", _same_windows(relu, 3, 2), v["dw/weights"])
        return (depthwise.reshape(*depthwise.shape[:2], -1) + v["dw/bias"])[None]


def write_tiny_pose_model(folder: Path, seed: int = 0) -> TinyPoseModel:
    """The tiny stand-in of MoveNet in ``folder`` (tiny.json, tiny.0.bin, tiny.1.bin), every weight
    encoding TF.js writes: plain float32, uint8, float16 and uint16."""
    rng = np.random.default_rng(seed)
    weights = [
        ("conv/weights", rng.normal(0, 0.02, (3, 3, 3, 4)).astype(np.float32), None),
        ("conv/bias", rng.normal(0, 1, 4).astype(np.float32), "uint8"),
        ("dw/weights", rng.normal(0, 0.5, (3, 3, 4, 1)).astype(np.float32), "float16"),
        ("dw/bias", rng.normal(0, 1, 4).astype(np.float32), "uint16"),
    ]
    nodes = [
        tf_node("input", "Placeholder", dtype={"type": "DT_INT32"}, shape={"shape": {"dim": [{"size": s} for s in ("1", "-1", "-1", "3")]}}),
        tf_node("cast", "Cast", ["input"], SrcT={"type": "DT_INT32"}, DstT=FLOAT, Truncate={"b": False}),
        fused("conv/Relu", "_FusedConv2D", ["cast", "conv/weights", "conv/bias"], ["BiasAdd", "Relu"], **conv_attrs(1), use_cudnn_on_gpu={"b": True}),
        fused("dw/BiasAdd", "FusedDepthwiseConv2dNative", ["conv/Relu", "dw/weights", "dw/bias"], ["BiasAdd"], **conv_attrs(2)),
        tf_node("Identity", "Identity", ["dw/BiasAdd"], T=FLOAT),
    ]  # fmt: skip
    values = write_tfjs_model(folder, nodes, weights, shards=2)
    return TinyPoseModel(folder, values)
