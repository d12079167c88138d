"""Calibration data for the quantizers: head windows, the ONNX Runtime reader, the Jetson .npz."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from calibration.adapters import OrtCalibrationReader, head_windows, write_npz
from calibration.select import select_calibration_set
from edge_runtime.preprocess import PreprocessConfig
from tests.export import helpers


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return helpers.make_synth(tmp_path_factory.mktemp("adapters_synth"))


def _sum_features(x: np.ndarray) -> np.ndarray:
    """A stand-in backbone that is easy to check: the mean of each snippet, repeated over D=3."""
    return np.repeat(x.reshape(len(x), -1).mean(axis=1, keepdims=True), 3, axis=1).astype(np.float32)


def test_head_windows_hold_the_consecutive_snippets_ending_at_each_clip(root):
    from calibration.select import read_snippets

    cal = select_calibration_set(
        root, count=6, preprocess=PreprocessConfig.square(32), snippet_length=8, seed=1
    )
    windows = head_windows(cal, root, _sum_features, window=3, max_windows=6)
    newest = {
        (c.video, c.snippet_index): s
        for c, s in zip(cal.clips, _sum_features(read_snippets(cal, root)), strict=True)
    }
    ordered = [c for v in cal.videos for c in cal.clips if c.video == v]  # windows come video by video
    assert len(windows) == len(ordered) == 6
    for clip, w in zip(ordered, windows, strict=True):
        assert w.shape == (1, min(3, clip.snippet_index + 1), 3)  # K' <= K: a ring still filling
        np.testing.assert_allclose(w[0, -1], newest[(clip.video, clip.snippet_index)], rtol=1e-6)


def test_ort_reader_yields_every_item_then_none_and_rewinds():
    items = [np.full((1, 2), i, np.float32) for i in range(3)]
    reader = OrtCalibrationReader.create(items, "x")
    from onnxruntime.quantization import CalibrationDataReader

    assert isinstance(reader, CalibrationDataReader)
    got = [reader.get_next() for _ in range(4)]
    assert [g["x"][0, 0] for g in got[:3]] == [0, 1, 2] and got[3] is None
    reader.rewind()
    assert reader.get_next()["x"][0, 0] == 0


def test_npz_calibration_data_loads_without_pickle(tmp_path):
    snippets = np.random.default_rng(0).normal(size=(2, 3, 8, 4, 4)).astype(np.float64)
    path = write_npz(tmp_path / "calibration_backbone.npz", {"snippets": snippets})
    with np.load(path) as data:  # allow_pickle defaults to False
        assert data["snippets"].dtype == np.float32
        np.testing.assert_allclose(data["snippets"], snippets, rtol=1e-6)
