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


@pytest.mark.parametrize(("streams", "expected"), [(2, 2), ("AUTO", None)])
def test_num_streams_reaches_the_compiled_model(tiny_models, streams, expected):
    head = create_backend("openvino", tiny_models[1], options={"num_streams": streams})
    got = int(head._compiled.get_property("NUM_STREAMS"))
    assert got == expected if expected is not None else got >= 1
    one = create_backend("openvino", tiny_models[1], options={"num_streams": 1})
    assert int(one._compiled.get_property("NUM_STREAMS")) == 1


@pytest.mark.parametrize("bad", [0, -1, True, "many", 1.5])
def test_bad_num_streams_is_refused_by_name(tiny_models, bad):
    with pytest.raises(BackendError, match="num_streams must be an integer >= 1"):
        create_backend("openvino", tiny_models[1], options={"num_streams": bad})


@pytest.mark.parametrize("name", ["intel-nuc", "intel-nuc-gpu"])
def test_a_device_profiles_engine_settings_reach_the_compiled_model(tiny_models, name):
    from devices.profiles import load_profile
    from edge_runtime.cli_settings import engine_options

    profile = load_profile(name)
    options = engine_options(profile, "openvino")
    assert options == {
        "performance_hint": profile.engine.performance_hint,
        "num_streams": profile.engine.num_streams,
    }
    compiled = create_backend("openvino", tiny_models[1], options=options)._compiled
    assert str(compiled.get_property("PERFORMANCE_HINT")) == profile.engine.performance_hint
    streams = int(compiled.get_property("NUM_STREAMS"))
    assert streams == profile.engine.num_streams if profile.engine.num_streams != "AUTO" else streams >= 1


def test_the_cpu_runs_one_snippet_per_backbone_call_unless_told(tiny_models):
    assert create_backend("openvino", tiny_models[0]).max_batch == 1
    assert create_backend("openvino", tiny_models[0], options={"max_batch": 4}).max_batch == 4


@pytest.mark.parametrize("bad", [0, -2, True, "4", 2.0])
def test_bad_max_batch_is_refused_by_name(tiny_models, bad):
    with pytest.raises(BackendError, match="max_batch must be an integer >= 1"):
        create_backend("openvino", tiny_models[0], options={"max_batch": bad})


def test_the_runtime_splits_snippets_ready_together_into_the_backends_batches(tmp_path):
    """Two cameras' snippets ready in one pass: one backbone call each on the CPU (the plugin would keep a
    batch's memory), one call for both with ``max_batch`` 2; the same scores either way."""
    from edge_runtime.bundle import load_bundle
    from edge_runtime.events import EventPolicy
    from edge_runtime.models import load_models
    from edge_runtime.mqtt import MqttPublisher
    from edge_runtime.mqtt_settings import MqttSettings
    from edge_runtime.outbox import Outbox
    from edge_runtime.runtime import Runtime, RuntimeConfig
    from edge_runtime.sources import FileSource
    from tests.edge_runtime.runtime_helpers import make_bundle

    bundle = load_bundle(make_bundle(tmp_path))
    w, p = bundle.window, bundle.preprocess
    shape = (p.channels, w.snippet_length, *p.crop_size)
    snippet = np.random.default_rng(2).uniform(-1, 1, shape).astype(np.float32)
    scores, calls = [], []
    for options in ({}, {"max_batch": 2}):
        models = load_models(bundle, backend="openvino", options=options)
        with Outbox(tmp_path / f"outbox-{len(calls)}.sqlite") as outbox:
            publisher = MqttPublisher(MqttSettings(port=1), "dev", outbox)
            cams = [(name, FileSource(tmp_path / "never-opened.mp4")) for name in ("a", "b")]
            runtime = Runtime(bundle, models, cams, publisher, RuntimeConfig("dev", EventPolicy(0.5)))
            scores.append(runtime.scorer.score({"a": snippet, "b": -snippet}))
            calls.append(runtime.scorer.backbone_calls)
        models.close()
    assert calls == [2, 1]
    assert scores[0] == pytest.approx(scores[1], abs=1e-5)


def test_a_profiles_max_batch_reaches_the_backend(tiny_models, tmp_path):
    from devices.profiles import load_profile
    from edge_runtime.cli_settings import engine_options

    path = tmp_path / "box.toml"
    path.write_text('[device]\nname = "box"\n[model]\nbackend = "openvino"\n[engine]\nmax_batch = 3\n')
    options = engine_options(load_profile(path), "openvino")
    assert create_backend("openvino", tiny_models[0], options=options).max_batch == 3
