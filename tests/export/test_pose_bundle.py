"""The pose forest through the chain: ``train`` fits it beside the motion forest, ``export`` puts it and the pose
model into the bundle, and the device (its windows posing the frames, its scorer) gives ``evaluate``'s scores."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from edge_runtime.bundle import BundleError, load_bundle, parse_manifest, sha256_file
from edge_runtime.pose_stats import POSE_STATS_VERSION
from tests.edge_runtime.pose_helpers import write_echo_pose_model
from tests.export import helpers
from training.checkpoint import load_checkpoint

pytest.importorskip("openvino", reason="the pose model runs on OpenVINO")


@pytest.fixture(scope="module")
def pose_env(tmp_path_factory):
    """An echo pose model and a pose cache of this module's own, for the whole module."""
    model = write_echo_pose_model(tmp_path_factory.mktemp("pose_model") / "echo.xml")
    mp = pytest.MonkeyPatch()
    mp.setenv("I3DMTN_CACHE_DIR", str(tmp_path_factory.mktemp("pose_cache")))
    yield model
    mp.undo()


@pytest.fixture(scope="module")
def pose_run(pose_env, contrast_root, tmp_path_factory):
    """``i3dmtn train`` of the tiny flow model with a motion forest and a pose forest."""
    from training.cli import main

    out = tmp_path_factory.mktemp("pose_run")
    sets = helpers.forest_settings(3) + ["pose_forest_trees=3", "pose_every=2", "pose_height=64",
                                         f"pose_model={pose_env}", "pose_weight=0.3"]  # fmt: skip
    argv = ["train", "--config", "debug", "--data_path", str(contrast_root), "--output", str(out / "run")]
    argv += ["--frame-cache", str(out / "frames"), "--no-progress"] + [
        a for kv in sets for a in ("--set", kv)
    ]
    assert main(argv) == 0
    return out / "run"


@pytest.fixture(scope="module")
def bundle(pose_run, contrast_root, tmp_path_factory):
    return helpers.export(
        pose_run / "best.pt", contrast_root, tmp_path_factory.mktemp("pose_b") / "b", target="onnx"
    )


def test_the_bundle_holds_the_pose_forest_and_the_pose_model_named_by_the_manifest(
    bundle, pose_run, pose_env
):
    entry = json.loads((bundle.bundle / "manifest.json").read_text())["pose_forest"]
    assert entry["stats_version"] == POSE_STATS_VERSION and (entry["weight"], entry["every"], entry["height"]) == (
        0.3, 2, 64,
    )  # fmt: skip
    assert (
        entry["sha256"]
        == sha256_file(pose_run / "pose_forest.npz")
        == sha256_file(bundle.bundle / entry["file"])
    )
    model = entry["model"]
    assert model["file"] == "pose/echo.xml" and model["sha256"] == sha256_file(pose_env)
    assert sha256_file(bundle.bundle / model["weights"]) == model["weights_sha256"]
    assert bundle.report["pose_forest"]["trees"] == 3
    loaded = load_bundle(bundle.bundle)
    assert (
        loaded.motion_fusion().pose.weight == 0.3
        and loaded.pose_forest.model == bundle.bundle / "pose/echo.xml"
    )


def test_the_device_poses_its_frames_and_scores_as_evaluate(bundle, pose_run, contrast_root):
    from edge_runtime.backends import create_backend
    from edge_runtime.pose_model import PoseModel
    from edge_runtime.scoring import StreamingScorer
    from edge_runtime.video import probe_video, read_frames
    from edge_runtime.window import SnippetPoses, SnippetWindow
    from training.data import scan_videos
    from training.evaluate import score_video
    from training.motion_forest import load_checkpoint_fusion

    model, config, ckpt = load_checkpoint(pose_run / "best.pt")
    fusion = load_checkpoint_fusion(pose_run / "best.pt", ckpt)
    loaded = load_bundle(bundle.bundle)
    backbone, head = (
        create_backend("onnxruntime", loaded.model(r, "fp32").path) for r in ("backbone", "head")
    )
    entry, w = loaded.pose_forest, loaded.window
    poser = PoseModel(entry.model, entry.height)
    for record in scan_videos(contrast_root / "test")[0]:
        expected = score_video(
            model.eval(), record, config, torch.device("cpu"), fusion=fusion
        ).snippet_scores
        window = SnippetWindow(loaded.preprocess, w.snippet_length, w.frame_stride, loaded.motion_crops,
                               SnippetPoses(poser, entry.every, w.snippet_length))  # fmt: skip
        scorer = StreamingScorer(backbone, head, ["cam"], w.num_snippets, motion=loaded.motion_fusion())
        fps = probe_video(record.path).fps
        snippets = [window.push(f, i / fps) for i, f in enumerate(read_frames(record.path))]
        snippets = [s for s in [*snippets, window.flush()] if s is not None]
        device = [scorer.score({"cam": s.array}, {"cam": s.poses})["cam"] for s in snippets]
        np.testing.assert_allclose(device, expected, rtol=1e-4, atol=1e-5)


def test_a_tampered_pose_model_or_a_pose_forest_without_its_motion_forest_is_refused(bundle, tmp_path):
    copy = shutil.copytree(bundle.bundle, tmp_path / "b")
    (copy / "pose" / "echo.bin").write_bytes(b"x" + (copy / "pose" / "echo.bin").read_bytes()[1:])
    with pytest.raises(BundleError, match="pose/echo.bin changed since export"):
        load_bundle(copy)
    doc = json.loads((bundle.bundle / "manifest.json").read_text())
    strided = json.loads(json.dumps(doc))
    del doc["motion_forest"]
    with pytest.raises(BundleError, match="pose_forest needs a motion_forest"):
        parse_manifest(doc, bundle.bundle, where="manifest.json")
    strided["window"]["frame_stride"] = 2
    with pytest.raises(BundleError, match="pose_forest needs window.frame_stride 1"):
        parse_manifest(strided, bundle.bundle, where="manifest.json")


def test_edge_runtime_poses_its_cameras_frames_and_scores_as_evaluate(
    bundle, pose_run, contrast_root, broker, tmp_path
):
    import re

    from tests.edge_runtime.runtime_helpers import finish, json_logs, runtime_argv, start_runtime
    from training.data import scan_videos
    from training.evaluate import score_video
    from training.motion_forest import load_checkpoint_fusion

    model, config, ckpt = load_checkpoint(pose_run / "best.pt")
    fusion = load_checkpoint_fusion(pose_run / "best.pt", ckpt)
    record = scan_videos(contrast_root / "test")[0][0]
    expected = score_video(model.eval(), record, config, torch.device("cpu"), fusion=fusion).snippet_scores
    argv = runtime_argv(bundle.bundle, broker.port, tmp_path / "outbox.sqlite", [f"cam={record.path}"])
    code, err = finish(start_runtime([*argv, "--log-level", "DEBUG", "--precision", "fp32"]))
    logs = [m["message"] for m in json_logs(err)]
    assert code == 0, err[-2000:]
    assert any("several people's poses: echo.xml on every 2 frame(s), 64 px high" in m for m in logs)
    scores = [
        float(m.group(1)) for m in (re.match(r"cam: snippet \d+ score ([0-9.]+)", x) for x in logs) if m
    ]
    assert len(scores) >= max(2, len(expected) - 1), (scores, expected)  # the device never pads the tail
    np.testing.assert_allclose(scores, expected[: len(scores)], atol=2e-4)  # logged to 4 decimals
