"""The run's threshold is chosen on whole validation videos, scored as ``evaluate`` and the device score them."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
import torch

from tests.training.test_features import CLI_SETS
from tests.training.tiny_data import synth_root, tiny_config, trained_run, video_datasets
from training.checkpoint import load_checkpoint, new_model
from training.cli import main
from training.data import scan_videos
from training.evaluate import score_video
from training.metrics import video_metrics
from training.trainer import I3D_MTN_Trainer


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return synth_root(tmp_path_factory)


def _evaluate_threshold(checkpoint, root):
    """Youden's threshold of ``root/val``'s videos as ``evaluate`` scores them with ``checkpoint``, and
    whether any of them holds more snippets than a validation item (K)."""
    model, config, _ = load_checkpoint(checkpoint)
    results = [
        score_video(model.eval(), r, config, torch.device("cpu")) for r in scan_videos(root / "val")[0]
    ]
    labels = np.array([r.record.label for r in results])
    threshold = video_metrics(labels, np.array([r.video_score for r in results]))["optimal_threshold"]
    return threshold, any(len(r.snippet_scores) > config["num_snippets"] for r in results)


def test_train_writes_the_threshold_of_the_whole_validation_videos(root, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--config", "debug", *CLI_SETS, "--data_path", str(root), "--epochs", "2"]
    assert main([*args, "--output", str(out), "--no-progress"]) == 0
    for name in ("best.pt", "last.pt"):
        threshold, longer = _evaluate_threshold(out / name, root)
        assert longer  # a validation item sees part of these videos
        assert torch.load(out / name, weights_only=True)["threshold"] == pytest.approx(threshold)


def test_a_head_only_run_scores_its_validation_videos_whole_from_the_cached_features(
    root, tmp_path_factory, tmp_path, caplog
):
    from training.commands.train import build_datasets
    from training.features import extract_features
    from training.video_threshold import write_video_thresholds

    config = tiny_config(epochs=1)
    model, _, _ = load_checkpoint(trained_run(tmp_path_factory) / "best.pt")
    extract_features(model.backbone, config, root, tmp_path / "feats", device="cpu", progress=False)
    train, val = build_datasets(config, None, tmp_path / "feats")
    trainer = I3D_MTN_Trainer(model, config, output_dir=tmp_path / "run", device="cpu", progress=False)
    trainer.fit(train, val)
    with caplog.at_level(logging.INFO, logger="training.video_threshold"):
        write_video_thresholds(trainer, val)
    threshold, _ = _evaluate_threshold(tmp_path / "run" / "best.pt", root)
    assert torch.load(tmp_path / "run" / "best.pt", weights_only=True)["threshold"] == pytest.approx(
        threshold
    )
    assert "on the whole validation videos" in caplog.text


def test_unreadable_validation_videos_are_skipped_with_a_warning(root, tmp_path, caplog):
    from training.video_threshold import validation_video_scores

    config = tiny_config(epochs=1)
    _, val = video_datasets(root, config)
    trainer = I3D_MTN_Trainer(new_model(config), config, output_dir=tmp_path, device="cpu", progress=False)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    val.records = [dataclasses.replace(val.records[0], path=broken), *val.records]
    with caplog.at_level(logging.WARNING, logger="training.video_threshold"):
        labels, scores = validation_video_scores(trainer, val)
    assert len(labels) == len(val.records) - 1 and set(scores) == {"network"}
    assert f"skipping validation video {broken}" in caplog.text
