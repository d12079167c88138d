"""INT8 per target runs in the runtime's backends and stays close to FP32 on synthetic clips."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edge_runtime.backends import create_backend
from edge_runtime.bundle import load_bundle
from export.jetson_qdq import check_qdq

SCORE_TOL = 0.05  # max |INT8 - FP32| snippet score on the held-out synthetic videos
FEATURE_TOL = 0.5  # relative L2 error of INT8 backbone features on synthetic clips: a random-init, 1/16-width
# I3D has 4-channel layers whose per-tensor INT8 ranges are coarse (NNCF measured ~0.4 here, ORT less)


def _features(bundle, precision, kind, x):
    mf = bundle.model("backbone", precision)
    with create_backend(kind, mf.path, fmt=mf.format, device="CPU") as net:
        return net.infer({"snippets": x})["features"]


@pytest.mark.parametrize(
    ("target", "kind"), [("onnx", "onnxruntime"), ("openvino", "openvino"), ("jetson", "onnxruntime")]
)
def test_int8_scores_stay_close_to_fp32_on_held_out_clips(exports, target, kind):
    report = exports[target].report
    assert report["backend"] == kind
    assert report["comparison"]["videos"] == 6
    assert report["comparison"]["snippet_score_abs_diff"]["max"] <= SCORE_TOL


@pytest.mark.parametrize(
    ("target", "kind"), [("onnx", "onnxruntime"), ("openvino", "openvino"), ("jetson", "onnxruntime")]
)
def test_int8_backbone_features_stay_close_to_fp32(exports, synth_root, target, kind):
    from calibration.select import load_calibration_set, read_snippets

    bundle = load_bundle(exports[target].bundle)
    x = read_snippets(load_calibration_set(bundle.calibration_set), synth_root)[:2]
    f32, f8 = _features(bundle, "fp32", kind, x), _features(bundle, "int8", kind, x)
    assert np.linalg.norm(f8 - f32) / np.linalg.norm(f32) <= FEATURE_TOL


def test_openvino_int8_ir_holds_fake_quantize_nodes(exports):
    import openvino as ov

    bundle = load_bundle(exports["openvino"].bundle)
    model = ov.Core().read_model(str(bundle.model("backbone", "int8").path))
    assert sum(op.get_type_name() == "FakeQuantize" for op in model.get_ops()) > 0
    assert bundle.model("backbone", "fp32").format == "openvino"


def test_onnx_runtime_int8_backbone_is_qdq_and_the_stem_choice_was_measured(exports):
    bundle = load_bundle(exports["onnx"].bundle)
    ops = [n.op_type for n in onnx.load(str(bundle.model("backbone", "int8").path)).graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    stem = exports["onnx"].report["quantization"]["backbone"]["stem_choice"]
    assert stem["all_int8_ms"] > 0 and stem["stem_fp32_ms"] > 0


def test_jetson_qdq_onnx_has_qdq_pairs_with_zero_points_0(exports):
    bundle = load_bundle(exports["jetson"].bundle)
    mf = bundle.model("backbone", "int8")
    assert mf.format == "onnx-qdq"
    model = onnx.load(str(mf.path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    qdq = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert qdq
    zero_points = [inits[n.input[2]] for n in qdq if len(n.input) > 2 and n.input[2]]
    assert zero_points and all(z.dtype == np.int8 and not z.any() for z in zero_points)
    assert check_qdq(mf.path)["QuantizeLinear"] > 0


def test_jetson_qdq_onnx_runs_in_onnx_runtime_on_cpu(exports, synth_root):
    bundle = load_bundle(exports["jetson"].bundle)
    x = np.zeros((1, 3, *bundle.model("backbone").inputs[0].shape[2:]), np.float32)
    assert _features(bundle, "int8", "onnxruntime", x).shape == (1, bundle.feature_dim)


def test_jetson_bundle_carries_npz_calibration_data(exports):
    folder = exports["jetson"].bundle
    with np.load(folder / "calibration_backbone.npz") as data:
        assert data["snippets"].ndim == 5
