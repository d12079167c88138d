"""``--accuracy-control`` (OpenVINO target): NNCF quantizes the backbone, measures the validation video AUC and
reverts layers to FP32 until the drop is within ``--max-auc-drop``.

Run for real on the tiny model whose head was trained on the ``contrast`` videos (see helpers): with good
calibration clips it keeps an INT8 backbone; with one constant grey clip every layer it tries costs AUC, so
it reverts them all, and the export must then refuse rather than write an "INT8" bundle that is FP32.
"""

from __future__ import annotations

import json

import openvino as ov

from edge_runtime.bundle import load_bundle
from training.cli import main


def _cli(ckpt, calib, out, *extra):
    return main(["export", "--checkpoint", str(ckpt), "--target", "openvino", "--calib-data", str(calib),
                 "--out", str(out), "--accuracy-control", *map(str, extra)])  # fmt: skip


def test_accuracy_control_keeps_an_int8_backbone_and_says_how_it_was_made(
    trained_ckpt, contrast_root, tmp_path
):
    out = tmp_path / "ac"
    assert _cli(trained_ckpt, contrast_root, out, "--max-auc-drop", 0.05) == 0
    settings = json.loads((out / "report.json").read_text())["quantization"]["backbone"]
    assert settings["tool"].endswith("quantize_with_accuracy_control")
    assert settings["max_drop"] == 0.05 and settings["metric"] == "video AUC on validation videos"
    bundle = load_bundle(out)
    model = ov.Core().read_model(str(bundle.model("backbone", "int8").path))
    fake_quantize = sum(op.get_type_name() == "FakeQuantize" for op in model.get_ops())
    assert fake_quantize == settings["fake_quantize_nodes"] > 0
    assert bundle.accuracy["gate"] == "passed" and bundle.accuracy["max_auc_drop"] == 0.05


def test_accuracy_control_that_reverts_every_layer_is_refused_and_writes_nothing(
    trained_ckpt, contrast_root, constant_root, tmp_path, capsys
):
    out = tmp_path / "reverted"
    # even with the gate overridden: a backbone without a quantized layer is not INT8
    code = _cli(trained_ckpt, constant_root, out, "--eval-data", contrast_root, "--calib-snippets", 1,
                "--allow-accuracy-drop")  # fmt: skip
    assert code == 1
    message = capsys.readouterr().err.strip()
    assert message.startswith("i3dmtn export: accuracy control: NNCF reverted every quantized layer")
    assert "--max-auc-drop 0.01" in message and "\n" not in message
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".reverted.")]


def test_accuracy_control_without_validation_videos_is_a_one_line_error(
    trained_ckpt, contrast_root, constant_root, tmp_path, capsys
):
    held_out = tmp_path / "held_out"
    held_out.mkdir()
    (held_out / "test").symlink_to(contrast_root / "test", target_is_directory=True)  # test/ but no val/
    out = tmp_path / "bundle"
    code = _cli(trained_ckpt, constant_root, out, "--eval-data", held_out)
    assert code == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith(
        "i3dmtn export: error: --accuracy-control measures video AUC on validation videos"
    )
    assert "val/" in message and "\n" not in message
    assert not out.exists()
