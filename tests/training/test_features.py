"""The feature cache: contents, contract checks, resume, sharding, FeatureDataset items, the command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.training.tiny_data import synth_root, tiny_config, write_video
from training.checkpoint import new_model
from training.cli import main
from training.data import preprocess_video
from training.feature_cache import backbone_sha256, feature_paths
from training.feature_dataset import FeatureDataset
from training.features import FeatureCacheError, extract_features, parse_shard

CLI_SETS = [
    f"--set={k}={v}"
    for k, v in {
        "clip_length": 4,
        "num_snippets": 4,
        "frame_size": 32,
        "resize_short_side": 32,
        "width_multiplier": 0.0625,
        "mtn_hidden_dim": 16,
        "mil_attention_dim": 8,
    }.items()
]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return synth_root(tmp_path_factory)


@pytest.fixture(scope="module")
def config():
    return tiny_config()


@pytest.fixture(scope="module")
def model(config):
    return new_model(config).eval()


def _extract(model, config, data, out, **kw):
    return extract_features(model.backbone, config, data, out, device="cpu", progress=False, **kw)


def _all_features(out):
    return sorted(p for p in out.rglob("*.npy") if not p.name.endswith(".labels.npy"))


def test_cache_holds_every_snippet_feature_and_the_contract(root, config, model, tmp_path):
    summary = _extract(model, config, root / "test", tmp_path)
    assert summary.written == summary.total == 4 and not summary.failed
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["backbone_sha256"] == backbone_sha256(model.backbone)
    assert (index["clip_length"], index["frame_stride"], index["feature_dim"]) == (4, 1, model.feature_dim)
    assert index["preprocess"]["crop_size"] == [32, 32]
    video = sorted((root / "test" / "anomaly").glob("*.mp4"))[0]
    feats = np.load(feature_paths(tmp_path, f"anomaly/{video.name}")[0], allow_pickle=False)
    clip = preprocess_video(video, 4, frame_size=32)  # (3, n*S, H, W)
    with torch.no_grad():
        expected = model.backbone(model.snippets(clip[None])).numpy()  # (n, D)
    assert feats.dtype == np.float32 and feats.shape == expected.shape == (8, model.feature_dim)
    np.testing.assert_allclose(feats, expected, rtol=1e-4, atol=1e-5)


def test_frame_labels_are_stored_per_frame(root, config, model, tmp_path):
    _extract(model, config, root / "test", tmp_path)
    ann = {a["video_path"]: a for a in json.loads((root / "test" / "annotations.json").read_text())}
    for key, a in ann.items():
        labels = np.load(feature_paths(tmp_path, key)[1], allow_pickle=False)
        np.testing.assert_array_equal(labels, a["frame_annotations"])


def test_a_root_of_splits_is_mirrored(root, config, model, tmp_path):
    _extract(model, config, root, tmp_path)
    assert {p.parent.parent.name for p in _all_features(tmp_path)} == {"train", "val", "test"}


def test_rerun_reuses_the_cache_and_writes_nothing(root, config, model, tmp_path):
    _extract(model, config, root / "val", tmp_path)
    stamps = {p: p.stat().st_mtime_ns for p in _all_features(tmp_path)}
    summary = _extract(model, config, root / "val", tmp_path)
    assert (summary.written, summary.existing) == (0, 4)
    assert {p: p.stat().st_mtime_ns for p in _all_features(tmp_path)} == stamps


def test_resume_writes_only_the_missing_video(root, config, model, tmp_path):
    _extract(model, config, root / "val", tmp_path)
    files = _all_features(tmp_path)
    gone = files[1]
    before = gone.read_bytes()
    gone.unlink()
    stamps = {p: p.stat().st_mtime_ns for p in files if p != gone}
    summary = _extract(model, config, root / "val", tmp_path)
    assert (summary.written, summary.existing) == (1, 3)
    assert gone.read_bytes() == before
    assert {p: p.stat().st_mtime_ns for p in files if p != gone} == stamps


def test_other_backbone_weights_are_refused_then_rebuilt_with_overwrite(root, config, model, tmp_path):
    _extract(model, config, root / "val", tmp_path)
    other = new_model({**config, "seed": config["seed"] + 1})
    with pytest.raises(FeatureCacheError, match="backbone_sha256"):
        _extract(other, config, root / "val", tmp_path)
    summary = _extract(other, config, root / "val", tmp_path, overwrite=True)
    assert summary.written == 4
    assert json.loads((tmp_path / "index.json").read_text())["backbone_sha256"] == backbone_sha256(
        other.backbone
    )


def test_a_video_split_again_leaves_no_stale_features(root, config, model, tmp_path):
    data, out = tmp_path / "data", tmp_path / "feats"
    videos = sorted((root / "train").glob("*/*.mp4"))[:3]
    for video in videos:
        (data / "train" / video.parent.name).mkdir(parents=True, exist_ok=True)
        (data / "train" / video.parent.name / video.name).symlink_to(video)
    _extract(model, config, data, out)
    moved = data / "train" / videos[0].parent.name / videos[0].name
    (data / "test" / videos[0].parent.name).mkdir(parents=True)
    moved.rename(data / "test" / videos[0].parent.name / videos[0].name)  # the data set split again
    summary = _extract(model, config, data, out)
    assert summary.written == 1 and summary.existing == 2
    stale = out / "train" / videos[0].parent.name / videos[0].name
    assert (
        not stale.with_name(stale.name + ".npy").exists()
        and not stale.with_name(stale.name + ".labels.npy").exists()
    )
    assert len(FeatureDataset(out, "train", num_snippets=2).items) == 2


def test_other_preprocessing_is_refused(root, config, model, tmp_path):
    _extract(model, config, root / "val", tmp_path)
    with pytest.raises(FeatureCacheError, match="preprocess"):
        _extract(model, {**config, "resize_short_side": 40}, root / "val", tmp_path)


def test_shards_split_the_sorted_video_list(root, config, model, tmp_path):
    a = _extract(model, config, root / "train", tmp_path, shard=(0, 2))
    names_a = {p.name for p in _all_features(tmp_path)}
    b = _extract(model, config, root / "train", tmp_path, shard=(1, 2))
    names = {p.name for p in _all_features(tmp_path)}
    assert a.written == b.written == 4 and len(names) == 8 and len(names_a) == 4


def test_unreadable_video_is_skipped_and_counted(root, config, model, tmp_path):
    data = tmp_path / "data"
    write_video(data / "normal" / "ok.mp4", frames=9)
    (data / "anomaly").mkdir()
    (data / "anomaly" / "bad.mp4").write_bytes(b"not a video")
    summary = _extract(model, config, data, tmp_path / "out")
    assert summary.written == 1 and [f.path.name for f in summary.failed] == ["bad.mp4"]


def test_feature_dataset_samples_k_cached_snippets(root, config, model, tmp_path):
    _extract(model, config, root / "test", tmp_path)
    ds = FeatureDataset(tmp_path, num_snippets=3)
    item = ds[len(ds) - 1]
    feats = np.load(feature_paths(tmp_path, item["video"])[0], allow_pickle=False)
    assert item["features"].shape == (3, model.feature_dim)
    np.testing.assert_array_equal(item["features"].numpy(), feats[item["snippet_indices"].numpy()])
    labels = np.load(feature_paths(tmp_path, item["video"])[1], allow_pickle=False)
    np.testing.assert_array_equal(item["frame_labels"].numpy(), labels[item["frame_indices"].numpy()])
    assert item["frame_labels"].shape == (3 * 4,) and bool(item["has_frame_labels"])
    assert float(item["label"]) == 1.0


def test_feature_dataset_train_sampling_varies_by_epoch(root, config, model, tmp_path):
    _extract(model, config, root / "test", tmp_path)
    ds = FeatureDataset(tmp_path, num_snippets=3, train=True, seed=1)
    picks = set()
    for epoch in range(5):
        ds.set_epoch(epoch)
        picks.add(tuple(ds[0]["snippet_indices"].tolist()))
    assert len(picks) > 1


def test_feature_dataset_keeps_loaded_videos_in_memory_up_to_its_budget(root, config, model, tmp_path):
    _extract(model, config, root / "test", tmp_path)
    ds = FeatureDataset(tmp_path, num_snippets=3)
    first = ds[0]["features"]
    for path in feature_paths(tmp_path, ds.items[0][0]):
        path.unlink()  # a second read from disk would now fail
    np.testing.assert_array_equal(ds[0]["features"].numpy(), first.numpy())
    none_kept = FeatureDataset(tmp_path, num_snippets=3, cache_bytes=0)
    none_kept[1]
    for path in feature_paths(tmp_path, none_kept.items[1][0]):
        path.unlink()
    with pytest.raises(FileNotFoundError):
        none_kept[1]


def test_parse_shard_rejects_bad_forms():
    assert parse_shard("1/3") == (1, 3)
    for bad in ("3/3", "a/b", "1", "-1/2"):
        with pytest.raises(ValueError, match="i/n"):
            parse_shard(bad)


def test_features_command_writes_then_refuses_another_backbone(root, tmp_path, capsys):
    args = [
        "features",
        "--config",
        "debug",
        *CLI_SETS,
        "--data_path",
        str(root / "val"),
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 0
    assert "4 written" in capsys.readouterr().out
    assert main([*args, "--set=seed=99"]) == 2
    err = capsys.readouterr().err
    assert "backbone_sha256" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1


def test_features_command_bad_shard_is_a_usage_error(root, tmp_path, capsys):
    args = ["features", "--config", "debug", "--data_path", str(root / "val"), "--out", str(tmp_path)]
    assert main([*args, "--shard", "2/2"]) == 2
    assert "--shard" in capsys.readouterr().err
