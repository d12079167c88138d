"""The motion forest's training windows: the validation path's snippets, labelled by video or by frame."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.motion_fusion import video_window_stats
from edge_runtime.motion_stats import WINDOW_STATS_SIZE, snippets_motion_stats
from tests.training.tiny_data import synth_root, tiny_config, video_datasets
from training.data import iter_snippet_batches
from training.motion_forest import training_windows, video_windows


@pytest.fixture(scope="module")
def train_set(tmp_path_factory):
    config = tiny_config(input_modality="flow", motion_forest_trees=3)
    return config, video_datasets(synth_root(tmp_path_factory), config)[0]


def test_windows_are_the_devices_windows_of_every_snippet(train_set):
    config, dataset = train_set
    k, s = config["num_snippets"], config["clip_length"]
    x, y = training_windows(dataset, k, progress=False)
    assert x.shape == (len(y), WINDOW_STATS_SIZE) and np.isfinite(x).all()
    record = dataset.records[0]
    device = np.concatenate(list(iter_snippet_batches(record.path, s, dataset.preprocess)))  # SnippetWindow
    expected = video_window_stats(snippets_motion_stats(device), k)
    np.testing.assert_allclose(x[: len(expected)], expected, rtol=1e-5, atol=1e-5)


def test_windows_of_three_crops_are_the_devices_windows_of_each_crop(train_set):
    from edge_runtime.motion_fusion import crops_motion_stats

    config, dataset = train_set
    k, s = config["num_snippets"], config["clip_length"]
    centre, y = video_windows(dataset, 0, k)
    x, y3 = video_windows(dataset, 0, k, crops=3)
    assert x.shape == (len(y), 3 * WINDOW_STATS_SIZE)
    np.testing.assert_array_equal(y3, y)
    np.testing.assert_array_equal(x[:, :WINDOW_STATS_SIZE], centre)  # the forest is fitted on these
    record = dataset.records[0]
    device = np.concatenate(list(iter_snippet_batches(record.path, s, dataset.preprocess, crops=3)))
    expected = video_window_stats(crops_motion_stats(device, 3), k)
    np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(x[:, WINDOW_STATS_SIZE:], np.tile(centre, 2))  # the side crops see other flow


def test_windows_take_the_frame_labels_of_their_newest_snippet(train_set):
    config, dataset = train_set
    _, y = training_windows(dataset, config["num_snippets"], progress=False)
    start = 0
    for index, record in enumerate(dataset.records):
        _, frames = dataset.video_snippets(index)
        mine = y[start : start + len(frames)]
        start += len(frames)
        if record.frame_labels is None:
            assert (mine == record.label).all()
        else:
            np.testing.assert_array_equal(mine, record.frame_labels[frames].max(axis=1) > 0.5)
    annotated = [r for r in dataset.records if r.label == 1 and r.frame_labels is not None]
    assert annotated and 0 < y.mean() < 1  # fights annotated in part: windows of both labels


@pytest.fixture(scope="module")
def flow_run(tmp_path_factory, train_set):
    """A 1-epoch tiny flow run (best.pt, last.pt) and its data sets, trained once."""
    from training.checkpoint import new_model
    from training.trainer import I3D_MTN_Trainer

    config = tiny_config(input_modality="flow", motion_forest_trees=3, epochs=1)
    train, val = video_datasets(synth_root(tmp_path_factory), config)
    out = tmp_path_factory.mktemp("flow_run")
    I3D_MTN_Trainer(new_model(config), config, output_dir=out, device="cpu", progress=False).fit(train, val)
    return config, train, val, out


def _forest_run(flow_run, tmp_path, caplog, data, crops=1, leaf=2):
    """The run copied to ``tmp_path``, its forest fitted with ``motion_forest_data = data`` (and
    ``motion_crops = crops``, ``motion_forest_leaf = leaf``): (checkpoint, the windows each forest was fitted
    on, as logged)."""
    import logging
    import shutil

    from training.checkpoint import new_model, read_checkpoint
    from training.motion_forest import fit_motion_forest
    from training.trainer import I3D_MTN_Trainer

    config, train, val, run = flow_run
    config = {**config, "motion_forest_data": data, "motion_crops": crops, "motion_forest_leaf": leaf}
    out = shutil.copytree(run, tmp_path / f"{data}-{crops}-{leaf}")
    trainer = I3D_MTN_Trainer(new_model(config), config, output_dir=out, device="cpu", progress=False)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="training.motion_forest"):
        fit_motion_forest(trainer, train, val, progress=False)
    fits = [r.args[1] for r in caplog.records if r.getMessage().startswith("fitting the motion forest")]
    return read_checkpoint(out / "best.pt", map_location="cpu"), out, fits


def test_the_shipped_forest_is_refitted_on_train_and_val_at_the_threshold_of_train_alone(
    flow_run, tmp_path, caplog
):
    from edge_runtime.bundle import sha256_file
    from training.motion_forest import load_checkpoint_fusion

    config, train, val, _ = flow_run
    alone, alone_dir, alone_fits = _forest_run(flow_run, tmp_path, caplog, "train")
    both, both_dir, both_fits = _forest_run(flow_run, tmp_path, caplog, "train+val")
    k = config["num_snippets"]
    n_train, n_val = (len(training_windows(d, k, progress=False)[1]) for d in (train, val))
    assert alone_fits == [n_train] and both_fits == [n_train, n_train + n_val]
    # the threshold and validation AUCs are measured with the forest of train/ alone, in both modes
    assert both["threshold"] == alone["threshold"]
    assert both["motion_forest"]["val_auc"] == alone["motion_forest"]["val_auc"]
    for ckpt, out in ((alone, alone_dir), (both, both_dir)):
        assert ckpt["motion_forest"]["sha256"] == sha256_file(out / "motion_forest.npz")
        assert load_checkpoint_fusion(out / "best.pt", ckpt) is not None
    assert alone["motion_forest"]["sha256"] != both["motion_forest"]["sha256"]


def test_motion_forest_leaf_sets_the_fewest_windows_in_a_leaf(flow_run, tmp_path, caplog):
    from edge_runtime.forest import load_forest

    config, train, val, _ = flow_run
    n_windows = len(training_windows(train, config["num_snippets"], progress=False)[1])
    leaves = {}
    for leaf in (1, 8):
        _, out, _ = _forest_run(flow_run, tmp_path, caplog, "train", leaf=leaf)
        forest = load_forest(out / "motion_forest.npz")
        leaves[leaf] = int((forest.left < 0).sum())  # over all trees
    assert leaves[8] <= forest.n_trees * (n_windows // 8)  # a leaf holds 8 windows or more
    assert leaves[8] < leaves[1]


def test_the_threshold_is_chosen_on_whole_validation_videos_as_evaluate_scores_them(
    flow_run, tmp_path, caplog
):
    """The fused threshold is Youden's on the validation videos scored whole (every snippet, as ``evaluate``
    and the device score them), not on the trainer's validation items of K snippets."""
    from training.checkpoint import load_model_state, new_model
    from training.evaluate import score_video
    from training.metrics import video_metrics
    from training.motion_forest import load_checkpoint_fusion

    config, _, val, _ = flow_run
    ckpt, out, _ = _forest_run(flow_run, tmp_path, caplog, "train")  # the shipped forest is the validated one
    model = new_model(config)
    load_model_state(model, ckpt["model"], out / "best.pt")
    fusion = load_checkpoint_fusion(out / "best.pt", ckpt)
    results = [score_video(model.eval(), r, config, "cpu", fusion=fusion) for r in val.records]
    assert any(len(r.snippet_scores) > config["num_snippets"] for r in results)  # longer than an item
    labels = np.array([r.record.label for r in results])
    fused = video_metrics(labels, np.array([r.video_score for r in results]))
    forest = video_metrics(labels, np.array([r.parts["forest"].max() for r in results]))
    assert ckpt["threshold"] == pytest.approx(fused["optimal_threshold"])
    assert ckpt["motion_forest"]["val_auc"]["fused"] == pytest.approx(fused["auc_roc"])
    assert ckpt["motion_forest"]["val_auc"]["forest"] == pytest.approx(forest["auc_roc"])


def test_with_three_crops_the_same_centre_forest_is_validated_over_three_crops(flow_run, tmp_path, caplog):
    """``motion_crops = 3`` fits the same forest (on the centre crop) and the fused validation scores the
    max over the crops: the forest's validation AUC is its own, the network's is unchanged."""
    from training.motion_forest import load_checkpoint_fusion

    one, _, _ = _forest_run(flow_run, tmp_path, caplog, "train")
    three, three_dir, _ = _forest_run(flow_run, tmp_path, caplog, "train", crops=3)
    assert three["motion_forest"]["sha256"] == one["motion_forest"]["sha256"]
    assert three["motion_forest"]["val_auc"]["network"] == one["motion_forest"]["val_auc"]["network"]
    assert 0 <= three["motion_forest"]["val_auc"]["forest"] <= 1  # validated on items of three crops
    assert load_checkpoint_fusion(three_dir / "best.pt", three).crops == 3
