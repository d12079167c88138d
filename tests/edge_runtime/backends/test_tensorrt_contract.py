"""The TensorRT backend against the documented TensorRT 10 and 11 Python APIs (a stand-in, no GPU).

A tiny jetson bundle is exported for real (Q/DQ INT8 backbone, FP32 head with a dynamic ``K``); both roles
are built through :mod:`tests.edge_runtime.tensorrt_api_standin`, which records the calls, enforces the
documented rules and runs the ONNX files with ONNX Runtime underneath. These tests prove the calls and their
order, not TensorRT's numbers.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from devices.profiles import load_profile
from edge_runtime.backends import BackendError, create_backend
from edge_runtime.bundle import load_bundle
from edge_runtime.cli import main
from edge_runtime.cli_settings import engine_options
from edge_runtime.models import load_models
from tests.edge_runtime import tensorrt_api_standin as standin

FLAVOURS = ["10", "11"]


@pytest.fixture(scope="module")
def jetson(tmp_path_factory):
    """``(bundle folder, a video of the held-out split)`` of a tiny untrained model exported for target jetson."""
    from tests.export import helpers

    root = helpers.make_synth(tmp_path_factory.mktemp("trt_synth"))
    config = helpers.tiny_config()
    ckpt = helpers.save_ckpt(
        tmp_path_factory.mktemp("trt_ckpt") / "m.pt", helpers.untrained_model(config), config
    )
    result = helpers.export(
        ckpt, root, tmp_path_factory.mktemp("trt_bundle") / "bundle", target="jetson", calib_snippets=8
    )
    return result.bundle, sorted((root / "test").rglob("*.mp4"))[0]


def _ort(path, feeds):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds), strict=True))


@pytest.mark.parametrize("major", FLAVOURS)
def test_both_roles_build_strongly_typed_and_score_as_their_onnx(jetson, tmp_path, monkeypatch, major):
    api = standin.install(monkeypatch, major)
    bundle = load_bundle(jetson[0])
    window = bundle.window.num_snippets
    models = load_models(bundle, precision="int8", backend="tensorrt", options={"cache_dir": str(tmp_path)})
    assert (models.backend, models.precision) == ("tensorrt", "int8")
    assert [c["strongly_typed"] for c in api.called("create_network")] == [True, True]
    assert api.called("set_flag") == []  # no precision flag: the Q/DQ graph decides
    backbone_profile, head_profile = api.called("add_optimization_profile")
    assert backbone_profile["snippets"][0][0] == 1 and backbone_profile["snippets"][2][0] == 4
    assert head_profile["features"][0][:2] == [1, 1] and head_profile["features"][2][:2] == [4, window]

    rng = np.random.default_rng(0)
    snippets = rng.uniform(-1, 1, (3, *bundle.model("backbone").inputs[0].shape[1:])).astype(np.float32)
    feats = models.backbone.infer({"snippets": snippets})["features"]
    expected = _ort(bundle.model("backbone", "int8").path, {"snippets": snippets})["features"]
    np.testing.assert_array_equal(feats, expected)
    for k in range(1, window + 1):  # the ring filling: K from 1 to the window
        out = models.head.infer({"features": feats[None, :1].repeat(k, axis=1)})
        assert out["snippet_scores"].shape == (1, k)
    assert api.violations == []
    calls = [n for n, _ in api.calls if n in ("set_input_shape", "set_tensor_address", "execute_async_v3")]
    first_exec = calls.index("execute_async_v3")
    assert calls[0] == "set_input_shape" and "set_tensor_address" in calls[:first_exec]
    models.close()


def test_fp16_on_tensorrt_10_is_the_fp16_flag_on_a_weakly_typed_network(jetson, tmp_path, monkeypatch):
    api = standin.install(monkeypatch, "10")
    models = load_models(load_bundle(jetson[0]), precision="fp16", backend="tensorrt",
                         options={"cache_dir": str(tmp_path)})  # fmt: skip
    assert (models.precision, models.backbone.precision) == ("fp16", "fp16")
    assert api.called("set_flag") == ["FP16", "FP16"]
    assert [c["strongly_typed"] for c in api.called("create_network")] == [False, False]
    assert api.violations == []


def test_fp16_on_tensorrt_11_is_refused_by_name_and_the_runtime_falls_back_to_fp32(jetson, tmp_path, monkeypatch,
                                                                                    caplog):  # fmt: skip
    api = standin.install(monkeypatch, "11")
    bundle = load_bundle(jetson[0])
    with pytest.raises(BackendError, match=r"TensorRT 11\.4\.0 has no BuilderFlag\.FP16 .* FP16 ONNX model"):
        create_backend("tensorrt", bundle.model("backbone", "fp32").path, fmt="onnx",
                       options={"fp16": True, "cache_dir": str(tmp_path)})  # fmt: skip
    models = load_models(bundle, precision="fp16", backend="tensorrt", options={"cache_dir": str(tmp_path)})
    assert (models.precision, models.backbone.precision) == ("fp32", "fp32")
    assert "falling back to fp32" in caplog.text
    assert api.called("set_flag") == [] and api.violations == []


@pytest.mark.parametrize("major", FLAVOURS)
def test_every_engine_option_of_the_profile_reaches_the_builder(jetson, tmp_path, monkeypatch, major):
    api = standin.install(monkeypatch, major)
    cache_file = tmp_path / "timing" / "orin.cache"
    profile = tmp_path / "orin.toml"
    text = (
        '[device]\nname = "orin"\n[model]\nbackend = "tensorrt"\n[engine]\nworkspace_mb = 2048\n'
        f'timing_cache = "{cache_file}"\nbuilder_optimization_level = 5\nmax_batch = 6\nopt_batch = 2\n'
    )
    profile.write_text(text)
    options = {**engine_options(load_profile(profile), "tensorrt"), "cache_dir": str(tmp_path / "engines")}
    bundle = load_bundle(jetson[0])
    models = load_models(bundle, backend="tensorrt", options=options)
    assert api.called("builder_optimization_level") == [5, 5]
    assert api.called("set_memory_pool_limit") == [("WORKSPACE", 2048 << 20)] * 2
    snippets = api.called("add_optimization_profile")[0]["snippets"]
    assert (snippets[0][0], snippets[1][0], snippets[2][0]) == (1, 2, 6)
    assert api.called("set_timing_cache") == [False, False] and cache_file.is_file()
    assert models.backbone.max_batch == 6 and api.violations == []


def test_an_unchanged_engine_is_loaded_from_the_cache_and_a_changed_option_rebuilds(
    jetson, tmp_path, monkeypatch
):
    api = standin.install(monkeypatch, "10")
    path = load_bundle(jetson[0]).model("backbone", "int8").path
    opts = {"cache_dir": str(tmp_path), "builder_optimization_level": 2}
    create_backend("tensorrt", path, fmt="onnx-qdq", options=opts)
    create_backend("tensorrt", path, fmt="onnx-qdq", options=opts)
    assert len(api.called("build_serialized_network")) == 1
    create_backend("tensorrt", path, fmt="onnx-qdq", options={**opts, "builder_optimization_level": 4})
    assert len(api.called("build_serialized_network")) == 2
    assert len(list(tmp_path.glob("*.engine"))) == 2


def test_a_batch_above_max_batch_runs_in_chunks(jetson, tmp_path, monkeypatch):
    api = standin.install(monkeypatch, "11")
    path = load_bundle(jetson[0]).model("backbone", "int8").path
    net = create_backend(
        "tensorrt", path, fmt="onnx-qdq", options={"cache_dir": str(tmp_path), "max_batch": 2}
    )
    snippets = np.random.default_rng(1).uniform(-1, 1, (5, *net._engine.profile["snippets"][0][1:]))
    feats = net.infer({"snippets": snippets.astype(np.float32)})["features"]
    assert feats.shape[0] == 5 and len(api.called("execute_async_v3")) == 3 and api.violations == []


def test_a_dynamic_axis_without_a_range_is_refused_naming_input_and_axis(jetson, tmp_path, monkeypatch):
    standin.install(monkeypatch, "10")
    path = load_bundle(jetson[0]).model("head", "fp32").path
    with pytest.raises(BackendError, match=r"input features .* dynamic axis 1 with no range .*input_ranges"):
        create_backend("tensorrt", path, fmt="onnx", options={"cache_dir": str(tmp_path)})


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"builder_optimization_level": 6}, "builder_optimization_level must be an integer in [0, 5]"),
        ({"timing_cache": 3}, "timing_cache must be true, false or a file path"),
        ({"input_ranges": {"features": {1: (4, 2, 8)}}}, "input_ranges must map input names"),
        ({"fp16": "yes"}, "fp16 must be true or false"),
    ],
)
def test_bad_options_are_refused_by_name_before_any_gpu_work(jetson, options, says):
    path = load_bundle(jetson[0]).model("head", "fp32").path
    with pytest.raises(BackendError, match=re.escape(says)):
        create_backend("tensorrt", path, fmt="onnx", options=options)


# ---- the stand-in's own rules: each can fail ----------------------------------------------------------------


def _standin_build(api, onnx_path, *, shapes, flags=(), net_flags=0):
    trt = api.tensorrt
    builder = trt.Builder(trt.Logger())
    network = builder.create_network(net_flags)
    assert trt.OnnxParser(network, trt.Logger()).parse_from_file(str(onnx_path))
    config = builder.create_builder_config()
    for flag in flags:
        config.set_flag(flag)
    profile = builder.create_optimization_profile()
    for name, s in shapes.items():
        profile.set_shape(name, *s)
    config.add_optimization_profile(profile)
    return builder.build_serialized_network(network, config)


def test_standin_refuses_a_profile_that_leaves_k_uncovered(jetson):
    api = standin.StandinAPI("10")
    head = load_bundle(jetson[0]).model("head", "fp32")
    d = head.inputs[0].shape[2]
    assert _standin_build(api, head.path, shapes={"features": ((1, 4, d), (1, 4, d), (4, 4, d))}) is not None
    bad = {"features": ((1, 0, d), (1, 4, d), (4, 4, d))}
    assert _standin_build(api, head.path, shapes=bad) is None
    assert any("axis 1" in v for v in api.violations)


def test_standin_refuses_precision_flags_on_a_strongly_typed_network_and_has_none_on_11(jetson):
    api = standin.StandinAPI("10")
    head = load_bundle(jetson[0]).model("head", "fp32")
    d = head.inputs[0].shape[2]
    ok = {"features": ((1, 1, d), (1, 4, d), (4, 4, d))}
    assert _standin_build(api, head.path, shapes=ok, flags=["FP16"], net_flags=1 << 1) is None
    assert "strongly typed" in api.violations[0]
    assert not hasattr(standin.StandinAPI("11").tensorrt.BuilderFlag, "INT8")


def test_standin_refuses_execution_before_shapes_and_addresses(jetson):
    api = standin.StandinAPI("11")
    head = load_bundle(jetson[0]).model("head", "fp32")
    d = head.inputs[0].shape[2]
    plan = _standin_build(api, head.path, shapes={"features": ((1, 1, d), (1, 4, d), (4, 4, d))})
    context = api.tensorrt.Runtime(None).deserialize_cuda_engine(plan).create_execution_context()
    assert context.execute_async_v3(0) is False
    assert context.set_input_shape("features", (1, 9, d)) is False  # K beyond the profile
    assert {"input features has no shape set", "snippet_scores has no address"} <= set(api.violations)


# ---- edge-runtime end to end ---------------------------------------------------------------------------------


def _final_stats(stderr: str) -> dict:
    lines = [line for line in stderr.splitlines() if " stats {" in line]
    assert lines, stderr[-2000:]
    return json.loads(lines[-1].split(" stats ", 1)[1])


def test_edge_runtime_with_a_jetson_bundle_scores_a_video_as_onnxruntime_does(jetson, tmp_path, monkeypatch,
                                                                               capsys, broker):  # fmt: skip
    api = standin.install(monkeypatch, "10")
    monkeypatch.setenv("I3DMTN_ENGINE_CACHE", str(tmp_path / "engines"))
    bundle, video = jetson
    stats = {}
    for backend in ("tensorrt", "onnxruntime"):
        argv = ["--bundle", str(bundle), "--source", f"cam={video}", "--backend", backend, "--precision", "int8",
                "--broker", f"127.0.0.1:{broker.port}", "--device-id", "jet", "--outbox",
                str(tmp_path / f"{backend}.sqlite"), "--log-level", "DEBUG", "--flush-timeout", "5"]  # fmt: skip
        assert main(argv) == 0, capsys.readouterr().err[-2000:]
        stats[backend] = _final_stats(capsys.readouterr().err)
    trt, ort = stats["tensorrt"], stats["onnxruntime"]
    assert (trt["backend"], trt["precision"]) == ("tensorrt", "int8")
    assert trt["snippets"] == ort["snippets"] > 0
    assert trt["cameras"]["cam"]["score"] == ort["cameras"]["cam"]["score"]
    assert api.called("execute_async_v3") and api.violations == []


# ---- scripts/check-tensorrt ----------------------------------------------------------------------------------


def test_check_tensorrt_without_tensorrt_says_so_in_one_line(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    result = subprocess.run([str(root / "scripts" / "check-tensorrt"), "--bundle", str(tmp_path), "--videos",
                             str(tmp_path)], capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable})  # fmt: skip
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("check-tensorrt: error: needs tensorrt and pycuda (not installed here)")


@pytest.mark.parametrize("major", FLAVOURS)
def test_check_tensorrt_prints_each_precision_against_onnxruntime(
    jetson, tmp_path, monkeypatch, capsys, major
):
    from edge_runtime.tensorrt_check import main as check

    api = standin.install(monkeypatch, major)
    monkeypatch.setenv("I3DMTN_ENGINE_CACHE", str(tmp_path))
    bundle, video = jetson
    check(["--bundle", str(bundle), "--videos", str(video), "--runs", "1"])
    out = capsys.readouterr().out
    int8 = re.search(r"^int8 +(\d\.\d{4}) +([01])/1 +[\d.]+ +[\d.]+", out, re.M)
    assert int8 and 0 < float(int8.group(1)) < 0.05, out  # the Q/DQ model's scores: close to FP32, not equal
    if major == "10":  # FP16 from the FP32 ONNX (on the stand-in: the FP32 scores, so no difference)
        assert re.search(r"^fp16 +0\.0000 +1/1 ", out, re.M), out
    else:  # no FP16 flag on 11, and bundles hold no FP16 ONNX: said by name
        assert re.search(r"^fp16 +not built: TensorRT 11\.4\.0 has no BuilderFlag\.FP16", out, re.M), out
    assert api.violations == []


def test_check_tensorrt_passes_when_tensorrt_agrees(jetson, tmp_path, monkeypatch, capsys):
    from edge_runtime.tensorrt_check import main as check

    standin.install(monkeypatch, "10")
    monkeypatch.setenv("I3DMTN_ENGINE_CACHE", str(tmp_path))
    bundle, video = jetson
    code = check(["--bundle", str(bundle), "--videos", str(video), "--runs", "1", "--precisions", "fp16"])
    assert code == 0 and capsys.readouterr().out.rstrip().endswith("OK")


def test_check_tensorrt_fails_on_a_disagreement(jetson, tmp_path, monkeypatch, capsys):
    from edge_runtime.tensorrt_check import main as check

    standin.install(monkeypatch, "10")
    monkeypatch.setenv("I3DMTN_ENGINE_CACHE", str(tmp_path))
    bundle, video = jetson
    code = check(["--bundle", str(bundle), "--videos", str(video), "--runs", "1", "--precisions", "int8",
                  "--max-diff", "0"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1 and "DISAGREES" in out and "FAILED" in out
