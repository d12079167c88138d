"""The gates: INT8 may lose at most --max-auc-drop of held-out video AUC, and no held-out fight's event.

The model's head is briefly trained on the ``contrast`` videos (see helpers), so FP32 ranks the held-out
videos perfectly; a good calibration keeps that, a single constant grey clip (every activation range nearly
empty, so INT8 saturates on real clips) does not.
"""

from __future__ import annotations

import json

import pytest

from edge_runtime.bundle import load_bundle
from tests.export import helpers
from training.cli import main


def _cli(ckpt, calib, out, *extra):
    return main(["export", "--checkpoint", str(ckpt), "--target", "onnx", "--calib-data", str(calib),
                 "--out", str(out), *map(str, extra)])  # fmt: skip


def _refusal(code, capsys, out) -> str:
    """The one-line error of an export that exited 1 and wrote nothing (not even a temp folder)."""
    assert code == 1
    message = capsys.readouterr().err.strip()
    assert "\n" not in message and message.startswith("i3dmtn export: ")
    assert not out.exists() and not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    return message


@pytest.fixture(scope="module")
def good(trained_ckpt, contrast_root, tmp_path_factory):
    return helpers.export(
        trained_ckpt, contrast_root, tmp_path_factory.mktemp("gate") / "good", target="onnx"
    )


def test_gate_passes_with_a_good_calibration(good):
    accuracy = load_bundle(good.bundle).accuracy
    assert accuracy["gate"] == "passed" and accuracy["event_gate"] == "passed"
    assert accuracy["fp32_video_auc"] >= 0.9  # the premise: FP32 ranks the held-out videos well
    assert accuracy["fp32_fights_alerted"] == accuracy["int8_fights_alerted"] == accuracy["fights"] == 3


def test_the_event_policy_chosen_on_validation_alerts_every_held_out_fight_and_no_calm_scene(good):
    bundle = load_bundle(good.bundle)
    chosen = good.report["event_policy"]
    assert chosen["source"] == "chosen on the validation videos"
    assert chosen["validation"]["fights_alerted"] == chosen["validation"]["fights"] == 2
    events = good.report["comparison"]["events"]  # replayed on the held-out videos with the bundle's policy
    assert events["policy"]["min_duration_s"] == bundle.event_policy.min_duration_s
    assert events["fights_alerted"] == {"fp32": 3, "int8": 3}
    assert events["false_alarms"] == {"fp32": 0, "int8": 0}


def test_gate_fails_on_a_constant_calibration_clip_and_writes_nothing(
    trained_ckpt, contrast_root, constant_root, tmp_path, capsys
):
    out = tmp_path / "broken"
    code = _cli(trained_ckpt, constant_root, out, "--eval-data", contrast_root, "--calib-snippets", 1)
    assert _refusal(code, capsys, out).startswith("i3dmtn export: accuracy gate: INT8 video AUC")


def test_allowing_the_auc_drop_does_not_allow_losing_the_fights_events(
    trained_ckpt, contrast_root, constant_root, tmp_path, capsys
):
    # the broken INT8 model's scores flatten: no held-out fight stays above the event policy's threshold
    out = tmp_path / "events_lost"
    code = _cli(trained_ckpt, constant_root, out, "--eval-data", contrast_root, "--calib-snippets", 1,
                "--allow-accuracy-drop")  # fmt: skip
    message = _refusal(code, capsys, out)
    assert message.startswith("i3dmtn export: event gate: INT8 alerts 0 of 3 held-out fights, FP32 3")
    assert message.endswith("pass --allow-event-loss")


def test_allowing_both_losses_writes_the_bundle_with_both_gates_overridden(
    trained_ckpt, contrast_root, constant_root, tmp_path
):
    out = tmp_path / "overridden"
    code = _cli(trained_ckpt, constant_root, out, "--eval-data", contrast_root, "--calib-snippets", 1,
                "--allow-accuracy-drop", "--allow-event-loss")  # fmt: skip
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    accuracy = manifest["accuracy"]
    assert accuracy["gate"] == "overridden" and accuracy["event_gate"] == "overridden"
    assert accuracy["auc_drop"] > 0.01
    assert (accuracy["fp32_fights_alerted"], accuracy["int8_fights_alerted"]) == (3, 0)
    assert load_bundle(out).event_policy is not None  # chosen on the validation videos, FP32
