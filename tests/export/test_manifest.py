"""The manifest the export writes: a fine-tune's bundle says which checkpoint its weights started from."""

from __future__ import annotations

import pytest

from edge_runtime.bundle import BundleError, parse_manifest
from export.manifest import build_manifest
from tests.edge_runtime.test_bundle import _manifest
from training.configs import create_experiment_config

START = {"path": "/runs/debug/best.pt", "sha256": "ab" * 32, "model": "debug", "epoch": 19}


def _built(tmp_path, ckpt: dict) -> dict:
    checkpoint = tmp_path / "best.pt"
    checkpoint.write_bytes(b"weights")
    config = dict(create_experiment_config("debug"))
    return build_manifest(config, ckpt, checkpoint, target="onnx", precision="fp32", threshold=0.5,
                          accuracy={"gate": "not_checked"}, fps=25.0, events=None)  # fmt: skip


def test_a_fine_tunes_manifest_names_the_checkpoint_it_started_from(tmp_path):
    manifest = _built(tmp_path, {"epoch": 3, "started_from": START})
    assert manifest["model"]["started_from"] == START
    assert manifest["model"]["version"].startswith("epoch3-")


def test_a_model_trained_from_scratch_has_no_started_from(tmp_path):
    assert "started_from" not in _built(tmp_path, {"epoch": 3, "started_from": None})["model"]
    assert "started_from" not in _built(tmp_path, {"epoch": 3})["model"]


def test_the_runtime_reads_a_bundle_with_started_from(tmp_path):
    manifest = _manifest(tmp_path)
    manifest["model"]["started_from"] = dict(START)
    assert parse_manifest(manifest, tmp_path).model_name == "i3d-mtn"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sha256": "not-a-hash"}, "model.started_from.sha256 must be 64 lowercase hex digits"),
        ({"epoch": -1}, "model.started_from.epoch must be an integer >= 0"),
        ({"path": ""}, "model.started_from.path must not be empty"),
        ({"extra": 1}, "unknown field(s) ['extra'] in model.started_from"),
    ],
)
def test_a_bad_started_from_is_refused_in_one_line(tmp_path, change, message):
    manifest = _manifest(tmp_path)
    manifest["model"]["started_from"] = {**START, **change}
    with pytest.raises(BundleError) as info:
        parse_manifest(manifest, tmp_path)
    assert message in str(info.value) and "\n" not in str(info.value)
