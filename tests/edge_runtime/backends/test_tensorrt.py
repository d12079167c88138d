"""TensorRT backend without a GPU: the missing-library message and the input checks that come first."""

import importlib.util

import pytest

from edge_runtime.backends import BackendError, BackendUnavailable, create_backend

needs_no_tensorrt = pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is not None, reason="tensorrt is installed here"
)


@needs_no_tensorrt
def test_missing_tensorrt_names_the_jetson_extra(tiny_models):
    with pytest.raises(BackendUnavailable) as info:
        create_backend("tensorrt", tiny_models[0], fmt="onnx-qdq")
    message = str(info.value)
    assert "pip install i3d-mtn-edge[jetson]" in message and "tensorrt" in message
    assert "\n" not in message


def test_openvino_ir_is_not_a_tensorrt_input(tmp_path):
    xml = tmp_path / "m.xml"
    xml.write_text("<net/>")
    with pytest.raises(BackendError, match="cannot load a 'openvino' model"):
        create_backend("tensorrt", xml)


def test_unknown_option_is_refused_before_any_gpu_work(tiny_models):
    with pytest.raises(BackendError, match=r"unknown tensorrt option\(s\) \['workspace'\]"):
        create_backend("tensorrt", tiny_models[0], fmt="onnx-qdq", options={"workspace": 1})
