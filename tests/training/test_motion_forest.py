"""The motion forest's training windows: the validation path's snippets, labelled by video or by frame."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.motion_fusion import video_window_stats
from edge_runtime.motion_stats import WINDOW_STATS_SIZE, snippets_motion_stats
from tests.training.tiny_data import synth_root, tiny_config, video_datasets
from training.data import iter_snippet_batches
from training.motion_forest import training_windows


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
