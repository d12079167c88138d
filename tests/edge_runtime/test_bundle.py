"""Bundle reader: a valid bundle loads; every kind of broken bundle is refused with one line naming the file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from devices.profiles import load_profile
from edge_runtime.bundle import BUNDLE_SCHEMA, BundleError, load_bundle
from edge_runtime.preprocess import PreprocessConfig

S, K, D, CROP = 16, 32, 1024, 224


def _io(role: str) -> dict[str, Any]:
    if role == "backbone":
        return {
            "inputs": [{"name": "snippets", "shape": ["N", 3, S, CROP, CROP], "dtype": "float32"}],
            "outputs": [{"name": "features", "shape": ["N", D], "dtype": "float32"}],
        }
    return {
        "inputs": [{"name": "features", "shape": ["N", K, D], "dtype": "float32"}],
        "outputs": [
            {"name": "snippet_scores", "shape": ["N", K]},
            {"name": "attention", "shape": ["N", K]},
            {"name": "video_score", "shape": ["N"]},
        ],
    }


def _put(root: Path, name: str) -> str:
    data = f"dummy {name}".encode()
    (root / name).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def _manifest(root: Path) -> dict[str, Any]:
    """Writes dummy model files into ``root`` and returns a valid manifest for them."""
    files = []
    for role in ("backbone", "head"):
        xml, bin_ = f"{role}.int8.xml", f"{role}.int8.bin"
        files.append(
            {
                "path": xml,
                "role": role,
                "precision": "int8",
                "format": "openvino",
                "sha256": _put(root, xml),
                "companions": [{"path": bin_, "sha256": _put(root, bin_)}],
                **_io(role),
            }
        )
        onnx = f"{role}.fp32.onnx"
        files.append(
            {
                "path": onnx,
                "role": role,
                "precision": "fp32",
                "format": "onnx",
                "sha256": _put(root, onnx),
                **_io(role),
            }
        )
    (root / "report.json").write_text("{}")
    return {
        "schema": BUNDLE_SCHEMA,
        "model": {
            "name": "i3d-mtn",
            "version": "0.1.0",
            "created_at": "2026-11-25T10:00:00Z",
            "config": {"k": 1},
        },
        "target": "openvino",
        "precision": "int8",
        "preprocess": PreprocessConfig.square(CROP).to_dict(),
        "window": {"snippet_length": S, "num_snippets": K, "frame_stride": 1, "fps": 25.0},
        "threshold": 0.42,
        "files": files,
        "accuracy": {"gate": "passed", "max_auc_drop": 0.01, "auc_drop": 0.002},
        "report": "report.json",
    }


def _save(root: Path, manifest: dict[str, Any]) -> Path:
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return root


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    root = tmp_path / "bundle"
    root.mkdir()
    return _save(root, _manifest(root))


def _refused(path: Path, *, verify_hashes: bool = True) -> str:
    with pytest.raises(BundleError) as info:
        load_bundle(path, verify_hashes=verify_hashes)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def _edit(bundle_dir: Path, change) -> Path:
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    change(manifest)
    return _save(bundle_dir, manifest)


def test_valid_bundle_loads_with_its_contract(bundle_dir):
    bundle = load_bundle(bundle_dir)
    assert bundle.precision == "int8" and bundle.target == "openvino"
    assert bundle.preprocess == PreprocessConfig.square(CROP)
    assert (bundle.window.snippet_length, bundle.window.num_snippets, bundle.window.fps) == (S, K, 25.0)
    assert bundle.threshold == pytest.approx(0.42)
    assert bundle.feature_dim == D
    assert bundle.precisions == ("fp32", "int8")
    assert bundle.accuracy["gate"] == "passed"
    assert bundle.report == bundle_dir.absolute() / "report.json"


def test_model_defaults_to_the_bundle_precision_and_falls_back_to_fp32(bundle_dir):
    bundle = load_bundle(bundle_dir)
    backbone = bundle.model("backbone")
    assert backbone.path == bundle_dir.absolute() / "backbone.int8.xml"
    assert backbone.companions[0].path.name == "backbone.int8.bin"
    assert backbone.inputs[0].shape == ("N", 3, S, CROP, CROP)
    head = bundle.model("head", "fp32")
    assert (head.format, head.path.name) == ("onnx", "head.fp32.onnx")
    assert head.output("video_score").shape == ("N",)


def test_model_of_an_absent_precision_says_what_there_is(bundle_dir):
    with pytest.raises(BundleError, match="no head model at precision 'fp16'; this bundle has fp32, int8"):
        load_bundle(bundle_dir).model("head", "fp16")


def test_model_info_is_the_event_model_object(bundle_dir):
    info = load_bundle(bundle_dir).model_info()
    assert info == {"name": "i3d-mtn", "version": "0.1.0", "target": "openvino", "precision": "int8"}


def test_missing_folder_is_refused(tmp_path):
    assert "does not exist" in _refused(tmp_path / "nope")


def test_missing_manifest_is_refused(tmp_path):
    assert "manifest.json is missing" in _refused(tmp_path)


def test_bad_json_names_manifest_and_line(bundle_dir):
    (bundle_dir / "manifest.json").write_text('{\n  "schema": "i3dmtn.bundle/1",\n  oops\n}')
    message = _refused(bundle_dir)
    assert "manifest.json: not valid JSON" in message and "line 3" in message


def test_unknown_schema_version_is_refused(bundle_dir):
    message = _refused(_edit(bundle_dir, lambda m: m.update(schema="i3dmtn.bundle/2")))
    assert "bundle schema 'i3dmtn.bundle/2' is not supported" in message


def test_missing_field_is_named(bundle_dir):
    message = _refused(_edit(bundle_dir, lambda m: m.pop("threshold")))
    assert message.endswith("manifest.json: threshold is missing")


def test_wrong_type_is_named_with_its_path(bundle_dir):
    message = _refused(_edit(bundle_dir, lambda m: m["window"].update(num_snippets="32")))
    assert "window.num_snippets must be an integer, got str '32'" in message


def test_unknown_top_level_field_is_refused(bundle_dir):
    message = _refused(_edit(bundle_dir, lambda m: m.update(treshold=0.5)))
    assert "unknown field(s) ['treshold']" in message


def test_missing_model_file_is_refused(bundle_dir):
    (bundle_dir / "head.fp32.onnx").unlink()
    assert "model file head.fp32.onnx listed in manifest.json is missing" in _refused(bundle_dir)


def test_changed_model_file_is_refused(bundle_dir):
    (bundle_dir / "backbone.fp32.onnx").write_bytes(b"tampered")
    assert "backbone.fp32.onnx changed since export" in _refused(bundle_dir)


def test_changed_companion_is_refused(bundle_dir):
    (bundle_dir / "head.int8.bin").write_bytes(b"tampered")
    assert "head.int8.bin changed since export" in _refused(bundle_dir)


def test_hash_check_can_be_skipped(bundle_dir):
    (bundle_dir / "head.int8.bin").write_bytes(b"tampered")
    assert load_bundle(bundle_dir, verify_hashes=False).precision == "int8"


def test_a_bundle_of_contract_1_loads_and_keeps_every_frame(bundle_dir):
    # a manifest as written before the contract had a frame rate and a modality
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    pre = manifest["preprocess"]
    assert pre["contract"] == "i3dmtn.preprocess/1" and "frame_rate" not in pre and "modality" not in pre
    bundle = load_bundle(bundle_dir)
    assert bundle.preprocess.frame_rate == 0.0 and bundle.preprocess.modality == "rgb"


def test_a_contract_2_flow_bundle_needs_a_two_channel_backbone(bundle_dir):
    edited = _edit(bundle_dir, lambda m: m["preprocess"].update(
        contract="i3dmtn.preprocess/2", frame_rate=15.0, modality="flow"))  # fmt: skip
    assert "input shape must be (N, C=2" in _refused(edited)


def test_unimplemented_preprocessing_contract_is_refused(bundle_dir):
    message = _refused(_edit(bundle_dir, lambda m: m["preprocess"].update(contract="i3dmtn.preprocess/9")))
    assert "preprocess:" in message and "i3dmtn.preprocess/9" in message


def test_backbone_snippet_length_must_match_the_window(bundle_dir):
    message = _refused(_edit(bundle_dir, lambda m: m["window"].update(snippet_length=8)))
    assert "input shape must be (N, C=3, S=8" in message


def test_backbone_input_must_match_the_crop(bundle_dir):
    message = _refused(_edit(bundle_dir, lambda m: m["preprocess"].update(crop_size=[112, 112])))
    assert "H=112, W=112" in message and "backbone" in message


def test_backbone_and_head_feature_widths_must_agree(bundle_dir):
    message = _refused(_edit(bundle_dir, lambda m: m["files"][0]["outputs"][0].update(shape=["N", 512])))
    assert "backbone output D and head input D must agree, got [512, 1024]" in message


def test_head_window_must_match_unless_dynamic(bundle_dir):
    message = _refused(_edit(bundle_dir, lambda m: m["window"].update(num_snippets=8)))
    assert "input K=32 differs from window.num_snippets=8" in message

    def dynamic(m):
        m["window"]["num_snippets"] = 8
        for f in m["files"]:
            if f["role"] == "head":
                f["inputs"][0]["shape"] = ["N", "K", D]

    assert load_bundle(_edit(bundle_dir, dynamic)).window.num_snippets == 8


@pytest.mark.parametrize("bad", ["../backbone.fp32.onnx", "/etc/backbone.fp32.onnx", "a/../../b.onnx"])
def test_paths_escaping_the_bundle_are_refused(bundle_dir, bad):
    message = _refused(_edit(bundle_dir, lambda m: m["files"][1].update(path=bad)))
    assert "must be a relative path inside the bundle folder" in message


def test_symlink_out_of_the_bundle_is_refused(bundle_dir, tmp_path):
    outside = tmp_path / "outside.onnx"
    outside.write_bytes((bundle_dir / "head.fp32.onnx").read_bytes())
    (bundle_dir / "head.fp32.onnx").unlink()
    (bundle_dir / "head.fp32.onnx").symlink_to(outside)
    assert "points outside the bundle folder" in _refused(bundle_dir)


def test_fp32_fallback_is_required(bundle_dir):
    message = _refused(
        _edit(bundle_dir, lambda m: m.update(files=[f for f in m["files"] if f["precision"] != "fp32"]))
    )
    assert "no fp32 models (the fallback)" in message


def test_each_precision_needs_a_head_and_a_backbone(bundle_dir):
    def drop_int8_head(m):
        m["files"] = [f for f in m["files"] if (f["role"], f["precision"]) != ("head", "int8")]

    assert "no head model at precision int8" in _refused(_edit(bundle_dir, drop_int8_head))


def test_openvino_file_needs_its_weights_companion(bundle_dir):
    message = _refused(_edit(bundle_dir, lambda m: m["files"][0].update(companions=[])))
    assert "must list the OpenVINO weights 'backbone.int8.bin'" in message


def test_format_must_fit_the_target(bundle_dir):
    message = _refused(_edit(bundle_dir, lambda m: m.update(target="onnx")))
    assert "format 'openvino' cannot run on target 'onnx'" in message


def test_profile_for_another_target_is_refused(bundle_dir):
    bundle = load_bundle(bundle_dir)
    bundle.check_profile(load_profile("intel-nuc"))
    with pytest.raises(BundleError, match="the bundle is for target 'openvino', the profile wants 'onnx'"):
        bundle.check_profile(load_profile("generic-cpu"))


def _dynamic_k(m: dict[str, Any]) -> None:
    """A head that takes any number of snippets (as exports with a dynamic K axis write it)."""
    for f in m["files"]:
        if f["role"] == "head":
            f["inputs"][0]["shape"] = ["N", "K", D]


@pytest.mark.parametrize(
    ("key", "change", "bound"),
    [
        ("window.num_snippets", lambda m: m["window"].update(num_snippets=10**9), "[1, 1024]"),
        ("window.frame_stride", lambda m: m["window"].update(frame_stride=10**12), "[1, 32]"),
        ("window.snippet_length", lambda m: m["window"].update(snippet_length=10**6), "[1, 128]"),
        ("preprocess.resize_short_side", lambda m: m["preprocess"].update(resize_short_side=10**9), "4096"),
        (
            "preprocess.crop_size",
            lambda m: m["preprocess"].update(crop_size=[10**5, 10**5], resize_short_side=10**5),
            "1024",
        ),
        ("preprocess.std", lambda m: m["preprocess"].update(std=[1e-300, 0.5, 0.5]), "[0.001, 10]"),
        ("preprocess.mean", lambda m: m["preprocess"].update(mean=[1e300, 0.5, 0.5]), "[-10, 10]"),
    ],
)
def test_numbers_beyond_what_a_device_runs_are_refused_by_name(bundle_dir, key, change, bound):
    def hostile(m):
        _dynamic_k(m)
        change(m)

    message = _refused(_edit(bundle_dir, hostile), verify_hashes=False)
    assert key in message and bound in message, message


def test_a_feature_width_beyond_what_a_device_runs_is_refused(bundle_dir):
    def wide(m):
        for f in m["files"]:
            if f["role"] == "backbone":
                f["outputs"][0]["shape"] = ["N", 10**9]
            else:
                f["inputs"][0]["shape"] = ["N", K, 10**9]

    message = _refused(_edit(bundle_dir, wide), verify_hashes=False)
    assert "feature width D" in message and "65536" in message, message


def test_the_largest_accepted_window_loads(bundle_dir):
    def largest(m):
        _dynamic_k(m)
        m["window"].update(num_snippets=1024, frame_stride=32)

    window = load_bundle(_edit(bundle_dir, largest), verify_hashes=False).window
    assert (window.num_snippets, window.frame_stride) == (1024, 32)
