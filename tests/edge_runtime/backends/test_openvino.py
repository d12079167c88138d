"""OpenVINO backend on a tiny real ONNX model (OpenVINO reads .onnx directly) and on its IR."""

import numpy as np
import pytest

from edge_runtime.backends import BackendError, create_backend


def test_reads_onnx_directly_with_dynamic_batch(tiny_models, snippets):
    backbone = create_backend("openvino", tiny_models[0])
    assert backbone.input_names == ["snippets"] and backbone.output_names == ["features"]
    both = backbone.infer({"snippets": snippets})["features"]
    one = backbone.infer({"snippets": snippets[:1]})["features"]
    assert both.shape == (2, 8) and one.shape == (1, 8)
    np.testing.assert_allclose(both[:1], one, atol=1e-6)


def test_outputs_survive_the_next_request(tiny_models, features):
    head = create_backend("openvino", tiny_models[1])
    first = head.infer({"features": features})["snippet_scores"]
    kept = first.copy()
    head.infer({"features": -features})
    np.testing.assert_array_equal(first, kept)


def test_loads_openvino_ir(tiny_models, tmp_path, features):
    import openvino as ov

    xml = tmp_path / "head.xml"
    ov.save_model(ov.convert_model(str(tiny_models[1])), str(xml), compress_to_fp16=False)
    from_ir = create_backend("openvino", xml).infer({"features": features})
    from_onnx = create_backend("openvino", tiny_models[1]).infer({"features": features})
    np.testing.assert_allclose(from_ir["video_score"], from_onnx["video_score"], atol=1e-6)


def test_ir_without_weights_is_named(tiny_models, tmp_path):
    xml = tmp_path / "lonely.xml"
    xml.write_text("<net/>")
    with pytest.raises(BackendError, match="no weights file lonely.bin"):
        create_backend("openvino", xml)


def test_bad_performance_hint_is_refused(tiny_models):
    with pytest.raises(BackendError, match="performance_hint must be one of"):
        create_backend("openvino", tiny_models[0], options={"performance_hint": "FAST"})


def test_unavailable_device_is_named(tiny_models):
    with pytest.raises(BackendError, match="device 'NPU7' is not available"):
        create_backend("openvino", tiny_models[0], device="NPU7")
