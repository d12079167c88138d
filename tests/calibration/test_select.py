"""Choosing calibration clips: stratified, seeded, written to a file that reads back the same snippets."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from calibration.select import (
    CalibrationError,
    load_calibration_set,
    read_snippets,
    save_calibration_set,
    select_calibration_set,
)
from edge_runtime.preprocess import PreprocessConfig
from tests.export import helpers

PRE = PreprocessConfig.square(helpers.SIZE)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return helpers.make_synth(tmp_path_factory.mktemp("calib_synth"))


def _select(root: Path, seed: int = 0, count: int = 12):
    return select_calibration_set(root, count=count, preprocess=PRE, snippet_length=helpers.S, seed=seed)


def test_same_seed_writes_an_identical_file(root, tmp_path):
    a = save_calibration_set(_select(root, seed=7), tmp_path / "a.json")
    b = save_calibration_set(_select(root, seed=7), tmp_path / "b.json")
    assert a.read_bytes() == b.read_bytes()


def test_another_seed_chooses_other_snippets(root):
    a = [(c.video, c.snippet_index) for c in _select(root, seed=7).clips]
    b = [(c.video, c.snippet_index) for c in _select(root, seed=8).clips]
    assert a != b


def test_choice_is_stratified_over_classes_videos_and_time(root):
    cal = _select(root, count=12)
    assert sum(c.label == 0 for c in cal.clips) == sum(c.label == 1 for c in cal.clips) == 6
    assert len(cal.videos) == 6  # 3 normal + 3 anomalous training videos, two snippets each
    for video in cal.videos:
        idx = sorted(c.snippet_index for c in cal.clips if c.video == video)
        assert idx[0] < 2 <= idx[1]  # one from each half of the video's 4 snippets
    assert [c.label for c in cal.clips[:4]] == [0, 1, 0, 1]  # interleaved: any prefix stays balanced


def test_clips_come_from_the_training_split_only(root):
    cal = _select(root, count=1000)
    assert {c.video.split("/")[0] for c in cal.clips} == {"train"}
    assert len(cal.clips) == 24  # every snippet of the 6 training videos, no more


def test_the_file_lists_frames_hashes_and_the_preprocessing(root, tmp_path):
    cal = load_calibration_set(save_calibration_set(_select(root), tmp_path / "calibration_set.json"))
    clip = cal.clips[0]
    assert list(clip.frame_indices) == list(
        range(clip.snippet_index * helpers.S, (clip.snippet_index + 1) * helpers.S)
    )
    assert len(clip.sha256) == 64
    assert cal.preprocess == PRE


def test_loading_the_file_back_reads_exactly_the_same_snippets(root, tmp_path):
    cal = _select(root)
    again = load_calibration_set(save_calibration_set(cal, tmp_path / "calibration_set.json"))
    first, second = read_snippets(cal, root), read_snippets(again, root)
    assert first.shape == (12, 3, helpers.S, helpers.SIZE, helpers.SIZE)
    np.testing.assert_array_equal(first, second)


def test_a_changed_video_is_refused_when_read_back(root, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(root / "train", copy / "train")
    cal = _select(copy)
    victim = copy / cal.clips[0].video
    victim.write_bytes(victim.read_bytes() + b"\0")
    with pytest.raises(CalibrationError, match="changed since the calibration set was chosen"):
        read_snippets(cal, copy)


def test_a_data_root_without_training_videos_is_refused(root, tmp_path):
    shutil.copytree(root / "test", tmp_path / "only" / "test")
    with pytest.raises(CalibrationError, match="has no train/ split"):
        _select(tmp_path / "only")
