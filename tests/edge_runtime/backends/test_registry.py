"""Choosing and creating backends by name."""

import importlib.util
import logging

import pytest

from edge_runtime.backends import BackendError, backend_class, create_backend, pick_backend

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


@pytest.mark.parametrize(
    ("kind", "name", "fmt", "message"),
    [
        ("onnxruntime", "m.onnx", "tflite", "unknown model format 'tflite'"),
        ("onnxruntime", "m.xml", "openvino", "the onnxruntime backend cannot load a 'openvino' model"),
        ("tensorrt", "m.xml", "openvino", "the tensorrt backend cannot load a 'openvino' model"),
        ("openvino", "m.onnx", "openvino", "cannot load .*m.onnx as 'openvino': expected a .xml file"),
        ("openvino", "m.xml", "onnx", "cannot load .*m.xml as 'onnx': expected a .onnx file"),
        ("openvino", "m.xml", "openvino", "has no weights file m.bin beside it"),
        ("onnxruntime", "nope.onnx", "onnx-qdq", "model file not found: .*nope.onnx"),
    ],
)
def test_every_backend_checks_a_model_file_by_one_rule_before_loading_its_toolkit(
    tmp_path, kind, name, fmt, message
):
    for written in ("m.onnx", "m.xml"):
        (tmp_path / written).write_text("not loaded")
    with pytest.raises(BackendError, match=message):
        backend_class(kind).check_model_file(tmp_path / name, fmt)
    with pytest.raises(BackendError, match=message):
        create_backend(kind, tmp_path / name, fmt=fmt)
