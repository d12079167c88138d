"""``graph_def_from_tfjs``: TF.js graph models as GraphDefs OpenVINO reads, and the models it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.training.tiny_tfjs import FLOAT, fused, tf_node, write_tfjs_model, write_tiny_pose_model
from training.pose.tf_proto import GraphDef
from training.pose.tfjs_graph import TfjsGraphError, graph_def_from_tfjs


def _matmul_model(folder: Path, fused_ops: list[str]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    weights = [
        ("dense/kernel", rng.normal(0, 1, (5, 3)).astype(np.float32), None),
        ("dense/bias", rng.normal(0, 1, 3).astype(np.float32), None),
    ]
    nodes = [
        tf_node("x", "Placeholder", dtype=FLOAT, shape={"shape": {"dim": [{"size": "2"}, {"size": "5"}]}}),
        fused("dense/out", "_FusedMatMul", ["x", "dense/kernel", "dense/bias"], fused_ops,
              transpose_a={"b": False}, transpose_b={"b": False}),
        tf_node("Identity", "Identity", ["dense/out"], T=FLOAT),
    ]  # fmt: skip
    return write_tfjs_model(folder, nodes, weights)


def test_fused_ops_become_the_plain_op_a_bias_add_and_the_activation_under_the_fused_name(tmp_path):
    write_tiny_pose_model(tmp_path)
    graph = GraphDef.FromString(graph_def_from_tfjs(tmp_path / "tiny.json"))
    ops = {node.name: (node.op, list(node.input)) for node in graph.node}
    assert ops["conv/Relu/unfused_Conv2D"] == ("Conv2D", ["cast", "conv/weights"])
    assert ops["conv/Relu/unfused_BiasAdd"] == ("BiasAdd", ["conv/Relu/unfused_Conv2D", "conv/bias"])
    assert ops["conv/Relu"] == ("Relu", ["conv/Relu/unfused_BiasAdd"])
    assert ops["dw/BiasAdd"] == ("BiasAdd", ["dw/BiasAdd/unfused_DepthwiseConv2dNative", "dw/bias"])
    depthwise = next(n for n in graph.node if n.op == "DepthwiseConv2dNative")
    assert list(depthwise.attr["strides"].list.i) == [1, 2, 2, 1] and depthwise.attr["padding"].s == b"SAME"
    assert "fused_ops" not in depthwise.attr and "explicit_paddings" not in depthwise.attr


def test_a_fused_matmul_with_relu6_computes_what_numpy_does(tmp_path):
    ov = pytest.importorskip("openvino")
    values = _matmul_model(tmp_path, ["BiasAdd", "Relu6"])
    pb = tmp_path / "graph.pb"
    pb.write_bytes(graph_def_from_tfjs(tmp_path / "tiny.json"))
    x = np.random.default_rng(1).normal(0, 2, (2, 5)).astype(np.float32)
    compiled = ov.Core().compile_model(ov.convert_model(str(pb)), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    expected = np.clip(x @ values["dense/kernel"] + values["dense/bias"], 0, 6)
    np.testing.assert_allclose(compiled(x)[0], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "fused_ops", [["BiasAdd", "Prelu"], ["FusedBatchNorm"], ["BiasAdd", "Relu", "Relu6"]]
)
def test_fused_ops_it_does_not_know_are_refused_naming_the_file_and_node(fused_ops, tmp_path):
    _matmul_model(tmp_path, fused_ops)
    with pytest.raises(TfjsGraphError, match=rf"^{tmp_path}/tiny\.json: node 'dense/out': _FusedMatMul with"):
        graph_def_from_tfjs(tmp_path / "tiny.json")


def test_a_weight_file_shorter_than_the_manifest_says_is_refused(tmp_path):
    write_tiny_pose_model(tmp_path)
    shard = tmp_path / "tiny.1.bin"
    shard.write_bytes(shard.read_bytes()[:-2])
    with pytest.raises(
        TfjsGraphError, match=r"tiny\.json: weight file\(s\) tiny\.0\.bin, tiny\.1\.bin hold \d+ bytes"
    ):
        graph_def_from_tfjs(tmp_path / "tiny.json")


@pytest.mark.parametrize(("key", "value"), [("dtype", "complex64"), ("quantization", {"dtype": "int4"})])
def test_an_unknown_weight_dtype_is_refused(key, value, tmp_path):
    _matmul_model(tmp_path, ["BiasAdd"])
    document = json.loads((tmp_path / "tiny.json").read_text())
    document["weightsManifest"][0]["weights"][0][key] = value
    (tmp_path / "tiny.json").write_text(json.dumps(document))
    with pytest.raises(TfjsGraphError, match=r"tiny\.json: weight 'dense/kernel': unknown dtype"):
        graph_def_from_tfjs(tmp_path / "tiny.json")


def test_a_const_without_a_weight_is_refused(tmp_path):
    _matmul_model(tmp_path, ["BiasAdd"])
    document = json.loads((tmp_path / "tiny.json").read_text())
    document["weightsManifest"][0]["weights"].pop()  # the bias, stored last
    (tmp_path / "tiny.json").write_text(json.dumps(document))
    with pytest.raises(TfjsGraphError, match=r"weightsManifest has no value for 1 Const\(s\): 'dense/bias'"):
        graph_def_from_tfjs(tmp_path / "tiny.json")


def test_a_topology_field_it_does_not_know_is_refused_not_dropped(tmp_path):
    _matmul_model(tmp_path, ["BiasAdd"])
    document = json.loads((tmp_path / "tiny.json").read_text())
    document["modelTopology"]["node"][0]["attr"]["value"]["func"] = {"name": "f"}
    (tmp_path / "tiny.json").write_text(json.dumps(document))
    with pytest.raises(
        TfjsGraphError, match=r"tiny\.json: modelTopology is not a GraphDef this converter reads"
    ):
        graph_def_from_tfjs(tmp_path / "tiny.json")


def test_a_weight_path_outside_the_models_folder_is_refused(tmp_path):
    _matmul_model(tmp_path, ["BiasAdd"])
    document = json.loads((tmp_path / "tiny.json").read_text())
    document["weightsManifest"][0]["paths"] = ["../tiny.0.bin"]
    (tmp_path / "tiny.json").write_text(json.dumps(document))
    with pytest.raises(TfjsGraphError, match=r"weight path '\.\./tiny\.0\.bin' leaves the model's folder"):
        graph_def_from_tfjs(tmp_path / "tiny.json")
