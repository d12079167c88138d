"""Choosing and creating backends by name."""

import importlib.util
import logging

import pytest

from edge_runtime.backends import BackendError, create_backend, pick_backend

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


def test_onnx_runs_on_onnxruntime():
    assert pick_backend("onnx") == "onnxruntime"


def test_openvino_ir_runs_on_openvino():
    assert pick_backend("openvino") == "openvino"


@pytest.mark.skipif(HAS_TENSORRT, reason="tensorrt is installed here")
def test_qdq_falls_back_to_onnxruntime_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="edge_runtime.backends"):
        assert pick_backend("onnx-qdq") == "onnxruntime"
    assert "TensorRT is not installed" in caplog.text


def test_profile_backend_wins_when_it_can_load_the_format():
    assert pick_backend("onnx", profile_backend="openvino") == "openvino"
    assert pick_backend("onnx-qdq", profile_backend="tensorrt") == "tensorrt"


def test_profile_backend_that_cannot_load_the_format_is_refused():
    with pytest.raises(BackendError, match="'onnxruntime' cannot load a 'openvino' model"):
        pick_backend("openvino", profile_backend="onnxruntime")


def test_unknown_names_are_refused(tiny_models):
    with pytest.raises(BackendError, match="unknown model format 'tflite'"):
        pick_backend("tflite")
    with pytest.raises(BackendError, match="unknown backend 'coreml'"):
        create_backend("coreml", tiny_models[0])


def test_format_defaults_from_the_suffix(tiny_models):
    assert create_backend("openvino", tiny_models[0]).output_names == ["features"]
