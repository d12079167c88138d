"""ONNX Runtime backend on a tiny real ONNX model."""

import numpy as np
import pytest

from edge_runtime.backends import BackendError, create_backend
from edge_runtime.backends.onnxruntime import OnnxRuntimeBackend


def test_names_come_from_the_model(tiny_models):
    backbone, head = (create_backend("onnxruntime", p, device="CPU") for p in tiny_models)
    assert backbone.input_names == ["snippets"] and backbone.output_names == ["features"]
    assert head.output_names == ["snippet_scores", "attention", "video_score"]


def test_dynamic_batch_gives_per_item_results(tiny_models, snippets):
    backbone = create_backend("onnxruntime", tiny_models[0], device="CPU")
    both = backbone.infer({"snippets": snippets})["features"]
    one = backbone.infer({"snippets": snippets[1:]})["features"]
    assert both.shape == (2, 8)
    np.testing.assert_allclose(both[1:], one, atol=1e-6)


def test_head_accepts_any_window_length(tiny_models, features):
    head = create_backend("onnxruntime", tiny_models[1], device="CPU")
    for k in (1, 3, 5):
        out = head.infer({"features": features[:, :k]})
        assert out["snippet_scores"].shape == (2, k) and out["video_score"].shape == (2,)


def test_cpu_device_uses_only_the_cpu_provider(tiny_models):
    backend = create_backend("onnxruntime", tiny_models[0], device="CPU")
    assert backend.providers == ["CPUExecutionProvider"]


def test_thread_option_is_applied_and_unknown_options_are_refused(tiny_models, snippets):
    backend = create_backend("onnxruntime", tiny_models[0], options={"intra_op_num_threads": 1})
    assert backend.infer({"snippets": snippets})["features"].shape == (2, 8)
    with pytest.raises(BackendError, match="unknown onnxruntime option.*num_thread"):
        create_backend("onnxruntime", tiny_models[0], options={"num_thread": 1})


def test_missing_input_names_the_expected_inputs(tiny_models, snippets):
    backend = create_backend("onnxruntime", tiny_models[0])
    with pytest.raises(BackendError, match=r"expected inputs \['snippets'\]"):
        backend.infer({"clip": snippets})


def test_wrong_shape_is_a_one_line_error(tiny_models, snippets):
    backend = create_backend("onnxruntime", tiny_models[0])
    with pytest.raises(BackendError, match="failed to run backbone.onnx") as info:
        backend.infer({"snippets": snippets[:, :2]})
    assert "\n" not in str(info.value)


def test_corrupt_file_is_a_one_line_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(BackendError, match="cannot load .*bad.onnx") as info:
        OnnxRuntimeBackend.from_model_file(bad)
    assert "\n" not in str(info.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(BackendError, match="model file not found: .*nope.onnx"):
        create_backend("onnxruntime", tmp_path / "nope.onnx")
