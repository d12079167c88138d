"""The pose forest of a run: fitted beside the motion forest on the same windows, named by the checkpoints,
scored as its share of the fused score (the bundle and the device: tests/export/test_pose_bundle.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.training.tiny_data import synth_root, tiny_config, video_datasets

from ..edge_runtime.pose_helpers import write_echo_pose_model

pytest.importorskip("openvino", reason="the pose model runs on OpenVINO")

POSE = {"input_modality": "flow", "motion_forest_trees": 3, "pose_forest_trees": 3, "pose_every": 2,
        "pose_height": 64, "pose_weight": 0.3}  # fmt: skip


@pytest.fixture(scope="module")
def pose_run(tmp_path_factory):
    """A 1-epoch tiny flow run whose forests (motion and pose, an echo pose model) are fitted once; the pose
    cache in its own folder."""
    from training.checkpoint import new_model, read_checkpoint
    from training.motion_forest import fit_motion_forest
    from training.trainer import I3D_MTN_Trainer

    cache = tmp_path_factory.mktemp("cache")
    model = write_echo_pose_model(tmp_path_factory.mktemp("pose") / "echo.xml")
    config = tiny_config(epochs=1, **POSE, pose_model=str(model))
    train, val = video_datasets(synth_root(tmp_path_factory), config)
    out = tmp_path_factory.mktemp("pose_run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("I3DMTN_CACHE_DIR", str(cache))
        trainer = I3D_MTN_Trainer(new_model(config), config, output_dir=out, device="cpu", progress=False)
        trainer.fit(train, val)
        fit_motion_forest(trainer, train, val, progress=False)
    return config, val, out, read_checkpoint(out / "best.pt", map_location="cpu"), cache


def test_the_pose_forest_is_written_beside_the_motion_forest_and_the_checkpoints_name_it(pose_run):
    from edge_runtime.bundle import sha256_file
    from training.motion_forest import load_checkpoint_fusion

    config, _, out, ckpt, cache = pose_run
    ref = ckpt["pose_forest"]
    assert ref["sha256"] == sha256_file(out / "pose_forest.npz")
    assert (ref["weight"], ref["every"], ref["height"], ref["trees"]) == (0.3, 2, 64, 3)
    assert set(ckpt["motion_forest"]["val_auc"]) == {"fused", "network", "forest", "pose"}
    fusion = load_checkpoint_fusion(out / "best.pt", ckpt)
    assert fusion.pose is not None and fusion.pose.weight == 0.3 and fusion.pose.every == 2
    assert fusion.parts == ("network", "forest", "pose")
    assert list((cache / "poses").glob("*.npy"))  # every video posed once, in the pose cache


def test_a_snippets_score_is_the_pose_forests_share_of_the_fused_score(pose_run):
    from training.checkpoint import load_model_state, new_model
    from training.evaluate import score_video
    from training.motion_forest import load_checkpoint_fusion

    config, val, out, ckpt, cache = pose_run
    model = new_model(config)
    load_model_state(model, ckpt["model"], out / "best.pt")
    fusion = load_checkpoint_fusion(out / "best.pt", ckpt)
    w, p = fusion.weight, fusion.pose.weight
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("I3DMTN_CACHE_DIR", str(cache))
        for record in val.records:
            r = score_video(model.eval(), record, config, "cpu", fusion=fusion)
            inner = (1 - w) * r.parts["network"] + w * r.parts["forest"]
            np.testing.assert_allclose(r.snippet_scores, (1 - p) * inner + p * r.parts["pose"], atol=1e-5)


def test_a_pose_forest_without_the_pose_model_is_one_line(tmp_path, monkeypatch):
    from training.data import DatasetError
    from training.pose_forest import pose_source

    monkeypatch.setenv("I3DMTN_CACHE_DIR", str(tmp_path))
    with pytest.raises(DatasetError, match=r"run `i3dmtn pose fetch` \(or set pose_model\)"):
        pose_source(tiny_config(**POSE))
    with pytest.raises(DatasetError, match="pose_model': .*nothing.xml does not exist"):
        pose_source(tiny_config(**POSE, pose_model=str(tmp_path / "nothing.xml")))


def test_train_without_the_pose_model_says_so_before_any_epoch(tmp_path, monkeypatch, capsys):
    from training.cli import main

    monkeypatch.setenv("I3DMTN_CACHE_DIR", str(tmp_path / "empty"))
    sets = [f"{k}={v}" for k, v in POSE.items()]
    argv = [
        "train",
        "--config",
        "debug",
        "--data_path",
        str(tmp_path / "no_data"),
        "--output",
        str(tmp_path / "r"),
    ]
    assert main([*argv, *(a for kv in sets for a in ("--set", kv))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "run `i3dmtn pose fetch`" in err[0], err
    assert not (tmp_path / "r" / "best.pt").exists()
