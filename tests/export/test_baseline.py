"""``i3dmtn export --baseline OLD_BUNDLE``: the new bundle against the old on the same held-out clips."""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import numpy as np
import pytest

from edge_runtime.bundle import load_bundle
from edge_runtime.events import EventPolicy
from export.baseline import CHANGES, compare_with_baseline, open_baseline
from export.scoring import VideoScores
from tests.export import helpers
from training.cli import main


@pytest.fixture(scope="module")
def old_bundle(tmp_path_factory, untrained_ckpt, contrast_root):
    """The bundle being replaced: the untrained tiny model, FP32 only."""
    out = tmp_path_factory.mktemp("old") / "bundle"
    return helpers.export(untrained_ckpt, contrast_root, out, precision="fp32").bundle


@pytest.fixture(scope="module")
def new_export(tmp_path_factory, trained_ckpt, contrast_root, old_bundle):
    """``(report, stdout)`` of the CLI export of the trained model (INT8) with ``--baseline``."""
    out = tmp_path_factory.mktemp("new") / "bundle"
    argv = ["export", "--checkpoint", trained_ckpt, "--calib-data", contrast_root, "--out", out,
            "--target", "onnx", "--calib-snippets", "24", "--baseline", old_bundle,
            "--allow-accuracy-drop", "--allow-event-loss"]  # fmt: skip
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main([str(a) for a in argv]) == 0
    return json.loads((out / "report.json").read_text()), stdout.getvalue()


def test_the_change_counts_are_a_count_over_the_per_video_rows(new_export):
    entry = new_export[0]["baseline"]
    rows = entry["per_video"]
    assert len(rows) == entry["videos"] == 6
    by_hand = {
        "false_alarms_gone": [r["video"] for r in rows if r["label"] == 0 and r["old_event"] and not r["new_event"]],
        "new_false_alarms": [r["video"] for r in rows if r["label"] == 0 and not r["old_event"] and r["new_event"]],
        "fights_lost": [r["video"] for r in rows if r["label"] == 1 and r["old_event"] and not r["new_event"]],
        "fights_gained": [r["video"] for r in rows if r["label"] == 1 and not r["old_event"] and r["new_event"]],
    }  # fmt: skip
    assert {name: entry[name] for name in CHANGES} == {name: len(v) for name, v in by_hand.items()}
    assert entry["changed_videos"] == by_hand
    for which in ("old", "new"):
        assert entry["fights_alerted"][which] == sum(r[f"{which}_event"] for r in rows if r["label"] == 1)
        assert entry["false_alarms"][which] == sum(r[f"{which}_event"] for r in rows if r["label"] == 0)


def test_each_side_is_scored_as_its_own_bundle_scores_the_clips(new_export, old_bundle):
    """The old scores are the ones the old bundle's own export measured on these clips (FP32, the device's
    backend and streaming rule); the new ones are the new bundle's shipped (INT8) scores."""
    report, _ = new_export
    entry, comparison = report["baseline"], report["comparison"]
    old_report = json.loads((old_bundle / "report.json").read_text())["comparison"]
    old = {r["video"]: r["fp32"] for r in old_report["per_video"]}
    new = {r["video"]: r["int8"] for r in comparison["per_video"]}
    for row in entry["per_video"]:
        assert row["old_score"] == pytest.approx(old[row["video"]], abs=1e-5)
        assert row["new_score"] == pytest.approx(new[row["video"]], abs=1e-6)
    assert entry["video_auc"]["old"] == pytest.approx(old_report["fp32"]["video_auc"], abs=1e-6)
    assert entry["video_auc"]["new"] == pytest.approx(comparison["int8"]["video_auc"], abs=1e-6)
    old_events = {k: v["fp32"] > 0 for k, v in old_report["events"]["per_video"].items()}
    assert {r["video"]: r["old_event"] for r in entry["per_video"]} == old_events
    assert entry["bundle"]["precision"] == "fp32" and entry["bundle"]["path"] == str(old_bundle)


def test_the_comparison_is_printed_as_a_table(new_export):
    report, stdout = new_export
    entry = report["baseline"]
    assert "against the baseline" in stdout and "video AUC" in stdout
    assert f"fights lost {entry['fights_lost']}, fights gained {entry['fights_gained']}" in stdout


def _scores(rows: list[tuple[str, int, float]]) -> VideoScores:
    """One video per row: six snippets at ``score``, 8 frames each at 8 fps (one snippet a second)."""
    return VideoScores(
        keys=[k for k, _, _ in rows],
        labels=[label for _, label, _ in rows],
        snippet_scores=[np.full(6, score) for _, _, score in rows],
        frame_scores=[np.full(48, score) for _, _, score in rows],
        frame_labels=[None] * len(rows),
        fps=[8.0] * len(rows),
    )


def test_each_change_is_counted_under_each_bundles_own_event_policy():
    hi, lo = 0.9, 0.1
    table = [  # video, label, old score, new score
        ("calm", 0, lo, lo), ("gone", 0, hi, lo), ("new", 0, lo, hi),
        ("lost", 1, hi, lo), ("gained", 1, lo, hi), ("kept", 1, hi, hi),
    ]  # fmt: skip
    old = _scores([(k, label, a) for k, label, a, _ in table])
    new = _scores([(k, label, b) for k, label, _, b in table])
    policy = EventPolicy(on_threshold=0.5)
    entry = compare_with_baseline(old, policy, 8, new, policy, 8)
    assert entry["changed_videos"] == {
        "false_alarms_gone": ["gone"], "new_false_alarms": ["new"], "fights_lost": ["lost"], "fights_gained": ["gained"]
    }  # fmt: skip
    assert entry["fights_alerted"] == {"old": 2, "new": 2} and entry["false_alarms"] == {"old": 1, "new": 1}
    # fights 0.9, 0.1, 0.9 vs normal 0.1, 0.9, 0.1: 4 of 9 pairs ranked right, 4 ties (half each), 1 wrong
    assert entry["video_auc"]["old"] == pytest.approx(6 / 9)
    # an old bundle whose policy never opens an event at these scores: every new alert is a change
    strict = compare_with_baseline(old, EventPolicy(on_threshold=0.95), 8, new, policy, 8)
    assert strict["fights_gained"] == 2 and strict["new_false_alarms"] == 1 and strict["fights_lost"] == 0


def _export_argv(untrained_ckpt, contrast_root, out, baseline):
    return ["export", "--checkpoint", str(untrained_ckpt), "--calib-data", str(contrast_root), "--out",
            str(out), "--baseline", str(baseline)]  # fmt: skip


@pytest.mark.parametrize("what", ["empty folder", "file", "missing"])
def test_a_baseline_that_is_not_a_bundle_is_one_line(capsys, tmp_path, untrained_ckpt, contrast_root, what):
    path = tmp_path / "old"
    if what == "empty folder":
        path.mkdir()
    elif what == "file":
        path.write_text("not a bundle")
    code = main(_export_argv(untrained_ckpt, contrast_root, tmp_path / "new", path))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert f"--baseline {path}" in err and "bundle" in err
    assert not (tmp_path / "new").exists()


def test_a_baseline_that_cuts_other_snippets_is_refused_by_name(
    capsys, tmp_path, untrained_ckpt, contrast_root, old_bundle
):
    """A bundle at 15 fps sees other frames of the same video: not the same clips."""
    other = tmp_path / "old_15fps"
    shutil.copytree(old_bundle, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["preprocess"].update(frame_rate=15.0, contract="i3dmtn.preprocess/2")
    (other / "manifest.json").write_text(json.dumps(manifest))
    code = main(_export_argv(untrained_ckpt, contrast_root, tmp_path / "new", other))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "cannot score the same clips" in err and "frame_rate 15.0 (this model: 0.0)" in err


def test_a_baseline_that_shrinks_frames_otherwise_is_compared(tmp_path, old_bundle):
    """Frames shrunk by another interpolation are the same frames cut into the same snippets: each bundle
    scores its own pixels of them (a kinetics bundle of before its preset took linear is compared)."""
    other = tmp_path / "old_linear"
    shutil.copytree(old_bundle, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["preprocess"]["interpolation"] = "linear"
    (other / "manifest.json").write_text(json.dumps(manifest))
    ours = load_bundle(old_bundle)
    opened = open_baseline(other, ours.preprocess, ours.window.snippet_length, ours.window.frame_stride)
    assert (opened.preprocess.interpolation, ours.preprocess.interpolation) == ("linear", "area")
