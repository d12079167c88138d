"""The motion forest over three crop positions: the max over crops, and motion at a wide frame's edge scores."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_runtime.motion_fusion import (
    MotionFusion,
    MotionFusionError,
    crops_forest,
    crops_motion_stats,
    fused_features,
    fused_head,
    network_input,
    video_window_stats,
)
from edge_runtime.motion_stats import STATS_SIZE, WINDOW_STATS_SIZE
from edge_runtime.preprocess import FramePreprocessor, PreprocessConfig, PreprocessError, crop_windows
from edge_runtime.scoring import streaming_scores
from edge_runtime.window import SnippetWindow

K, D, S, SIDE = 3, 4, 4, 32
CFG = PreprocessConfig(crop_size=(SIDE, SIDE), resize_short_side=SIDE, modality="flow")


def _net(windows: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-windows.sum(-1).cumsum(-1)))


def _frames(width: int, moving: slice, n: int = 13, seed: int = 0) -> list[np.ndarray]:
    """Frames ``SIDE x width`` of a fixed texture; in the columns ``moving`` a texture moving 3 px per frame."""
    rng = np.random.default_rng(seed)
    still = _smooth(rng, width)
    texture = _smooth(rng, 200)
    out = []
    for t in range(n):
        frame = still.copy()
        cols = frame[:, moving]
        frame[:, moving] = texture[:, 3 * t : 3 * t + cols.shape[1]]
        out.append(frame)
    return out


def _smooth(rng: np.random.Generator, width: int) -> np.ndarray:
    """A smooth random texture ``SIDE x width`` (blobs of about 4 px, which optical flow can follow)."""
    coarse = rng.integers(0, 256, (SIDE // 4, width // 4, 3), dtype=np.uint8)
    return cv2.resize(coarse, (width, SIDE), interpolation=cv2.INTER_CUBIC)


def _snippets(frames: list[np.ndarray], crops: int) -> np.ndarray:
    window = SnippetWindow(CFG, S, 1, crops)  # the device's window
    out = [s.array for i, f in enumerate(frames) if (s := window.push(f, i / 10)) is not None]
    return np.stack(out)


@pytest.fixture(scope="module")
def forest():
    """A forest fitted on centre-crop windows: frames moving in the whole crop (1) or still (0)."""
    sklearn_ensemble = pytest.importorskip(
        "sklearn.ensemble", reason="the forest is fitted on the training side"
    )
    from training.motion_forest import forest_arrays

    xs, ys = [], []
    for seed in range(6):
        for label, moving in ((1, slice(0, SIDE)), (0, slice(0, 0))):
            snippets = _snippets(_frames(SIDE, moving, seed=seed), 1)
            xs.append(video_window_stats(crops_motion_stats(snippets, 1), K))
            ys += [label] * len(snippets)
    model = sklearn_ensemble.RandomForestClassifier(10, random_state=0).fit(np.concatenate(xs), ys)
    return forest_arrays(model)


def test_the_three_crops_are_the_centre_then_the_left_and_right_edges():
    assert crop_windows(SIDE, 3 * SIDE, CFG, 3) == [(0, SIDE), (0, 0), (0, 2 * SIDE)]
    assert crop_windows(SIDE, 3 * SIDE, CFG) == [(0, SIDE)]
    frame = _frames(3 * SIDE, slice(0, SIDE))[1]
    one, three = FramePreprocessor(CFG), FramePreprocessor(CFG, crops=3)
    one(frame), three(frame)
    second = _frames(3 * SIDE, slice(0, SIDE))[2]
    np.testing.assert_array_equal(three(second)[:2], one(second))  # the network's input is the centre crop


def test_a_snippets_forest_score_is_the_max_over_its_crops(forest):
    rng = np.random.default_rng(1)
    snippets = rng.uniform(-0.3, 0.3, (7, 6, S, 16, 16)).astype(np.float32)
    snippets[2:5, 2:4] *= 3  # the left crop moves more in some snippets
    feats = rng.normal(size=(7, D)).astype(np.float32)
    fusion = MotionFusion(forest, 1.0, crops=3)
    rows = fused_features(feats, snippets, fusion)
    assert rows.shape == (7, D + 3 * STATS_SIZE)
    np.testing.assert_array_equal(network_input(snippets, fusion), snippets[:, :2])
    per_crop = [
        forest.predict(video_window_stats(crops_motion_stats(snippets[:, 2 * c : 2 * c + 2], 1), K))
        for c in range(3)
    ]
    scores = streaming_scores(fused_head(_net, fusion), rows, K)
    np.testing.assert_allclose(scores, np.max(per_crop, axis=0), rtol=1e-6)
    windows = video_window_stats(rows[:, D:], K)  # (7, 3 * WINDOW_STATS_SIZE), as the benchmark scores them
    np.testing.assert_allclose(crops_forest(forest, windows, 3), scores, rtol=1e-6)
    centre = MotionFusion(forest, 1.0)
    np.testing.assert_allclose(
        streaming_scores(fused_head(_net, centre), fused_features(feats, snippets[:, :2], centre), K),
        per_crop[0],
    )


def test_a_wide_frame_moving_only_at_its_left_edge_scores_with_three_crops_only(forest):
    frames = _frames(4 * SIDE, slice(0, SIDE))  # 32 x 128: the centre crop is columns 48..80, still
    scores = {}
    for crops in (1, 3):
        fusion = MotionFusion(forest, 1.0, crops=crops)
        rows = fused_features(np.zeros((3, D), np.float32), _snippets(frames, crops), fusion)
        scores[crops] = streaming_scores(fused_head(_net, fusion), rows, K)
    assert scores[1].max() < 0.5 < scores[3].max()


def test_bad_crops_are_refused_by_name(forest):
    with pytest.raises(MotionFusionError, match="motion_crops must be one of"):
        MotionFusion(forest, 0.5, crops=2)
    with pytest.raises(PreprocessError, match="crops must be one of"):
        FramePreprocessor(PreprocessConfig(crop_size=(16, 16), resize_short_side=16), crops=3)  # rgb
    with pytest.raises(PreprocessError, match="takes crops = 1"):
        FramePreprocessor(CFG, crops=3).from_resized(np.zeros((SIDE, 64, 3), np.uint8), (0, 0, False))
    three = MotionFusion(forest, 0.5, crops=3)
    centre_only = np.zeros((1, 2, S, 16, 16), np.float32)  # snippets without the side crops
    with pytest.raises(MotionFusionError, match=r"needs flow snippets \(N, 6, S, H, W\)"):
        network_input(centre_only, three)
    with pytest.raises(MotionFusionError, match="FramePreprocessor crops=3"):
        fused_features(np.zeros((1, D), np.float32), centre_only, three)
    with pytest.raises(MotionFusionError, match="3 crop"):
        crops_forest(forest, np.zeros((2, WINDOW_STATS_SIZE), np.float32), 3)
    fused = fused_head(_net, MotionFusion(forest, 0.5, crops=3))
    with pytest.raises(MotionFusionError, match="fused windows must hold"):
        fused(np.zeros((1, 2, 3 * STATS_SIZE), np.float32))
