"""Tiny ONNX stand-ins for the backbone and head, built with ``onnx.helper`` (no torch, no model code).

- backbone ``snippets (N,3,S,H,W) -> features (N,D)``: mean over (S,H,W), MatMul to D, Tanh.
- head ``features (N,K,D) -> snippet_scores (N,K), attention (N,K), video_score (N,)``: a temporal Conv over K
  (kernel 3, padding 1, so each score depends on its neighbours and the newest on the previous snippet),
  Sigmoid; attention = Softmax over K of a second Conv; video score = attention-weighted sum of the scores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8  # readable by every onnxruntime / OpenVINO we support
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def write_backbone(path: Path, feature_dim: int = 8, seed: int = 0) -> Path:
    """``snippets`` (N,3,S,H,W) float32 -> ``features`` (N,D); dynamic N, S, H, W."""
    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.normal(size=(3, feature_dim)).astype(np.float32), "w")
    nodes = [
        helper.make_node("ReduceMean", ["snippets"], ["pooled"], axes=[2, 3, 4], keepdims=0),  # (N, 3)
        helper.make_node("MatMul", ["pooled", "w"], ["proj"]),  # (N, D)
        helper.make_node("Tanh", ["proj"], ["features"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_backbone",
        [helper.make_tensor_value_info("snippets", TensorProto.FLOAT, ["N", 3, "S", "H", "W"])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", feature_dim])],
        [w],
    )
    return _save(graph, path)


def write_head(path: Path, feature_dim: int = 8, seed: int = 1) -> Path:
    """``features`` (N,K,D) -> ``snippet_scores`` (N,K), ``attention`` (N,K), ``video_score`` (N,); any K >= 1."""
    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array(rng.normal(size=(1, feature_dim, 3)).astype(np.float32), "score_w"),
        numpy_helper.from_array(np.array([0.1], np.float32), "score_b"),
        numpy_helper.from_array(rng.normal(size=(1, feature_dim, 3)).astype(np.float32), "att_w"),
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
    ]
    nodes = [
        helper.make_node("Transpose", ["features"], ["ndk"], perm=[0, 2, 1]),  # (N, D, K)
        helper.make_node("Conv", ["ndk", "score_w", "score_b"], ["logits3"], pads=[1, 1]),  # (N, 1, K)
        helper.make_node("Squeeze", ["logits3", "axis1"], ["logits"]),  # (N, K)
        helper.make_node("Sigmoid", ["logits"], ["snippet_scores"]),
        helper.make_node("Conv", ["ndk", "att_w"], ["att3"], pads=[1, 1]),  # (N, 1, K)
        helper.make_node("Squeeze", ["att3", "axis1"], ["att_logits"]),
        helper.make_node("Softmax", ["att_logits"], ["attention"], axis=1),  # (N, K)
        helper.make_node("Mul", ["attention", "snippet_scores"], ["weighted"]),
        helper.make_node("ReduceSum", ["weighted", "axis1"], ["video_score"], keepdims=0),  # (N,)
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_head",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", "K", feature_dim])],
        [
            helper.make_tensor_value_info("snippet_scores", TensorProto.FLOAT, ["N", "K"]),
            helper.make_tensor_value_info("attention", TensorProto.FLOAT, ["N", "K"]),
            helper.make_tensor_value_info("video_score", TensorProto.FLOAT, ["N"]),
        ],
        inits,
    )
    return _save(graph, path)
