"""Every snippet of the seed's README, with the package names mapped as the README's table maps them.

``I3D`` -> ``training``, ``I3D.data.dataset`` and ``I3D.utils.preprocessing`` -> ``training.data``,
``I3D.utils.visualization`` -> ``training.plots``, ``python train.py`` / ``python evaluate.py`` ->
``i3dmtn train`` / ``i3dmtn evaluate``. Sizes are tiny (the `debug` preset, short clips, small frames); each
test is the seed's code otherwise, followed by what it must have produced.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from tests.training.tiny_data import synth_root, write_video


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return synth_root(tmp_path_factory)


def test_basic_usage(tmp_path):
    from training import I3D_MTN_AnomalyDetector, get_config

    # Load configuration
    config = get_config("debug")  # or "violence", "debug"

    # Create model
    model = I3D_MTN_AnomalyDetector(
        clip_length=config.CLIP_LENGTH,
        i3d_backbone=config.I3D_BACKBONE,
        mtn_hidden_dim=config.MTN_HIDDEN_DIM,
        mtn_num_scales=config.MTN_NUM_SCALES,
        mil_attention_dim=config.MIL_ATTENTION_DIM,
    )

    # Forward pass
    video_clips = torch.randn(2, 3, 16, 32, 32)  # (B, C, T, H, W)
    output = model(video_clips)

    assert output["video_anomaly_score"].shape == (2,)
    assert output["frame_anomaly_scores"].shape == (2, 16)
    assert model.width_multiplier == config["width_multiplier"] == 0.125  # the backbone the config describes


@pytest.mark.parametrize("name", ["default", "fight", "violence", "debug"])
def test_predefined_configs_read_as_attributes_and_stay_json(name):
    from training import get_config

    config = get_config(name)
    assert config.CLIP_LENGTH == config.clip_length == config["clip_length"]
    assert config.FRAME_SIZE == (config["frame_size"], config["frame_size"])
    assert config.NUM_EPOCHS == config["epochs"]
    assert json.loads(json.dumps(config)) == dict(config)
    with pytest.raises(AttributeError, match="no key 'clip_lenght'"):
        config.CLIP_LENGHT  # noqa: B018
    with pytest.raises(AttributeError, match="read-only"):
        config.CLIP_LENGTH = 4


def test_custom_configuration():
    from training import create_experiment_config, get_config

    config = create_experiment_config(
        base_config="fight", clip_length=64, batch_size=8, learning_rate=5e-4, mtn_hidden_dim=512
    )
    assert (config.CLIP_LENGTH, config.BATCH_SIZE, config.LEARNING_RATE, config.MTN_HIDDEN_DIM) == (
        64,
        8,
        5e-4,
        512,
    )
    changed = {k for k, v in get_config("fight").items() if config[k] != v}
    assert "clip_length" in changed <= {"clip_length", "batch_size", "learning_rate", "mtn_hidden_dim"}


def test_training_and_evaluation_commands(root, tmp_path):
    from training.cli import main

    out = tmp_path / "checkpoints"
    # python train.py --config debug --data_path data/sample  (here with the seed's flags, one short epoch)
    argv = ["train", "--config", "debug", "--data_path", str(root), "--epochs", "1", "--batch_size", "4"]
    assert main([*argv, "--learning_rate", "1e-3", "--clip_length", "4", "--output", str(out)]) == 0
    assert (out / "best.pt").is_file() and (out / "training_curves.png").stat().st_size > 0
    # python evaluate.py --model_path checkpoints/best_model.pth --test_path data/test --visualize
    report = tmp_path / "eval"
    argv = ["evaluate", "--model_path", str(out / "best.pt"), "--test_path", str(root / "test")]
    assert main([*argv, "--visualize", "--output", str(report)]) == 0
    assert "auc_roc" in json.loads((report / "report.json").read_text())["video_metrics"]
    assert list((report / "timelines").glob("*.png"))


def test_visualization_tools(tmp_path, monkeypatch):
    from training.plots import (
        create_video_with_annotations,
        plot_anomaly_scores_timeline,
        plot_training_curves,
        visualize_attention_weights,
    )

    monkeypatch.chdir(tmp_path)
    train_losses, val_losses = [0.9, 0.6, 0.4], [1.0, 0.7, 0.6]
    frame_scores = np.linspace(0, 1, 12)
    attention_weights = np.full(3, 1 / 3)
    write_video(tmp_path / "input.mp4", frames=12)

    # Plot training curves
    plot_training_curves(train_losses, val_losses, save_path="training.png")
    # Visualize predictions timeline
    plot_anomaly_scores_timeline(frame_scores, threshold=0.5, save_path="timeline.png")
    # Create annotated video
    create_video_with_annotations("input.mp4", frame_scores, "output.mp4")
    # Visualize attention weights
    figure = visualize_attention_weights(attention_weights, frame_scores)

    for name in ("training.png", "timeline.png", "output.mp4"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert [line.get_label() for line in figure.axes[1].lines] == ["frame score"]


def test_custom_dataset(root):
    from training.data import AnomalyVideoDataset

    def custom_transform(clip):
        return clip.flip(-1)

    dataset = AnomalyVideoDataset(
        data_path=root / "train", clip_length=8, frame_size=(32, 48), transform=custom_transform
    )
    item = dataset[0]
    assert item["clips"].shape == (3, 8, 32, 48)  # one clip of clip_length frames, (H, W) as given
    plain = AnomalyVideoDataset(data_path=root / "train", clip_length=8, frame_size=(32, 48))[0]
    torch.testing.assert_close(item["clips"], plain["clips"].flip(-1))


def test_custom_training_loop(root, tmp_path, monkeypatch):
    from torch.utils.data import DataLoader

    from training import I3D_MTN_AnomalyDetector, I3D_MTN_Trainer, create_experiment_config
    from training.data import AnomalyVideoDataset

    monkeypatch.chdir(tmp_path)
    config = create_experiment_config(
        "debug", clip_length=4, num_snippets=2, frame_size=32, resize_short_side=32
    )
    model = I3D_MTN_AnomalyDetector(
        clip_length=config.CLIP_LENGTH,
        i3d_backbone=config.I3D_BACKBONE,
        mtn_hidden_dim=8,
        mil_attention_dim=8,
    )
    data = {
        split: AnomalyVideoDataset(root / split, clip_length=4, frame_size=32, num_snippets=2)
        for split in ("train", "val")
    }
    train_loader = DataLoader(data["train"], batch_size=2, shuffle=True)
    val_loader = DataLoader(data["val"], batch_size=2)

    trainer = I3D_MTN_Trainer(model, config)
    history = trainer.train(train_loader, val_loader, num_epochs=1)

    assert len(history) == 1 and history[0]["epoch"] == 1
    assert (tmp_path / "runs" / "debug" / "best.pt").is_file()  # output_dir defaults to runs/<config name>


def test_inference_on_single_video(root):
    from training import I3D_MTN_AnomalyDetector, get_config
    from training.data import preprocess_video

    config = get_config("debug")
    model = I3D_MTN_AnomalyDetector(
        clip_length=config.CLIP_LENGTH,
        i3d_backbone=config.I3D_BACKBONE,
        mtn_hidden_dim=8,
        mil_attention_dim=8,
    ).eval()
    test_video = next((root / "test" / "anomaly").glob("*.mp4"))

    # Load and preprocess video
    frames = preprocess_video(test_video, clip_length=8, frame_size=32)

    # Get predictions
    with torch.no_grad():
        output = model(frames.unsqueeze(0))

    video_score = output["video_anomaly_score"].item()
    frame_scores = output["frame_anomaly_scores"].squeeze().cpu().numpy()
    assert 0.0 <= video_score <= 1.0
    assert frame_scores.shape == (32,)  # the 32-frame video: 4 snippets of 8


def test_annotation_file_in_the_seeds_form(root, tmp_path, caplog):
    from training.data import scan_videos

    split = tmp_path / "data" / "train"
    for sub in ("normal", "anomaly"):
        (split / sub).mkdir(parents=True)
        for video in (root / "train" / sub).glob("*.mp4"):
            (split / sub / video.name).symlink_to(video)
    fights = sorted(p.name for p in (split / "anomaly").iterdir())
    frames = [0] * 8 + [1] * 16 + [0] * 8
    records = [
        {"video_path": f"data/train/anomaly/{fights[0]}", "label": 1, "frame_annotations": frames},
        {"video_path": str(split / "anomaly" / fights[1]), "label": 1, "frame_annotations": frames[::-1]},
        {"video_path": "path/to/video.mp4", "label": 1, "frame_annotations": frames},
    ]
    (split / "annotations.json").write_text("\n".join(json.dumps(r) for r in records))  # one object per video

    with caplog.at_level(logging.WARNING, logger="training.data.records"):
        found = {r.key: r for r in scan_videos(split)[0]}
    np.testing.assert_array_equal(found[f"anomaly/{fights[0]}"].frame_labels, frames)
    np.testing.assert_array_equal(found[f"anomaly/{fights[1]}"].frame_labels, frames[::-1])
    assert "'path/to/video.mp4' names no video" in caplog.text


def test_one_annotation_object_is_one_video(tmp_path, root):
    from training.data import load_annotations

    path = tmp_path / "annotations.json"
    path.write_text(
        json.dumps({"video_path": "anomaly/a.mp4", "label": 1, "frame_annotations": [0, 1, 1, 0]})
    )
    assert list(load_annotations(path)) == ["anomaly/a.mp4"]


def test_random_bytes_are_not_a_checkpoint_of_this_project(tmp_path):
    from training.checkpoint import CheckpointError, load_checkpoint

    bad = tmp_path / "best_model.pth"
    bad.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(bad)
    assert str(info.value).startswith(f"{bad} is not a checkpoint of this project")
    assert "weights_only" not in str(info.value)
