"""Motion statistics of a flow snippet and of a window (the motion forest's input)."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.motion_stats import (
    STATS_SIZE,
    WINDOW_STATS_SIZE,
    MotionStatsError,
    snippet_motion_stats,
    snippets_motion_stats,
    window_motion_stats,
)
from edge_runtime.preprocess import FLOW_BOUND


def _translation(dx: float, dy: float, s: int = 8, size: int = 32) -> np.ndarray:
    snippet = np.zeros((2, s, size, size), np.float32)
    snippet[0], snippet[1] = dx / FLOW_BOUND, dy / FLOW_BOUND
    return snippet


def test_a_random_snippet_gives_finite_float32_stats_of_the_versioned_size():
    rng = np.random.default_rng(0)
    stats = snippets_motion_stats(rng.uniform(-1, 1, (3, 2, 8, 32, 32)).astype(np.float32))
    assert stats.shape == (3, STATS_SIZE) and stats.dtype == np.float32 and np.isfinite(stats).all()
    assert len({tuple(row) for row in stats}) == 3  # different snippets, different numbers


def test_a_constant_translation_gives_the_known_values():
    stats = snippet_motion_stats(_translation(2.0, 0.0))  # every pixel 2 px to the right, every frame
    base, cells, chaos = stats[:19], stats[19:28], stats[28:]
    np.testing.assert_allclose(base[:3], [2, 2, 2], atol=1e-5)  # magnitude percentiles 50 / 90 / 99
    np.testing.assert_allclose(base[3:5], [1, 0])  # all move > 1 px, none > 3 px
    directions = base[5:13]
    assert directions.argmax() == 4 and directions[4] == pytest.approx(1.0, abs=1e-5)  # angle 0: bin 4 of 8
    np.testing.assert_allclose(base[13:17], 0, atol=1e-6)  # the magnitude never changes
    np.testing.assert_allclose(base[17:19], [0, 2], atol=1e-5)  # per-frame mean: no spread, peak 2 px
    np.testing.assert_allclose(cells[:5], [2, 1, 0, 0, 2], atol=1e-5)  # top cell 2 px, no concentration
    assert cells[5] == pytest.approx(0, abs=1e-6) and cells[6] == pytest.approx(1, abs=1e-5)  # one direction
    np.testing.assert_allclose(chaos, 0, atol=1e-5)  # no divergence, curl, turning, acceleration, spread


def test_the_direction_follows_the_motion():
    left, down = snippet_motion_stats(_translation(-2, 0)), snippet_motion_stats(_translation(0, 2))
    assert left[5:13].argmax() == 0 and down[5:13].argmax() == 6


def test_an_rgb_snippet_is_refused_in_one_line():
    with pytest.raises(MotionStatsError, match="input_modality 'flow'") as exc:
        snippet_motion_stats(np.zeros((3, 8, 16, 16), np.float32))
    assert "\n" not in str(exc.value)


def test_window_stats_are_the_mean_and_max_of_each_prefix():
    stats = np.random.default_rng(1).normal(size=(2, 3, STATS_SIZE)).astype(np.float32)
    window = window_motion_stats(stats)
    assert window.shape == (2, 3, WINDOW_STATS_SIZE)
    for j in range(3):
        np.testing.assert_allclose(window[:, j, :STATS_SIZE], stats[:, : j + 1].mean(1), rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(window[:, j, STATS_SIZE:], stats[:, : j + 1].max(1))
    np.testing.assert_array_equal(window[:, 0, :STATS_SIZE], stats[:, 0])  # a ring of one snippet
