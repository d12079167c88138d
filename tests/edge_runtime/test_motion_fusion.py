"""The motion forest fused into the streaming rule: one composition, causal, and no forest = the network."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.motion_fusion import (
    MotionFusion,
    MotionFusionError,
    fused_features,
    fused_head,
    video_window_stats,
)
from edge_runtime.motion_stats import STATS_SIZE, STATS_VERSION, window_motion_stats
from edge_runtime.scoring import streaming_scores

K, D = 3, 4


def _net(windows: np.ndarray) -> np.ndarray:
    """A causal toy network head: score j = sigmoid of the sum of the features 0..j."""
    return 1 / (1 + np.exp(-windows.sum(-1).cumsum(-1)))


@pytest.fixture(scope="module")
def fusion() -> MotionFusion:
    sklearn_ensemble = pytest.importorskip(
        "sklearn.ensemble", reason="the forest is fitted on the training side"
    )
    from edge_runtime.motion_stats import snippets_motion_stats
    from training.motion_forest import forest_arrays

    rng = np.random.default_rng(0)
    scale = rng.uniform(0.05, 1.0, 80)  # flow of more or less motion; "anomalous": more
    snippets = rng.uniform(-1, 1, (80, 2, 4, 16, 16)).astype(np.float32) * scale[:, None, None, None, None]
    x = window_motion_stats(snippets_motion_stats(snippets)[:, None])[:, 0]  # windows of one snippet
    y = (scale > 0.5).astype(int)
    model = sklearn_ensemble.RandomForestClassifier(10, min_samples_leaf=2, random_state=0).fit(x, y)
    return MotionFusion(forest_arrays(model), 0.5)


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    rng = np.random.default_rng(1)
    snippets = rng.uniform(-0.3, 0.3, (7, 2, 4, 16, 16)).astype(np.float32)
    snippets[3:] *= 3  # more motion in the later snippets
    return snippets, rng.normal(size=(7, D)).astype(np.float32)


def test_rows_hold_the_feature_then_the_snippets_stats(fusion, rows):
    snippets, feats = rows
    fused = fused_features(feats, snippets, fusion)
    assert fused.shape == (7, D + STATS_SIZE)
    np.testing.assert_array_equal(fused[:, :D], feats)
    assert fused_features(feats, snippets, None) is feats  # no forest: the features as they are


def test_the_fused_score_of_a_window_is_the_share_of_the_network_and_the_forest(fusion, rows):
    fused = fused_features(rows[1], rows[0], fusion)
    scores = streaming_scores(fused_head(_net, fusion), fused, K)
    net = streaming_scores(_net, rows[1], K)
    forest = fusion.forest.predict(video_window_stats(fused[:, D:], K))
    np.testing.assert_allclose(scores, 0.5 * net + 0.5 * forest, rtol=1e-6, atol=1e-6)
    assert np.ptp(forest) > 0  # the forest's part varies between windows


def test_weight_zero_is_exactly_the_network_and_one_the_forest(fusion, rows):
    fused = fused_features(rows[1], rows[0], fusion)
    net = streaming_scores(_net, rows[1], K)
    np.testing.assert_array_equal(streaming_scores(fused_head(_net, fusion.with_weight(0.0)), fused, K), net)
    forest = fusion.forest.predict(video_window_stats(fused[:, D:], K)).astype(np.float32)
    np.testing.assert_array_equal(
        streaming_scores(fused_head(_net, fusion.with_weight(1.0)), fused, K), forest
    )
    assert fused_head(_net, None) is _net


def test_the_fused_head_is_causal_so_whole_clip_and_streaming_agree(fusion, rows):
    fused = fused_features(rows[1], rows[0], fusion)
    head = fused_head(_net, fusion)
    by_window = np.array([head(fused[None, max(0, i - K + 1) : i + 1])[0, -1] for i in range(len(fused))])
    np.testing.assert_array_equal(streaming_scores(head, fused, K), by_window)
    np.testing.assert_array_equal(streaming_scores(head, fused, K, causal=True), by_window)
    whole = head(fused[None, :K])[0]  # one call over the first K rows: every filling window's score
    np.testing.assert_array_equal(whole, by_window[:K])


def test_video_window_stats_are_the_rings_windows(rows):
    stats = np.random.default_rng(2).normal(size=(5, STATS_SIZE)).astype(np.float32)
    windows = video_window_stats(stats, K)
    np.testing.assert_array_equal(windows[4], window_motion_stats(stats[None, 2:5])[0, -1])
    np.testing.assert_array_equal(windows[0], window_motion_stats(stats[None, :1])[0, -1])


def test_a_forest_of_other_statistics_or_a_bad_weight_is_refused(fusion):
    import dataclasses

    with pytest.raises(MotionFusionError, match="motion_weight must be in"):
        fusion.with_weight(1.5)
    other = dataclasses.replace(fusion.forest, stats_version="motion-stats/0")
    with pytest.raises(MotionFusionError, match=f"this runtime computes '{STATS_VERSION}'"):
        MotionFusion(other, 0.5)
