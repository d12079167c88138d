"""The accuracy gate: INT8 may lose at most --max-auc-drop of held-out video AUC.

The model's head is briefly trained on the ``contrast`` videos (see helpers), so FP32 ranks the held-out
videos perfectly; a good calibration keeps that, a single constant grey clip (every activation range nearly
empty, so INT8 saturates on real clips) does not.
"""

from __future__ import annotations

import json

from edge_runtime.bundle import load_bundle
from tests.export import helpers
from training.cli import main


def _cli(ckpt, calib, out, *extra):
    return main(["export", "--checkpoint", str(ckpt), "--target", "onnx", "--calib-data", str(calib),
                 "--out", str(out), *map(str, extra)])  # fmt: skip


def test_gate_passes_with_a_good_calibration(trained_ckpt, contrast_root, tmp_path):
    result = helpers.export(trained_ckpt, contrast_root, tmp_path / "good", target="onnx")
    accuracy = load_bundle(result.bundle).accuracy
    assert accuracy["gate"] == "passed"
    assert accuracy["fp32_video_auc"] >= 0.9  # the premise: FP32 ranks the held-out videos well


def test_gate_fails_on_a_constant_calibration_clip_and_writes_nothing(
    trained_ckpt, contrast_root, constant_root, tmp_path, capsys
):
    out = tmp_path / "broken"
    code = _cli(trained_ckpt, constant_root, out, "--eval-data", contrast_root, "--calib-snippets", 1)
    assert code == 1
    message = capsys.readouterr().err.strip()
    assert message.startswith("i3dmtn export: accuracy gate: INT8 video AUC") and "\n" not in message
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".broken.")]


def test_allowing_the_drop_writes_the_bundle_with_the_gate_overridden(
    trained_ckpt, contrast_root, constant_root, tmp_path
):
    out = tmp_path / "overridden"
    code = _cli(
        trained_ckpt,
        constant_root,
        out,
        "--eval-data",
        contrast_root,
        "--calib-snippets",
        1,
        "--allow-accuracy-drop",
    )
    assert code == 0
    accuracy = json.loads((out / "manifest.json").read_text())["accuracy"]
    assert accuracy["gate"] == "overridden"
    assert accuracy["auc_drop"] > 0.01
