"""The exported bundle: loads with the runtime's reader, records what the device needs, and is all-or-nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from calibration.select import load_calibration_set, select_calibration_set
from edge_runtime.bundle import load_bundle
from edge_runtime.preprocess import PreprocessConfig
from export.pipeline import ExportError, check_disjoint
from tests.export import helpers
from training.data import scan_videos


def test_bundle_loads_with_fp32_and_int8_models_and_the_gate_result(exports):
    bundle = load_bundle(exports["onnx"].bundle)
    assert bundle.precisions == ("fp32", "int8")
    assert bundle.accuracy["gate"] in ("passed", "overridden", "not_checked")
    assert bundle.accuracy["gate"] == exports["onnx"].report["accuracy"]["gate"]
    assert (bundle.window.snippet_length, bundle.window.num_snippets) == (helpers.S, helpers.K)
    assert bundle.preprocess == PreprocessConfig.square(helpers.SIZE)
    assert 0.0 <= bundle.threshold <= 1.0


def test_bundle_holds_the_report_plots_and_the_calibration_set(exports):
    bundle = load_bundle(exports["onnx"].bundle)
    report = json.loads(bundle.report.read_text())
    for key in (
        "comparison",
        "file_sizes_bytes",
        "backbone_latency_ms_batch1",
        "calibration",
        "quantization",
    ):
        assert key in report
    for name in ("fp32", "int8"):
        assert {"video_auc", "video_ap", "frame_auc"} <= set(report["comparison"][name])
    assert 0.0 <= report["comparison"]["alert_agreement"] <= 1.0
    events = report["comparison"]["events"]  # the device's events replayed on the held-out videos
    assert len(events["per_video"]) == report["comparison"]["videos"]
    assert events["fp32"] == sum(v["fp32"] for v in events["per_video"].values())
    assert events["int8"] == sum(v["int8"] for v in events["per_video"].values())
    assert (bundle.path / "plots" / "score_scatter.png").stat().st_size > 0
    assert (bundle.path / "plots" / "roc.png").stat().st_size > 0
    assert len(load_calibration_set(bundle.calibration_set).clips) == report["calibration"]["snippets"] == 24


def test_held_out_videos_that_are_calibration_videos_are_refused(synth_root):
    cal = select_calibration_set(
        synth_root, count=4, preprocess=PreprocessConfig.square(32), snippet_length=8
    )
    with pytest.raises(ExportError, match="also a calibration video"):
        check_disjoint(cal, synth_root, scan_videos(synth_root / "train")[0])
    check_disjoint(cal, synth_root, scan_videos(synth_root / "test")[0])  # the real held-out split is fine


def test_an_export_killed_midway_leaves_no_bundle(untrained_ckpt, synth_root, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "training.cli", "export", "--checkpoint", str(untrained_ckpt), "--target", "onnx",
           "--calib-data", str(synth_root), "--out", str(out), "--calib-snippets", "8"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not any(p.name.startswith(".killed.tmp-") for p in tmp_path.iterdir()):
            assert proc.poll() is None, "export ended before its temp folder appeared"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not out.exists()
    from export.bundle import clean_stale_temp_dirs

    clean_stale_temp_dirs(out)  # what the next export does first
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".killed.")]
