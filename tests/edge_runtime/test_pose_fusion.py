"""The pose forest fused into the streaming rule: which frames a snippet's block holds, a causal head, and
no forest = the inner head."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.pose_fusion import (
    PoseFusion,
    PoseFusionError,
    pose_head,
    pose_rows,
    video_pose_blocks,
    window_poses,
)
from edge_runtime.pose_stats import MAX_PEOPLE, POSE_SIZE, POSE_STATS_SIZE, window_pose_stats
from edge_runtime.scoring import streaming_scores

from .pose_helpers import frame, person

S, EVERY, K, D = 8, 3, 3, 4


def _net(windows: np.ndarray) -> np.ndarray:
    """A causal toy network head: score j = sigmoid of the sum of the features 0..j."""
    return 1 / (1 + np.exp(-windows.sum(-1).cumsum(-1)))


def _poses(n: int, seed: int) -> np.ndarray:
    """``n`` frames of one or two people drifting about, ``(n, MAX_PEOPLE, POSE_SIZE)``."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = rng.uniform(0.1, 0.6, 2)
        people = [person(0.2, x[0], 0.6, x[0] + 0.15)]
        if rng.random() < 0.6:
            people.append(person(0.25, x[1], 0.65, x[1] + 0.15, wrist=(0.4, x[0] + 0.1)))
        out.append(frame(*people))
    return np.stack(out)


@pytest.fixture(scope="module")
def fusion() -> PoseFusion:
    sklearn_ensemble = pytest.importorskip(
        "sklearn.ensemble", reason="the forest is fitted on the training side"
    )
    from edge_runtime.pose_stats import POSE_STATS_VERSION
    from training.motion_forest import forest_arrays

    x = np.stack([window_pose_stats(_poses(6, seed), aspect=16 / 9) for seed in range(60)])
    y = (x[:, 2] > 0.5).astype(int)  # "anomalous": two people in most frames
    model = sklearn_ensemble.RandomForestClassifier(10, min_samples_leaf=2, random_state=0).fit(x, y)
    return PoseFusion(forest_arrays(model, POSE_STATS_VERSION), 0.5, snippet_span=S, every=EVERY)


def test_a_snippets_block_holds_the_pose_frames_among_its_frames(fusion):
    num_samples = 20  # snippets 0-7, 8-15, 16-19 (padded); pose frames 0, 3, ..., 18
    poses = np.zeros((7, MAX_PEOPLE, POSE_SIZE), np.float32)
    poses[:, 0, 0] = np.arange(7) * 3  # each pose frame marked with its contract frame
    blocks = video_pose_blocks(poses, num_samples, 3, span=S, every=EVERY, aspect=4 / 3)
    assert blocks.shape == (3, fusion.block_size)
    held = [window_poses(b[None])[0][:, 0, 0].tolist() for b in blocks]
    assert held == [[0, 3, 6], [9, 12, 15], [18]]
    assert window_poses(blocks)[1] == pytest.approx(4 / 3)
    with pytest.raises(PoseFusionError, match="give 7 pose frames, got 6"):
        video_pose_blocks(poses[:6], num_samples, 3, span=S, every=EVERY, aspect=1.0)


def test_the_fused_score_is_the_share_of_the_inner_head_and_the_pose_forest(fusion):
    n = 5
    poses, feats = _poses(14, 1), np.random.default_rng(2).normal(size=(n, D)).astype(np.float32)
    rows = pose_rows(feats, video_pose_blocks(poses, 40, n, span=S, every=EVERY, aspect=16 / 9), fusion)
    assert rows.shape == (n, D + fusion.block_size)
    scores = streaming_scores(pose_head(_net, fusion), rows, K)
    for i in range(n):  # snippet i's window: snippets max(0, i-K+1)..i, their pose frames in order
        lo = max(0, i - K + 1)
        frames = poses[int(np.ceil(lo * S / EVERY)) : int(np.ceil((i + 1) * S / EVERY))]
        pose = fusion.forest.predict(window_pose_stats(frames, 16 / 9)[None])[0]
        net = _net(feats[None, lo : i + 1])[0, -1]
        assert scores[i] == pytest.approx(0.5 * net + 0.5 * pose, abs=1e-6)


def test_the_pose_head_is_causal_so_streaming_equals_the_whole_clip(fusion):
    n = 6
    rows = pose_rows(
        np.random.default_rng(3).normal(size=(n, D)).astype(np.float32),
        video_pose_blocks(_poses(16, 4), 48, n, span=S, every=EVERY, aspect=1.5),
        fusion,
    )
    head = pose_head(_net, fusion)
    np.testing.assert_allclose(
        streaming_scores(head, rows, K, causal=True), streaming_scores(head, rows, K), atol=1e-6
    )


def test_without_a_pose_forest_or_at_weight_0_the_inner_head_scores(fusion):
    feats = np.random.default_rng(5).normal(size=(4, D)).astype(np.float32)
    assert pose_head(_net, None) is _net and pose_rows(feats, None, None) is feats
    rows = pose_rows(feats, video_pose_blocks(_poses(11, 6), 32, 4, span=S, every=EVERY, aspect=1.0), fusion)
    np.testing.assert_allclose(
        streaming_scores(pose_head(_net, fusion.with_weight(0.0)), rows, K), streaming_scores(_net, feats, K)
    )
    forest_only = streaming_scores(pose_head(_net, fusion.with_weight(1.0)), rows, K)
    assert ((forest_only >= 0) & (forest_only <= 1)).all()
    assert not np.allclose(forest_only, streaming_scores(_net, feats, K))


def test_a_forest_or_setting_that_does_not_fit_is_refused(fusion):
    with pytest.raises(PoseFusionError, match="pose_every must be in"):
        PoseFusion(fusion.forest, 0.5, snippet_span=2, every=3)
    with pytest.raises(PoseFusionError, match=r"pose_weight must be in \[0, 1\]"):
        fusion.with_weight(1.5)
    with pytest.raises(PoseFusionError, match="trained on statistics 'motion-stats/1'"):
        PoseFusion(_retagged(fusion.forest, "motion-stats/1"), 0.5, snippet_span=S)
    with pytest.raises(PoseFusionError, match="a pose block"):
        pose_rows(np.zeros((2, D), np.float32), np.zeros((2, 3), np.float32), fusion)
    assert fusion.forest.n_features == POSE_STATS_SIZE


def _retagged(forest, version: str):
    import dataclasses

    return dataclasses.replace(forest, stats_version=version)
