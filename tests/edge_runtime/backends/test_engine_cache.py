"""TensorRT engine cache: keys, paths, atomic writes (pure Python, no GPU)."""

import re

import pytest

from edge_runtime.backends import engine_cache
from edge_runtime.backends.engine_cache import engine_key, engine_path, timing_cache_path, write_atomic

BASE = {
    "gpu_name": "NVIDIA Orin (nvgpu)",
    "trt_version": "10.3.0",
    "onnx_sha256": "3f" * 32,
    "precision": "int8+fp16",
    "max_batch": 4,
}
CHANGED = {
    "gpu_name": "NVIDIA GeForce RTX 4090",
    "trt_version": "10.3.1",
    "onnx_sha256": "3e" + "3f" * 31,
    "precision": "int8",
    "max_batch": 8,
}


def test_same_inputs_give_the_same_key():
    assert engine_key(**BASE) == engine_key(**dict(BASE))


@pytest.mark.parametrize("component", sorted(CHANGED))
def test_each_component_changes_the_key(component):
    assert engine_key(**{**BASE, component: CHANGED[component]}) != engine_key(**BASE)


def test_gpu_names_that_slug_alike_still_differ():
    assert engine_key(**{**BASE, "gpu_name": "Orin A"}) != engine_key(**{**BASE, "gpu_name": "Orin-A"})


def test_key_is_a_safe_file_name():
    key = engine_key(**{**BASE, "gpu_name": "../../etc/passwd \x00 #+/", "trt_version": "10.3 beta/1"})
    assert re.fullmatch(r"[a-z0-9._-]+", key) and not key.startswith(".") and len(key) <= 140
    assert engine_path("/cache", key).parent.as_posix() == "/cache"


@pytest.mark.parametrize("field,value", [("onnx_sha256", "not-hex"), ("max_batch", 0), ("gpu_name", " ")])
def test_bad_component_is_refused(field, value):
    with pytest.raises(ValueError, match=field):
        engine_key(**{**BASE, field: value})


def test_engine_path_refuses_an_unsafe_key():
    with pytest.raises(ValueError, match="not a safe file name"):
        engine_path("/cache", "../evil")


def test_engine_and_timing_cache_live_in_the_cache_dir(tmp_path):
    key = engine_key(**BASE)
    assert engine_path(tmp_path, key) == tmp_path / f"{key}.engine"
    timing = timing_cache_path(tmp_path, BASE["gpu_name"], BASE["trt_version"])
    assert timing.parent == tmp_path and timing.suffix == ".cache"
    assert timing != timing_cache_path(tmp_path, BASE["gpu_name"], "10.4.0")


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(engine_cache.CACHE_ENV, str(tmp_path / "engines"))
    assert engine_cache.default_cache_dir() == tmp_path / "engines"
    monkeypatch.delenv(engine_cache.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert engine_cache.default_cache_dir() == tmp_path / "xdg" / "i3d-mtn-edge" / "engines"


def test_write_atomic_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "model.engine"
    write_atomic(target, b"old")
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in target.parent.iterdir()] == ["model.engine"]
